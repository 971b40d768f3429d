/* gnorm_fast.c — the elementwise kernels of GroupNorm (+ SiLU) and SiLU alone (see gnorm.h,
 * gnorm_internal.h). Built with -O3 -ffast-math -mno-recip: no NaN/Inf checks here. No sums:
 * every output value depends on its own inputs and the row's constants only. */
#include <stddef.h>

#include "nn/gnorm.h"
#include "nn/gnorm_internal.h"

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

/* After the target pragma: the inlined exp must get the same vector width as its callers. */
#include "nn/fast_exp.h"

void dm_gnorm_apply_rows(int rows, int hw, float m, const float *a, const float *b, const float *x, float *y,
                         int silu)
{
    for (int r = 0; r < rows; r++) {
        const float ar = a[r], br = b[r];
        const float *restrict xr = x + (size_t)r * hw;
        float *restrict yr = y + (size_t)r * hw;
        if (silu)
            for (int j = 0; j < hw; j++) {
                const float u = (xr[j] - m) * ar + br;
                yr[j] = u * dm_sigmoid_fast(u);
            }
        else
            for (int j = 0; j < hw; j++)
                yr[j] = (xr[j] - m) * ar + br;
    }
}

void dm_gnorm_silu_grad_rows(int rows, int hw, float m, const float *a, const float *b, const float *x,
                             const float *dy, float *du)
{
    for (int r = 0; r < rows; r++) {
        const float ar = a[r], br = b[r];
        const float *restrict xr = x + (size_t)r * hw;
        const float *restrict dyr = dy + (size_t)r * hw;
        float *restrict dur = du + (size_t)r * hw;
        for (int j = 0; j < hw; j++) {
            const float u = (xr[j] - m) * ar + br, s = dm_sigmoid_fast(u);
            dur[j] = dyr[j] * (s * (1.0f + u * (1.0f - s))); /* SiLU'(u) */
        }
    }
}

void dm_gnorm_dx_rows(int rows, int hw, float m, const float *A, float B, float C, const float *du,
                      const float *x, float *dx, int acc)
{
    for (int r = 0; r < rows; r++) {
        const float ar = A[r];
        const float *restrict dur = du + (size_t)r * hw;
        const float *restrict xr = x + (size_t)r * hw;
        float *restrict dxr = dx + (size_t)r * hw;
        if (acc)
            for (int j = 0; j < hw; j++)
                dxr[j] += ar * dur[j] + B * (xr[j] - m) + C;
        else
            for (int j = 0; j < hw; j++)
                dxr[j] = ar * dur[j] + B * (xr[j] - m) + C;
    }
}

void dm_silu_forward(size_t m, const float *x, float *y)
{
    for (size_t j = 0; j < m; j++) {
        const float v = x[j];
        y[j] = v * dm_sigmoid_fast(v);
    }
}

void dm_silu_backward(size_t m, const float *x, const float *dy, float *dx, int acc_dx)
{
    if (acc_dx) {
        const float *restrict xx = x, *restrict g = dy;
        float *restrict d = dx;
        for (size_t j = 0; j < m; j++) {
            const float s = dm_sigmoid_fast(xx[j]);
            d[j] += g[j] * (s * (1.0f + xx[j] * (1.0f - s)));
        }
    } else { /* dx may be dy */
        for (size_t j = 0; j < m; j++) {
            const float s = dm_sigmoid_fast(x[j]);
            dx[j] = dy[j] * (s * (1.0f + x[j] * (1.0f - s)));
        }
    }
}
