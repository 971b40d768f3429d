/* conv.h — 2-D convolution layers (3x3 and 1x1, stride 1 or 2, zero padding k/2, bias) with
 * explicit forward and backward on (n, C, H, W) float32 batches in C order (the flat row view).
 *
 *   y[i, o, oy, ox] = b[o] + sum_{c, ky, kx} W[o, c, ky, kx] x[i, c, s oy + ky - p, s ox + kx - p]
 *
 * with s the stride, p = k / 2 and x zero outside the image; Ho = (H + 2p - k) / s + 1 (so a
 * stride-2 3x3 halves an even size, 28 -> 14, as PyTorch's Conv2d(padding=1, stride=2)).
 * Parameters: W (cout, cin, k, k) as PyTorch's Conv2d, then b (cout), at any offset of the
 * network's float block.
 *
 * Engine (docs/conv.md): oneDNN's direct convolution kernels, each run single-threaded on fixed
 * tiles of DM_CONV_TILE items inside an OpenMP loop, on oneDNN's blocked layouts (every tile is
 * reordered in and out). A tile's bits depend only on its data, never on which thread or how many
 * threads run it, and the weight and bias gradients are sums of per-tile partials added in tile
 * order: forward and backward give the same bits on any thread count. (They may differ between
 * CPUs of different ISAs, as sgemm's do, and between batch sizes that tile differently.) */
#ifndef DM_NN_CONV_H
#define DM_NN_CONV_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"

/* Items per tile: the unit of work of one oneDNN call, and of the weight-gradient partial sums. */
#define DM_CONV_TILE 8

struct dm_conv_impl;

/* A layer, created once for its shapes (dm_conv_init). Read the public fields; do not write them. */
typedef struct dm_conv {
    int cin, cout, k, stride, pad; /* pad = k / 2 */
    int h, w;                      /* input spatial size */
    int ho, wo;                    /* output spatial size */
    size_t n_w;                    /* cout cin k k: W's floats */
    size_t n_params;               /* n_w + cout: W then b */
    struct dm_conv_impl *impl;     /* oneDNN primitives (conv.c) */
} dm_conv;

/* Scratch for batches of up to max_batch items: per-thread tile buffers (for omp_get_max_threads()
 * threads at creation; later calls use at most that many) and the weight-gradient partials. It
 * keeps nothing between calls, so one workspace can serve several layers (dm_conv_ws_init_shared).
 * Owned by one thread of control. */
typedef struct dm_conv_ws {
    int max_batch, nthreads;
    size_t wf_floats, wd_floats, dw_floats, part_floats, thr_floats; /* what it was sized for (conv.c) */
    float *wf, *wd; /* W in the forward / backward-data layouts */
    float *part;    /* per tile: weight-gradient partials, then bias partials */
    double *dwsum;  /* the weight-gradient partials' sum */
    float **thr;    /* (nthreads) per-thread tile buffers */
    void *block;    /* one allocation holding all of the above */
} dm_conv_ws;

/* A layer cin -> cout, k in {1, 3}, stride in {1, 2}, on h x w inputs. Errors name the bad shape
 * (DM_E_INPUT) or oneDNN's refusal (DM_E_INTERNAL). */
dm_status dm_conv_init(dm_conv *c, int cin, int cout, int k, int stride, int h, int w, char *err);
void dm_conv_free(dm_conv *c);

/* PyTorch's default Conv2d init (kaiming-uniform with a = sqrt(5)): W, b ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)), fan_in = cin k k; W in row-major (cout, cin, k, k) order, then b, each value
 * (float)((2u - 1) / sqrt(fan_in)) with u = dm_rng_uniform(rng). W at params, b at params + n_w. */
void dm_conv_init_params(const dm_conv *c, float *params, dm_rng *rng);

dm_status dm_conv_ws_init(dm_conv_ws *ws, const dm_conv *c, int max_batch, char *err);
/* One workspace for the n_convs layers convs[] (sized for the largest need of each part). */
dm_status dm_conv_ws_init_shared(dm_conv_ws *ws, const dm_conv *const *convs, int n_convs, int max_batch,
                                 char *err);
void dm_conv_ws_free(dm_conv_ws *ws);

/* y (n, cout, ho, wo) = conv(x (n, cin, h, w)) + b. 0 <= n <= ws->max_batch; x and y do not overlap. */
void dm_conv_forward(const dm_conv *c, const float *W, const float *b, dm_conv_ws *ws, int n, const float *x,
                     float *y);

/* Given x and dL/dy (n, cout, ho, wo): dW (n_w) and db (cout) are overwritten with dL/dW and dL/db
 * summed over the batch; dx (n, cin, h, w) = dL/dx, or += with acc_dx = 1 (skips and residuals
 * add their gradients), or nothing when dx is NULL. */
void dm_conv_backward(const dm_conv *c, const float *W, dm_conv_ws *ws, int n, const float *x, const float *dy,
                      float *dW, float *db, float *dx, int acc_dx);

#endif
