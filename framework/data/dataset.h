/* dataset.h — data plug-ins: generators of labelled points and images.
 *
 * A data plug-in draws n points (n, dim) float32 row-major, and a class label per point (the
 * component of a mixture, the moon of two moons, the garment of Fashion-MNIST, ...; 0 where a
 * dataset has no classes), from the given stream. The same (options, split, n, stream state)
 * gives the same bits. An image dataset's items are (C, H, W) in C order, the flat view of dim =
 * C*H*W floats, and it says so with `shape` (docs/images.md, "Shapes"). */
#ifndef DM_DATA_DATASET_H
#define DM_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"

/* Which part of a dataset to draw from: the training set (the trainer's `data.train`) or the
 * held-out one (its reference set `data.ref`). Generated datasets draw both i.i.d. from the same
 * distribution and ignore it; a dataset read from files draws from its train or test split. */
typedef enum dm_data_split {
    DM_DATA_TRAIN,
    DM_DATA_TEST,
} dm_data_split;

typedef struct dm_data_ops {
    dm_plugin info;                         /* name, doc, option table, options struct size */
    /* Dimension of a point under these options. */
    size_t (*dim)(const void *opts);
    /* Number of classes (>= 1). */
    size_t (*n_classes)(const void *opts);
    /* Check options that the table's bounds cannot (e.g. list lengths agree). err names the key. */
    dm_status (*check)(const void *opts, char *err);
    /* Draw n points of `split` into x (n, dim) and labels (n; may be NULL). */
    dm_status (*generate)(const void *opts, dm_data_split split, size_t n, dm_rng *rng, float *x,
                          int32_t *labels, char *err);
    /* The (C, H, W) of an item, C*H*W = dim; NULL for point data, whose shape is (dim, 1, 1). */
    void (*shape)(const void *opts, int *c, int *h, int *w);
} dm_data_ops;

/* The shape of an item of the dataset ops under opts: ops->shape's, or (dim, 1, 1). */
void dm_data_shape(const dm_data_ops *ops, const void *opts, int *c, int *h, int *w);

/* NULL-terminated registry: moons, eight_gaussians, swissroll, checkerboard, gmm, image_mixture,
 * fashion_mnist. */
extern const dm_plugin *const dm_data_registry[];

/* An isotropic Gaussian mixture sum_k w_k N(mu_k, s_k^2 I), the analytic reference for samplers.
 * Filled from a dataset's options when the dataset is a mixture (gmm, eight_gaussians,
 * image_mixture). */
typedef struct dm_gmm {
    size_t k, dim;
    double *w;    /* (k) normalized weights */
    double *mu;   /* (k, dim) */
    double *s;    /* (k) standard deviations */
    int32_t *cls; /* (k) the class of each component: the label its points carry */
    size_t n_classes;
} dm_gmm;

/* DM_E_INPUT if the dataset named by ops is not a Gaussian mixture. Caller frees with dm_gmm_free. */
dm_status dm_data_gmm(const dm_data_ops *ops, const void *opts, dm_gmm *out, char *err);
void dm_gmm_free(dm_gmm *g);

#endif
