/* mlp.h — the toy MLP of ../shared/peer/peer_toy_mlp.py with explicit forward and backward.
 *
 *   input  x (n, in_dim) and a time input tin (n) (the schedule's c_noise)
 *   h0 = [x, sin(tin*f_k), cos(tin*f_k)]  (n, in_dim + 2*nfreq), f_k = 10000^(-k/nfreq)
 *   h_{l+1} = SiLU(h_l W_l^T + b_l)        l < depth, width units
 *   out = h_depth W_depth^T + b_depth      (n, out_dim)
 *
 * All parameters live in one float32 block (dm_mlp.n_params), carved per layer:
 * W_l (out, in) row-major as PyTorch's Linear, then b_l (out). Gradients and optimizer state use
 * the same layout. Forward and backward take the parameter block as an argument, so one model
 * can run with its training weights, an EMA copy, or a teacher's. Backward overwrites grads.
 * Reductions (bias gradients) are fixed-order: results do not depend on the thread count. */
#ifndef DM_NN_MLP_H
#define DM_NN_MLP_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"

typedef struct dm_mlp_cfg {
    int in_dim;     /* data dimension (2 for toy data) */
    int out_dim;    /* network output dimension (= in_dim, or 2*in_dim with a learned variance) */
    int nfreq;      /* sinusoidal frequencies (embedding = 2*nfreq) */
    int width;      /* hidden units */
    int depth;      /* hidden layers (Linear+SiLU); the output Linear comes on top */
} dm_mlp_cfg;

typedef struct dm_mlp {
    dm_mlp_cfg cfg;
    int n_layers;           /* depth + 1 */
    size_t n_params;
    size_t *w_off, *b_off;  /* offsets of W_l, b_l in the block (n_layers each) */
    int *fan_in, *fan_out;  /* (n_layers) */
} dm_mlp;

/* Activations and scratch for batches of up to max_batch rows. Owned by one thread of control. */
typedef struct dm_mlp_ws {
    int max_batch;
    float *buf;             /* one block */
    /* per layer l: pre[l] (n, fan_out) and act[l] (n, fan_in) = input h_l. After a forward, pre[l]
     * holds sigmoid(z_l) for hidden layers (all that SiLU's backward needs with h_{l+1}) and the
     * pre-activation z_l = out for the output layer. */
    float **pre, **act;
    float *dbuf0, *dbuf1;   /* gradient ping-pong (n, max width) */
} dm_mlp_ws;

dm_status dm_mlp_init(dm_mlp *m, const dm_mlp_cfg *cfg, char *err);
void dm_mlp_free(dm_mlp *m);
/* PyTorch's default Linear init: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn layer by layer,
 * W row-major then b, each value (float)((2u - 1) / sqrt(fan_in)) with u = dm_rng_uniform(rng). */
void dm_mlp_init_params(const dm_mlp *m, float *params, dm_rng *rng);

dm_status dm_mlp_ws_init(dm_mlp_ws *ws, const dm_mlp *m, int max_batch, char *err);
void dm_mlp_ws_free(dm_mlp_ws *ws);

/* out (n, out_dim). Keeps what backward needs in ws. n <= ws->max_batch. */
void dm_mlp_forward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n, const float *x,
                    const float *tin, float *out);
/* Given dL/dout (n, out_dim) after a forward of the same batch: grads (n_params) = dL/dparams,
 * and dx (n, in_dim) = dL/dx if dx is not NULL (for vector-Jacobian products). */
void dm_mlp_backward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n,
                     const float *dout, float *grads, float *dx);

#endif
