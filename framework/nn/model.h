/* model.h — network plug-ins chosen by the spec's `model` section. Only the toy MLP so far;
 * a U-Net comes with image data. */
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
    /* The MLP shape for data of dimension dim and out_dim network outputs. */
    void (*mlp_cfg)(const void *opts, int dim, int out_dim, dm_mlp_cfg *cfg);
} dm_model_ops;

extern const dm_model_ops dm_model_mlp;
extern const dm_plugin *const dm_model_registry[];

#endif
