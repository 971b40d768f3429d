/* model.h — network plug-ins chosen by the spec's `model` section: the toy MLP, and `analytic`,
 * the exact denoiser of a Gaussian-mixture dataset (samplers with zero model error). A U-Net
 * comes with image data. */
#ifndef DM_NN_MODEL_H
#define DM_NN_MODEL_H

#include <stdint.h>

#include "core/options.h"
#include "nn/mlp.h"

typedef struct dm_mlp_opts {
    int64_t width, depth, nfreq;
} dm_mlp_opts;

typedef struct dm_model_ops {
    dm_plugin info;
    /* 1: no network — the exact denoiser of the dataset's Gaussian mixture (nothing to train). */
    int analytic;
    /* The MLP shape for data of dimension dim and out_dim network outputs (NULL if analytic). */
    void (*mlp_cfg)(const void *opts, int dim, int out_dim, dm_mlp_cfg *cfg);
} dm_model_ops;

extern const dm_model_ops dm_model_mlp;
extern const dm_model_ops dm_model_analytic;
extern const dm_plugin *const dm_model_registry[];

#endif
