/* features.h — the feature network of the image metrics (eval.features; issue 17).
 *
 * FID's Inception weights cannot be had here, so image sample sets are compared in the feature
 * space of a classifier difflab trains itself: a finished run of diffusion.loss xent with clean:
 * true whose model has a feature head (model cnn: the pooled output of its last block), named in
 * eval.features by run id, unique prefix, or spec file with eval.features_seed. It must classify
 * items of the model's shape. Its features of a sample set and of the run's reference set (the
 * test split) give fd, kid and kid_std, precision and recall (train/record_features.c); its argmax
 * gives fnet_class_share of class-conditional sets. Each of those evals carries
 * "features":"<run id>" in its settings, and tables never put evals of two feature networks in one
 * cell: `fd` is a Fréchet distance in this feature space, not FID. */
#ifndef DM_TRAIN_FEATURES_H
#define DM_TRAIN_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "io/spec.h"
#include "train/trainer.h"

typedef struct dm_features {
    char run_id[256];
    dm_spec *spec;
    dm_trainer tr;            /* the feature network's run */
    int tr_ready, ws_ready;
    dm_net_ws ws;
    size_t batch;             /* items per forward */
    int dim;                  /* features per item */
    size_t n_classes;
    float *xin, *tin, *logits;
    float *ref;               /* (n_ref, dim) the features of the model's reference set */
    size_t n_ref;
} dm_features;

/* eval.features names a run. */
int dm_features_needed(const dm_spec *spec);

/* Before anything is written: the run named by eval.features exists, is finished, is a classifier
 * of clean items with a feature head, and classifies items of this spec's shape. Its id into id. */
dm_status dm_features_check(const char *results, const dm_spec *spec, char *id, size_t nid, char *err);

/* Load the feature network of run id (checked) for the model trainer tr: computes the features of
 * tr's reference set and sets tr->features = f. */
dm_status dm_features_attach(const char *results, const char *id, dm_trainer *tr, dm_features *f, char *err);

/* The features (n, f->dim) of n items x (n, dim) and, unless pred is NULL, each item's predicted
 * class (the argmax of the logits). */
dm_status dm_features_of(dm_features *f, const float *x, size_t n, float *feat, int32_t *pred, char *err);

void dm_features_free(dm_features *f);

#endif
