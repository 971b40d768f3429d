/* resample.c — nearest x2 upsampling and channel concatenation (see resample.h). */
#include "nn/resample.h"

#include <stddef.h>
#include <string.h>

void dm_upsample2_forward(int n, int c, int h, int w, const float *x, float *y)
{
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w; // (h, w)
        float *yp = y + (size_t)p * 4 * h * w;   // (2h, 2w)
        for (int a = 0; a < h; a++) {
            float *restrict y0 = yp + (size_t)2 * a * 2 * w; // row 2a
            const float *restrict xr = xp + (size_t)a * w;
            for (int b = 0; b < w; b++) {
                y0[2 * b] = xr[b];
                y0[2 * b + 1] = xr[b];
            }
            memcpy(y0 + 2 * w, y0, (size_t)2 * w * sizeof *y0); // row 2a + 1
        }
    }
}

void dm_upsample2_backward(int n, int c, int h, int w, const float *dy, float *dx, int acc_dx)
{
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const float *gp = dy + (size_t)p * 4 * h * w; // (2h, 2w)
        float *dp = dx + (size_t)p * h * w;           // (h, w)
        for (int a = 0; a < h; a++) {
            const float *restrict g0 = gp + (size_t)2 * a * 2 * w, *restrict g1 = g0 + 2 * w;
            float *restrict d = dp + (size_t)a * w;
            for (int b = 0; b < w; b++) {
                const float s = (g0[2 * b] + g0[2 * b + 1]) + (g1[2 * b] + g1[2 * b + 1]);
                d[b] = acc_dx ? d[b] + s : s;
            }
        }
    }
}

void dm_concat_forward(int n, int c1, int c2, int hw, const float *a, const float *b, float *y)
{
    const size_t sa = (size_t)c1 * hw, sb = (size_t)c2 * hw;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * (sa + sb);
        memcpy(yi, a + (size_t)i * sa, sa * sizeof *y);
        memcpy(yi + sa, b + (size_t)i * sb, sb * sizeof *y);
    }
}

/* d (m) = g, or d += g. */
static void put(size_t m, const float *restrict g, float *restrict d, int acc)
{
    if (!acc) {
        memcpy(d, g, m * sizeof *d);
        return;
    }
    for (size_t j = 0; j < m; j++)
        d[j] += g[j];
}

void dm_concat_backward(int n, int c1, int c2, int hw, const float *dy, float *da, int acc_a, float *db,
                        int acc_b)
{
    const size_t sa = (size_t)c1 * hw, sb = (size_t)c2 * hw;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *gi = dy + (size_t)i * (sa + sb);
        if (da)
            put(sa, gi, da + (size_t)i * sa, acc_a);
        if (db)
            put(sb, gi + sa, db + (size_t)i * sb, acc_b);
    }
}
