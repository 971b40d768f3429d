/* denoiser_net.h — a trained network as a dm_denoiser: x0_hat and eps_hat from the network
 * output F through the parameterization (param.h), with the schedule's c_noise as time input.
 * The parameter block is borrowed (training weights, EMA copy or a teacher's); the context owns
 * its activations, so one context serves one thread of control.
 *
 * A class-conditional network (n_classes = C > 0) takes the labels as they are (nn/net.h; the
 * null class ∅ included); an unconditional one ignores them. */
#ifndef DM_DIFFUSION_DENOISER_NET_H
#define DM_DIFFUSION_DENOISER_NET_H

#include "diffusion/denoiser.h"
#include "diffusion/param.h"
#include "diffusion/schedule.h"
#include "nn/net.h"

typedef struct dm_net_denoiser {
    const dm_net *net;
    const float *params;
    const dm_schedule *sched;
    const dm_param_ops *param;
    const void *param_opts;
    double sigma_data;
    size_t dim;       /* data dimension */
    int n_classes;    /* 0: unconditional */
    dm_net_ws ws;
    float *xin;   /* (max_batch, dim) c_in * x */
    float *tin;   /* (max_batch) c_noise(t) */
    float *F;     /* (max_batch, out_dim) */
    /* Scratch of eval_div (the exact divergence by one backward pass per input dimension) and
     * eval_hutch (one backward with the probe as cotangent): */
    float *dout;  /* (max_batch, out_dim) the cotangent: e_j or the probe z in every row */
    float *dxin;  /* (max_batch, dim) the vector-Jacobian product (cotangent)ᵀ dF/dxin per row */
    float *grads; /* (n_params) parameter gradients the backward writes and both ignore */
} dm_net_denoiser;

/* Fills *den so that den->eval runs the network, den->eval_div gives x0_hat with its exact
 * divergence (dim backward passes after one forward) and den->eval_hutch x0_hat with the
 * Hutchinson form zᵀ (∂x0_hat/∂x) z (one backward). nd must stay at its address while den is
 * used. */
dm_status dm_net_denoiser_init(dm_net_denoiser *nd, dm_denoiser *den, const dm_net *net,
                               const float *params, const dm_schedule *sched,
                               const dm_param_ops *param, const void *param_opts,
                               double sigma_data, size_t max_batch, char *err);
void dm_net_denoiser_free(dm_net_denoiser *nd);

#endif
