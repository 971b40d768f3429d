/* gnorm.h — GroupNorm with affine (PyTorch's nn.GroupNorm), alone or fused with SiLU, and SiLU.
 *
 *   x (n, C, H, W) float32 in C order; C channels in G groups of C/G consecutive channels;
 *   per item i and group g: mean and biased variance over the group's C/G * H * W values,
 *   xhat = (x - mean) / sqrt(var + 1e-5),  u = gamma_c xhat + beta_c,
 *   y = u (dm_gnorm_forward) or y = SiLU(u) = u sigmoid(u) (dm_gnorm_silu_forward).
 *
 * Parameters: gamma (C) then beta (C) (PyTorch's order: weight, bias), 2C floats; initial values
 * gamma 1, beta 0 (PyTorch's default; no draws). Statistics are computed in double in a fixed
 * order: pass 1 the mean, pass 2 the mean of squared deviations (two-pass), each sum over 8 lanes
 * (element j of the group in lane j mod 8, nn/lane_sum.h) added in a fixed tree; the elementwise passes are
 * float (u = x a_c + b_c with a_c = gamma_c rstd, b_c = beta_c - mean a_c, as PyTorch's CPU
 * kernel does; its rounding error grows with |mean| / std).
 *
 * Backward (PyTorch's formula): with du = dL/du (dy, or dy SiLU'(u) recomputed from x and the
 * kept statistics), per item and channel db_c = sum du, ds_c = sum du x (double, fixed order);
 * dgamma_c = sum_i rstd (ds_c - mean db_c), dbeta_c = sum_i db_c, summed over items in order;
 * dx = rstd gamma_c du + B (x - m) + C per group. So the workspace keeps only the statistics (mean,
 * rstd per item and group) and the backward takes the same x again: the caller keeps the input
 * (a U-Net keeps its activations anyway).
 *
 * Threads: an OpenMP loop (static schedule) over items; every item is computed by the same code
 * on one thread, and sums over items (parameter gradients) are added in item order after the
 * loop, so the bits depend neither on the thread count nor on which thread took an item.
 */
#ifndef DM_NN_GNORM_H
#define DM_NN_GNORM_H

#include <stddef.h>

#include "core/status.h"

#define DM_GNORM_EPS 1e-5

typedef struct dm_gnorm {
    int groups, c;   /* C channels in `groups` groups; C % groups == 0 */
    size_t n_params; /* 2C: gamma (C), beta (C) */
} dm_gnorm;

/* Activations kept between forward and backward, for batches of up to max_batch items of
 * C x hw values. Owned by one thread of control. */
typedef struct dm_gnorm_ws {
    int max_batch, hw;
    double *stats;  /* (max_batch, groups, 2): mean, rstd of the last forward */
    double *part;   /* (max_batch, 2, C): item i's terms of dgamma and dbeta */
    float *scratch; /* (max_batch, C/groups * hw): du of the group an item is at (SiLU) */
    float *coef;    /* (max_batch, 3, C/groups): an item's per-channel constants of one group */
} dm_gnorm_ws;

dm_status dm_gnorm_init(dm_gnorm *g, int groups, int c, char *err);
/* gamma = 1, beta = 0. */
void dm_gnorm_init_params(const dm_gnorm *g, float *params);

/* hw = H * W of the inputs this layer will see. */
dm_status dm_gnorm_ws_init(dm_gnorm_ws *ws, const dm_gnorm *g, int hw, int max_batch, char *err);
void dm_gnorm_ws_free(dm_gnorm_ws *ws);

/* y (n, C, hw) = GroupNorm(x); y must not overlap x. Keeps the statistics in ws. */
void dm_gnorm_forward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                      float *y);
/* y = SiLU(GroupNorm(x)), one pass per group after the statistics. Time per call at batch 128
 * (bench/bench_layers, 2 threads, on a shared 2-core Zen 4 under load ~6, so indicative), forward
 * / backward in ms: 32ch@28x28 1.8 / 2.5, 64ch@14x14 1.0 / 1.3, 96ch@28x28 5.6 / 8.0,
 * 128ch@14x14 1.7 / 2.5: 12-16 GB/s of tensor traffic (forward reads x and writes y; backward
 * reads x and dy and writes dx), i.e. memory-bound. */
void dm_gnorm_silu_forward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                           float *y);

/* After a forward of the same batch and the same x: grads (2C) = dL/d(gamma, beta), overwritten;
 * dx (n, C, hw) = dL/dx (acc_dx = 0) or dx += dL/dx (acc_dx = 1, x feeds another layer too).
 * dy must not overlap dx. */
void dm_gnorm_backward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                       const float *dy, float *grads, float *dx, int acc_dx);
void dm_gnorm_silu_backward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                            const float *dy, float *grads, float *dx, int acc_dx);

/* SiLU alone on m values, on the calling thread (small tensors: the time embedding):
 * y = x sigmoid(x); backward dx = dy SiLU'(x) (acc_dx: dx +=). y may be x; dx may be dy unless
 * acc_dx. */
void dm_silu_forward(size_t m, const float *x, float *y);
void dm_silu_backward(size_t m, const float *x, const float *dy, float *dx, int acc_dx);

#endif
