/* denoiser_net.h — a trained network as a dm_denoiser: x0_hat and eps_hat from the network
 * output F through the parameterization (param.h), with the schedule's c_noise as time input.
 * The parameter block is borrowed (training weights, EMA copy or a teacher's); the context owns
 * its activations, so one context serves one thread of control.
 *
 * A class-conditional network (n_classes = C > 0) takes the one-hot code of the label after the
 * data columns, [c_in x, onehot(y)] with C + 1 columns, the last one the null class ∅: a learned
 * class embedding added to the first layer's pre-activation (its column of W_0). */
#ifndef DM_DIFFUSION_DENOISER_NET_H
#define DM_DIFFUSION_DENOISER_NET_H

#include "diffusion/denoiser.h"
#include "diffusion/param.h"
#include "diffusion/schedule.h"
#include "nn/mlp.h"

typedef struct dm_net_denoiser {
    const dm_mlp *mlp;
    const float *params;
    const dm_schedule *sched;
    const dm_param_ops *param;
    const void *param_opts;
    double sigma_data;
    size_t dim;       /* data dimension (the network's in_dim less the one-hot columns) */
    int n_classes;    /* 0: unconditional */
    dm_mlp_ws ws;
    float *xin;   /* (max_batch, in_dim) [c_in * x, onehot(y)] */
    float *tin;   /* (max_batch) c_noise(t) */
    float *F;     /* (max_batch, out_dim) */
    /* Scratch of eval_div (the exact divergence by one backward pass per input dimension) and
     * eval_hutch (one backward with the probe as cotangent): */
    float *dout;  /* (max_batch, out_dim) the cotangent: e_j or the probe z in every row */
    float *dxin;  /* (max_batch, in_dim) the vector-Jacobian product (cotangent)ᵀ dF/dxin per row */
    float *grads; /* (n_params) parameter gradients the backward writes and both ignore */
} dm_net_denoiser;

/* Fills *den so that den->eval runs the network, den->eval_div gives x0_hat with its exact
 * divergence (dim backward passes after one forward) and den->eval_hutch x0_hat with the
 * Hutchinson form zᵀ (∂x0_hat/∂x) z (one backward). nd must stay at its address while den is
 * used. */
dm_status dm_net_denoiser_init(dm_net_denoiser *nd, dm_denoiser *den, const dm_mlp *mlp,
                               const float *params, const dm_schedule *sched,
                               const dm_param_ops *param, const void *param_opts,
                               double sigma_data, int n_classes, size_t max_batch, char *err);
void dm_net_denoiser_free(dm_net_denoiser *nd);

/* One row of the network input: row (d, or d + C + 1 with n_classes C > 0) = [c_in x, onehot(y)],
 * y = DM_NULL_CLASS setting the last (null) column. */
void dm_net_input_row(float *row, size_t d, const float *x, double c_in, int n_classes, int32_t y);

#endif
