/* linear.c — see linear.h. */
#include "nn/linear.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void dm_linear_init_params(int in, int out, float *params, dm_rng *rng)
{
    const double bound = 1.0 / sqrt((double)in);
    const size_t m = dm_linear_n_params(in, out);
    for (size_t i = 0; i < m; i++)
        params[i] = (float)((2.0 * dm_rng_uniform(rng) - 1.0) * bound);
}

static int n_tiles(int len)
{
    return (len + DM_LINEAR_TILE - 1) / DM_LINEAR_TILE;
}

void dm_linear_forward(int in, int out, const float *params, int n, const float *x, float *y)
{
    const float *w = params, *b = params + (size_t)in * out;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_tiles(n); t++) {
        const int i0 = t * DM_LINEAR_TILE, rows = n - i0 < DM_LINEAR_TILE ? n - i0 : DM_LINEAR_TILE;
        float *yt = y + (size_t)i0 * out;
        for (int i = 0; i < rows; i++)
            memcpy(yt + (size_t)i * out, b, (size_t)out * sizeof *y);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x + (size_t)i0 * in, in, w,
                    in, 1.0f, yt, out);
    }
}

void dm_linear_backward(int in, int out, const float *params, int n, const float *x, const float *dy,
                        float *grads, float *dx, int acc_dx)
{
    float *dw = grads, *db = grads + (size_t)in * out;
    const float *w = params;
    const int tw = n_tiles(out), tx = dx ? n_tiles(n) : 0;
    if (n <= 0) {
        memset(grads, 0, dm_linear_n_params(in, out) * sizeof *grads);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tw + tx; t++) {
        if (t < tw) { // dW rows [o0, o0 + rows) = dy[:, o0..]^T x
            const int o0 = t * DM_LINEAR_TILE, rows = out - o0 < DM_LINEAR_TILE ? out - o0 : DM_LINEAR_TILE;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, in, n, 1.0f, dy + o0, out, x, in, 0.0f,
                        dw + (size_t)o0 * in, in);
        } else { // dx rows [i0, i0 + rows) = dy W
            const int i0 = (t - tw) * DM_LINEAR_TILE,
                      rows = n - i0 < DM_LINEAR_TILE ? n - i0 : DM_LINEAR_TILE;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy + (size_t)i0 * out,
                        out, w, in, acc_dx ? 1.0f : 0.0f, dx + (size_t)i0 * in, in);
        }
    }
    for (int o = 0; o < out; o++) { // db: item order, in double
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += dy[(size_t)i * out + o];
        db[o] = (float)s;
    }
}
