/* linear.h — a Linear layer on (n, in) rows (PyTorch's nn.Linear): y = x W^T + b, with W (out,
 * in) row-major then b (out) in the parameter block, (in + 1) out floats.
 *
 * Products are OpenBLAS sgemm calls on fixed tiles, each run single-threaded inside an OpenMP
 * loop (as nn/mlp.c does): the forward and dx by tiles of DM_LINEAR_TILE rows (items), dW by
 * tiles of DM_LINEAR_TILE of its out rows, each summing over all n items; db is a double sum over
 * items in item order. A tile's bits depend on its shape and data only, so the results do not
 * depend on the thread count. Used for the small products of the time embedding. */
#ifndef DM_NN_LINEAR_H
#define DM_NN_LINEAR_H

#include <stddef.h>

#include "core/rng.h"

#define DM_LINEAR_TILE 32

static inline size_t dm_linear_n_params(int in, int out)
{
    return ((size_t)in + 1) * (size_t)out;
}

/* PyTorch's default init: W then b, row-major, each (float)((2u - 1) / sqrt(in)) with u =
 * dm_rng_uniform(rng), as nn/mlp.h. */
void dm_linear_init_params(int in, int out, float *params, dm_rng *rng);

/* y (n, out) = x (n, in) W^T + b. y must not overlap x. */
void dm_linear_forward(int in, int out, const float *params, int n, const float *x, float *y);

/* grads ((in + 1) out) = dL/d(W, b), overwritten; dx (n, in) = dy W (acc_dx: dx +=), skipped if
 * dx is NULL. */
void dm_linear_backward(int in, int out, const float *params, int n, const float *x, const float *dy,
                        float *grads, float *dx, int acc_dx);

#endif
