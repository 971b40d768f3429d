/* act_fast.c — see act_fast.h. Built with -O3 -ffast-math: no NaN/Inf checks here. Every loop
 * handles a row (or a fixed row chunk) with the same instructions whichever thread runs it. */
#include "nn/act_fast.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* AVX-512 machines: 16-wide vectors. OpenBLAS's sgemm kernel already runs 512-bit code, so the
 * clock is already at its AVX-512 level; GCC would otherwise stop at 256 bits. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

/* After the target pragma: the inlined exp must get the same vector width as its callers. */
#include "nn/fast_exp.h"

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

/* Rows [i0, i1) of the next product's output := b, or 0 (see dm_act_prefill). */
static inline void prefill_rows(const dm_act_prefill *next, int i0, int i1)
{
    if (!next)
        return;
    for (int i = i0; i < i1; i++) {
        if (next->b)
            memcpy(next->z + (size_t)i * next->m, next->b, (size_t)next->m * sizeof(float));
        else
            memset(next->z + (size_t)i * next->m, 0, (size_t)next->m * sizeof(float));
    }
}

void dm_act_time_embed(int n, int in_dim, int nfreq, const double *freq, const float *x, const float *tin,
                       float *h0, const dm_act_prefill *next)
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
        prefill_rows(next, r0, r1);
    }
}

/* SiLU of one row: z (m) = pre-activation in, s = sigmoid(z) out; h (m) = z s. */
static inline void silu_row(int m, float *restrict z, float *restrict h)
{
    for (int j = 0; j < m; j++) {
        const float v = z[j];
        const float s = 1.0f / (1.0f + dm_exp_clamped(-v));
        z[j] = s;
        h[j] = v * s;
    }
}

void dm_act_silu_fwd(int n, int m, float *z, float *h, const dm_act_prefill *next, const dm_act_out *out)
{
    const int od = out ? out->od : 0;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *hi = h + (size_t)i * m; // (m)
        silu_row(m, z + (size_t)i * m, hi);
        prefill_rows(next, i, i + 1);
        /* The output layer while the row is in L1: saves a pass over h and a skinny sgemm. */
        for (int o = 0; o < od; o++) {
            const float *restrict w = out->w + (size_t)o * m; // (m)
            float acc = 0.0f;
            for (int j = 0; j < m; j++)
                acc += hi[j] * w[j];
            out->z[(size_t)i * od + o] = acc + out->b[o];
            out->out[(size_t)i * od + o] = acc + out->b[o];
        }
    }
}

void dm_act_affine_rows(int n, int m, int k, const float *c, const float *x, const float *wt, float *z)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *restrict zi = z + (size_t)i * m; // (m)
        const float *restrict xi = x + (size_t)i * k;
        for (int j = 0; j < m; j++)
            zi[j] = c[j];
        for (int d = 0; d < k; d++) {
            const float *restrict w = wt + (size_t)d * m; // (m)
            for (int j = 0; j < m; j++)
                zi[j] += xi[d] * w[j];
        }
    }
}

void dm_act_silu(size_t n, const float *z, float *h)
{
    const float *restrict zz = z;
    float *restrict hh = h;
    for (size_t i = 0; i < n; i++)
        hh[i] = zz[i] / (1.0f + dm_exp_clamped(-zz[i]));
}

void dm_act_silu_bwd(int n, int m, const float *s, const float *h, float *g, double *dbpart, int od,
                     const float *dout, const float *wo, const dm_act_prefill *next)
{
    const int nch = dm_act_n_chunks(n);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < nch; c++) {
        double *restrict acc = dbpart + (size_t)c * m; // (m)
        for (int j = 0; j < m; j++)
            acc[j] = 0.0;
        const int i1 = (c + 1) * DM_ACT_ROW_CHUNK < n ? (c + 1) * DM_ACT_ROW_CHUNK : n;
        for (int i = c * DM_ACT_ROW_CHUNK; i < i1; i++) {
            const float *restrict si = s + (size_t)i * m; // (m)
            const float *restrict hi = h + (size_t)i * m; // (m)
            float *restrict gi = g + (size_t)i * m;       // (m)
            /* dL/dh of the last hidden layer = dout W_out, formed here from the (od) dout row. */
            for (int o = 0; o < od; o++) {
                const float d = dout[(size_t)i * od + o];
                const float *restrict w = wo + (size_t)o * m; // (m)
                if (o == 0)
                    for (int j = 0; j < m; j++)
                        gi[j] = d * w[j];
                else
                    for (int j = 0; j < m; j++)
                        gi[j] += d * w[j];
            }
            /* SiLU'(z) = s (1 + z (1 - s)) = s + h (1 - s); 1 - s is exact for s >= 1/2. */
            for (int j = 0; j < m; j++) {
                const float d = gi[j] * (si[j] + hi[j] * (1.0f - si[j]));
                gi[j] = d;
                acc[j] += (double)d;
            }
            prefill_rows(next, i, i + 1);
        }
    }
}
