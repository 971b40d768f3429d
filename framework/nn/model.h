/* model.h — network plug-ins chosen by the spec's `model` section: the toy MLP, the U-Net, the
 * cnn (a classifier and feature network for images), and `analytic`, the exact denoiser of a
 * Gaussian-mixture dataset (samplers with zero model error). A model with a network builds it
 * through nn/net.h for the data's shape. */
#ifndef DM_NN_MODEL_H
#define DM_NN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/options.h"
#include "nn/net.h"
#include "nn/net_mlp.h"

typedef struct dm_analytic_opts {
    bool conditional;   /* sample E[x0 | x_t, y] of the sample's class, not E[x0 | x_t] */
} dm_analytic_opts;

typedef struct dm_model_ops {
    dm_plugin info;
    /* 1: no network — the exact denoiser of the dataset's Gaussian mixture (nothing to train). */
    int analytic;
    /* Its network (NULL if analytic): dm_net_init(net, ops->net, opts, cfg). */
    const dm_net_vt *net;
    /* 1 if the model takes class labels (model.conditional). */
    int (*conditional)(const void *opts);
} dm_model_ops;

extern const dm_model_ops dm_model_mlp;
extern const dm_model_ops dm_model_unet;
extern const dm_model_ops dm_model_cnn;
extern const dm_model_ops dm_model_analytic;
extern const dm_plugin *const dm_model_registry[];

#endif
