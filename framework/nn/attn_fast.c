/* attn_fast.c — the softmax kernels of self-attention (see attn_internal.h). Built with -O3
 * -ffast-math -mno-recip: no NaN/Inf checks here. No sums: the row maxima are order-free and the
 * row sums are attn.c's (double, fixed order). */
#include <stddef.h>

#include "nn/attn_internal.h"

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

/* After the target pragma: the inlined exp must get the same vector width as its callers. */
#include "nn/fast_exp.h"

void dm_attn_exp_rows(int rows, int len, float *s)
{
    for (int r = 0; r < rows; r++) {
        float *restrict sr = s + (size_t)r * len;
        float mx = sr[0];
        for (int j = 1; j < len; j++)
            mx = fmaxf(mx, sr[j]);
        for (int j = 0; j < len; j++)
            sr[j] = dm_exp_clamped(sr[j] - mx);
    }
}

void dm_attn_scale_rows(int rows, int len, const float *f, float *s)
{
    for (int r = 0; r < rows; r++) {
        float *restrict sr = s + (size_t)r * len;
        const float fr = f[r];
        for (int j = 0; j < len; j++)
            sr[j] *= fr;
    }
}

void dm_attn_softmax_bwd_rows(int rows, int len, const float *p, const float *dot, float scale, float *d)
{
    for (int r = 0; r < rows; r++) {
        const float *restrict pr = p + (size_t)r * len;
        float *restrict dr = d + (size_t)r * len;
        const float c = dot[r];
        for (int j = 0; j < len; j++)
            dr[j] = pr[j] * (dr[j] - c) * scale;
    }
}
