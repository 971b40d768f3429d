/* dropout_fast.c — dropout (see dropout.h). Built with the fast flags (-O3 -ffast-math): the
 * per-element hash vectorizes; it is integer arithmetic, and the float work is one product. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/rng.h"
#include "nn/dropout.h"

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

/* dm_seed_index(k, j) (core/rng.c), inlined so the element loop vectorizes. */
static inline uint64_t seed_index(uint64_t k, uint64_t j)
{
    uint64_t z = k + 0x9e3779b97f4a7c15ULL * (j + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Drop threshold on the top 24 bits: an element is kept iff its bits >= thr. */
static uint64_t threshold(double p)
{
    return (uint64_t)(p * 16777216.0 + 0.5);
}

/* y (d) = x * mask * scale for one item whose stream key is ki; acc: y += that. */
static void item_pass(uint64_t ki, uint64_t thr, float scale, size_t d, const float *restrict x,
                      float *restrict y, int acc)
{
    if (acc)
        for (size_t j = 0; j < d; j++)
            y[j] += (seed_index(ki, j) >> 40) >= thr ? x[j] * scale : 0.0f;
    else
        for (size_t j = 0; j < d; j++)
            y[j] = (seed_index(ki, j) >> 40) >= thr ? x[j] * scale : 0.0f;
}

/* Item i's pass, with x and y allowed to be the same array (not acc). */
static void run(double p, uint64_t key, int64_t item0, int n, size_t d, const float *x, float *y, int acc)
{
    const uint64_t thr = threshold(p);
    const float scale = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint64_t ki = dm_seed_index(key, (uint64_t)(item0 + i));
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        if (xi == yi) { /* in place: restrict would be wrong; the same loop, one array */
            for (size_t j = 0; j < d; j++)
                yi[j] = (seed_index(ki, j) >> 40) >= thr ? yi[j] * scale : 0.0f;
        } else {
            item_pass(ki, thr, scale, d, xi, yi, acc);
        }
    }
}

void dm_dropout_forward(double p, uint64_t key, int64_t item0, int n, size_t d, const float *x, float *y)
{
    if (p == 0.0) {
        if (y != x)
            memcpy(y, x, (size_t)n * d * sizeof *y);
        return;
    }
    run(p, key, item0, n, d, x, y, 0);
}

void dm_dropout_backward(double p, uint64_t key, int64_t item0, int n, size_t d, const float *dy, float *dx,
                         int acc_dx)
{
    if (p == 0.0) {
        if (acc_dx) {
#pragma omp parallel for schedule(static)
            for (int i = 0; i < n; i++) {
                const float *restrict g = dy + (size_t)i * d;
                float *restrict o = dx + (size_t)i * d;
                for (size_t j = 0; j < d; j++)
                    o[j] += g[j];
            }
        } else if (dx != dy) {
            memcpy(dx, dy, (size_t)n * d * sizeof *dx);
        }
        return;
    }
    run(p, key, item0, n, d, dy, dx, acc_dx);
}
