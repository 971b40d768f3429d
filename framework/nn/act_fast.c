/* act_fast.c — see act_fast.h. Built with -O3 -ffast-math: no NaN/Inf checks here. */
#include "nn/act_fast.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* exp arguments are clamped here: exp(80) = 5.5e34 keeps 1 + e and its reciprocal finite and
 * normal, where inf would turn the reciprocal-with-Newton-step division -ffast-math emits into
 * NaN. Clamping changes SiLU(z) and SiLU'(z) only for z < -80, where both are below 1e-33.
 * SiLU'(z) = s (1 + z (1 - s)) is evaluated with 1 - s = e s (e = exp(-z)): no subtraction that
 * -ffast-math's reassociation could turn into a cancellation (s + z s - z s s loses ~z ulps). */
#define EXP_MAX 80.0f

/* One row of the time embedding: emb (2*nfreq) = [sin(t f_k), cos(t f_k)]. The loop is vectorized
 * with libmvec's double sin and cos; every row runs the same code, so a row's bits do not depend on
 * which thread computes it or on its neighbours. */
static void embed_row(int nfreq, const double *restrict freq, double t, float *restrict emb)
{
    for (int k = 0; k < nfreq; k++)
        emb[k] = (float)sin(t * freq[k]);
    for (int k = 0; k < nfreq; k++)
        emb[nfreq + k] = (float)cos(t * freq[k]);
}

void dm_act_time_embed(int n, int in_dim, int nfreq, const double *freq, const float *x,
                       const float *tin, float *h0)
{
    const size_t ld = (size_t)in_dim + 2 * (size_t)nfreq;
    /* Contiguous row ranges per thread, so that a row can copy its predecessor's embedding
     * when both have the same t (that row was computed by the same thread, earlier). */
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        const int r0 = (int)((long)n * id / nt), r1 = (int)((long)n * (id + 1) / nt);
        for (int i = r0; i < r1; i++) {
            float *row = h0 + (size_t)i * ld; // (ld)
            memcpy(row, x + (size_t)i * in_dim, (size_t)in_dim * sizeof(float));
            uint32_t tb, pb;
            memcpy(&tb, &tin[i], sizeof tb);
            if (i > r0)
                memcpy(&pb, &tin[i - 1], sizeof pb);
            if (i > r0 && tb == pb)
                memcpy(row + in_dim, row - ld + in_dim, 2 * (size_t)nfreq * sizeof(float));
            else
                embed_row(nfreq, freq, (double)tin[i], row + in_dim);
        }
    }
}

void dm_act_bias_silu_fwd(int n, int m, const float *b, float *z, float *h)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *restrict zi = z + (size_t)i * m; // (m)
        float *restrict hi = h + (size_t)i * m; // (m)
        const float *restrict bb = b;
        for (int j = 0; j < m; j++) {
            const float v = zi[j] + bb[j];
            zi[j] = v;
            hi[j] = v / (1.0f + expf(fminf(-v, EXP_MAX)));
        }
    }
}

void dm_act_silu(size_t n, const float *z, float *h)
{
    const float *restrict zz = z;
    float *restrict hh = h;
    for (size_t i = 0; i < n; i++)
        hh[i] = zz[i] / (1.0f + expf(fminf(-zz[i], EXP_MAX)));
}

void dm_act_silu_bwd(int n, int m, const float *z, float *g, double *dbpart)
{
    const int nch = dm_act_n_chunks(n);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < nch; c++) {
        double *restrict acc = dbpart + (size_t)c * m; // (m)
        for (int j = 0; j < m; j++)
            acc[j] = 0.0;
        const int i1 = (c + 1) * DM_ACT_ROW_CHUNK < n ? (c + 1) * DM_ACT_ROW_CHUNK : n;
        for (int i = c * DM_ACT_ROW_CHUNK; i < i1; i++) {
            const float *restrict zi = z + (size_t)i * m; // (m)
            float *restrict gi = g + (size_t)i * m;       // (m)
            for (int j = 0; j < m; j++) {
                const float e = expf(fminf(-zi[j], EXP_MAX));
                const float s = 1.0f / (1.0f + e);
                const float d = gi[j] * (s * (1.0f + zi[j] * (e * s)));
                gi[j] = d;
                acc[j] += (double)d;
            }
        }
    }
}
