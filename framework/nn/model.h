/* model.h — network plug-ins chosen by the spec's `model` section: the toy MLP, and `analytic`,
 * the exact denoiser of a Gaussian-mixture dataset (samplers with zero model error). A U-Net
 * comes with image data. */
#ifndef DM_NN_MODEL_H
#define DM_NN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/options.h"
#include "nn/mlp.h"

typedef struct dm_mlp_opts {
    int64_t width, depth, nfreq;
    bool conditional;   /* class-conditional: the label's one-hot code joins the input */
} dm_mlp_opts;

typedef struct dm_analytic_opts {
    bool conditional;   /* sample E[x0 | x_t, y] of the sample's class, not E[x0 | x_t] */
} dm_analytic_opts;

typedef struct dm_model_ops {
    dm_plugin info;
    /* 1: no network — the exact denoiser of the dataset's Gaussian mixture (nothing to train). */
    int analytic;
    /* The MLP shape for data of dimension dim and out_dim network outputs (NULL if analytic). */
    void (*mlp_cfg)(const void *opts, int dim, int out_dim, dm_mlp_cfg *cfg);
    /* 1 if the model takes class labels (model.conditional). */
    int (*conditional)(const void *opts);
} dm_model_ops;

/* The MLP input of a model with data dimension dim and n_classes classes: dim, plus the
 * one-hot columns (n_classes + 1, the last the null class) of a conditional model. */
static inline int dm_model_in_dim(const dm_model_ops *m, const void *opts, int dim, int n_classes)
{
    return dim + (m->conditional(opts) ? n_classes + 1 : 0);
}

extern const dm_model_ops dm_model_mlp;
extern const dm_model_ops dm_model_analytic;
extern const dm_plugin *const dm_model_registry[];

#endif
