/* net.h — a network: a model plug-in (nn/model.h) built for the data's shape.
 *
 * Everything above nn/ (the trainer, the network denoiser and classifier, the consistency step)
 * runs a network through this interface alone, whatever the model:
 *
 *   input   x (n, dim) = (n, C, H, W) in C order, already scaled by the parameterization's c_in;
 *           tin (n) the schedule's c_noise; y (n) class labels of a conditional network
 *           (DM_NET_NULL_CLASS = the null class; y may be NULL: all null) — labels, never input
 *           columns: each model embeds them its own way (the MLP as one-hot input columns, the
 *           U-Net as a class embedding added to the time embedding)
 *   output  out (n, out_dim); and, for models that have them (the cnn), features (n, dim) of the
 *           last forward's items (dm_net_features)
 *
 * All parameters live in one float32 block of n_params values whose layout the model defines;
 * gradients, the EMA and the optimizer state use the same layout. forward and backward take the
 * block as an argument, so one network runs with its training weights, an EMA copy or a
 * teacher's. backward overwrites the parameter gradients. The bits of forward and backward do
 * not depend on the thread count. */
#ifndef DM_NN_NET_H
#define DM_NN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

enum { DM_NET_NULL_CLASS = -1 };   /* = DM_NULL_CLASS of diffusion/denoiser.h */

typedef struct dm_net_cfg {
    int dim;        /* data dimension per item = c * h * w */
    int c, h, w;    /* item shape; (dim, 1, 1) for point data */
    int out_dim;    /* outputs per item */
    int n_classes;  /* > 0: a conditional network over n_classes classes (plus the null class) */
} dm_net_cfg;

struct dm_net_vt;

typedef struct dm_net {
    const struct dm_net_vt *vt;
    dm_net_cfg cfg;
    size_t n_params;
    size_t batch_cap; /* 0, or the largest batch a workspace should hold (callers batch above it) */
    void *impl;     /* the model's own description of its layers */
} dm_net;

/* Activations and scratch for batches of up to max_batch items; owned by one thread of control. */
typedef struct dm_net_ws {
    int max_batch;
    int train;            /* 1: the next forward is a training step's (dropout draws); 0: eval */
    uint64_t noise_seed;  /* a training forward: the seed of this step's per-item dropout streams */
    void *impl;
} dm_net_ws;

typedef struct dm_net_vt {
    /* net->cfg is set; fill n_params and impl from the model's options. DM_E_INPUT names the key. */
    dm_status (*init)(dm_net *net, const void *opts, char *err);
    void (*free)(dm_net *net);
    void (*init_params)(const dm_net *net, float *params, dm_rng *rng);
    dm_status (*ws_init)(const dm_net *net, dm_net_ws *ws, int max_batch, char *err);
    void (*ws_free)(dm_net_ws *ws);
    void (*forward)(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                    const float *tin, const int32_t *y, float *out);
    /* After a forward of the same batch: grads = dL/dparams; dx (n, dim) = dL/dx unless NULL. */
    void (*backward)(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *dout,
                     float *grads, float *dx);
    /* A one-line description of the architecture: two networks with equal descriptions have the
     * same parameter layout (distill.init_from_teacher). */
    void (*describe)(const dm_net *net, char *buf, size_t size);
    /* Optional (NULL: the model has none): after a forward of n <= ws->max_batch items, their
     * features (n, *dim) in item order — what the model computes before its output layer (the
     * cnn: the pooled last tensor). Owned by the workspace, valid until its next forward. */
    const float *(*features)(const dm_net *net, const dm_net_ws *ws, int *dim);
} dm_net_vt;

/* Build the network of model plug-in vt with options opts for cfg. On failure *net is clean. */
dm_status dm_net_init(dm_net *net, const dm_net_vt *vt, const void *opts, const dm_net_cfg *cfg, char *err);
void dm_net_free(dm_net *net);

static inline void dm_net_init_params(const dm_net *net, float *params, dm_rng *rng)
{
    net->vt->init_params(net, params, rng);
}

dm_status dm_net_ws_init(const dm_net *net, dm_net_ws *ws, int max_batch, char *err);
void dm_net_ws_free(const dm_net *net, dm_net_ws *ws);

static inline void dm_net_forward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                                  const float *tin, const int32_t *y, float *out)
{
    net->vt->forward(net, params, ws, n, x, tin, y, out);
}

static inline void dm_net_backward(const dm_net *net, const float *params, dm_net_ws *ws, int n,
                                   const float *dout, float *grads, float *dx)
{
    net->vt->backward(net, params, ws, n, dout, grads, dx);
}

static inline void dm_net_describe(const dm_net *net, char *buf, size_t size)
{
    net->vt->describe(net, buf, size);
}

/* The features of the last forward's items (vt->features), or NULL with *dim = 0 when the model
 * has none (the MLP, the U-Net). */
static inline const float *dm_net_features(const dm_net *net, const dm_net_ws *ws, int *dim)
{
    *dim = 0;
    return net->vt->features ? net->vt->features(net, ws, dim) : NULL;
}

#endif
