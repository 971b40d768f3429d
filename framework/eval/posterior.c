#include "eval/posterior.h"

#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "diffusion/denoiser_gmm.h"

static int desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

dm_status dm_posterior_stats_at(const dm_gmm *g, double alpha, double sigma, const float *x0, size_t n,
                                const float *data, size_t nd, dm_rng *rng, dm_posterior_stats *out, char *err)
{
    const size_t d = g->dim, K = g->k;
    if (K > 256 || d > 64)
        return dm_err(err, DM_E_INPUT, "posterior: at most 256 components in 64 dimensions");
    double *xt = dm_malloc(sizeof(double) * n * d), *row = dm_malloc(sizeof(double) * n * 6);
    if (!xt || !row) {
        dm_free(xt);
        dm_free(row);
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu points", n);
    }
    for (size_t q = 0; q < n * d; q++)
        xt[q] = alpha * x0[q] + sigma * dm_rng_normal(rng);
    /* Per-point values, then sums in point order: the same bits for any thread count. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double r[256], m[256 * 64], v[256], D[64], rs[256];
        const double *x = xt + i * d;
        dm_gmm_posterior(g, alpha, sigma, x, r, m, v);
        double H = 0.0, tr = 0.0;
        for (size_t j = 0; j < d; j++) {
            D[j] = 0.0;
            for (size_t k = 0; k < K; k++)
                D[j] += r[k] * m[k * d + j];
        }
        for (size_t k = 0; k < K; k++) {
            if (r[k] > 0)
                H -= r[k] * log(r[k]);
            double q = 0.0;
            for (size_t j = 0; j < d; j++)
                q += (m[k * d + j] - D[j]) * (m[k * d + j] - D[j]);
            tr += r[k] * (v[k] * (double)d + q);
            rs[k] = r[k];
        }
        qsort(rs, K, sizeof *rs, desc);
        double c = 0.0;
        size_t k90 = 0;
        while (k90 < K && c < 0.9)
            c += rs[k90++];
        double best = INFINITY, bestm = INFINITY, e = 0.0;
        for (size_t p = 0; p < nd; p++) {
            double q = 0.0;
            for (size_t j = 0; j < d; j++)
                q += ((double)data[p * d + j] - D[j]) * ((double)data[p * d + j] - D[j]);
            if (q < best)
                best = q;
        }
        for (size_t k = 0; k < K; k++) {
            double q = 0.0;
            for (size_t j = 0; j < d; j++)
                q += (g->mu[k * d + j] - D[j]) * (g->mu[k * d + j] - D[j]);
            q = sqrt(q) / g->s[k];
            if (q < bestm)
                bestm = q;
        }
        for (size_t j = 0; j < d; j++)
            e += (D[j] - x0[i * d + j]) * (D[j] - x0[i * d + j]);
        double *o = row + i * 6;
        o[0] = sqrt(tr / (double)d);
        o[1] = exp(H);
        o[2] = (double)k90;
        o[3] = sqrt(best);
        o[4] = bestm;
        o[5] = sqrt(e);
    }
    double sum[6] = { 0 };
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 6; c++)
            sum[c] += row[i * 6 + c];
    const double N = (double)n;
    *out = (dm_posterior_stats){ sum[0] / N, sum[1] / N, sum[2] / N, sum[3] / N, sum[4] / N, sum[5] / N };
    dm_free(xt);
    dm_free(row);
    return DM_OK;
}

void dm_posterior_draw(const dm_gmm *g, double alpha, double sigma, const double *x, size_t m, dm_rng *rng,
                       float *out)
{
    const size_t d = g->dim, K = g->k;
    double r[256], mu[256 * 64], v[256];
    dm_gmm_posterior(g, alpha, sigma, x, r, mu, v);
    for (size_t i = 0; i < m; i++) {
        const double u = dm_rng_uniform(rng);
        double c = 0.0;
        size_t k = 0;
        while (k + 1 < K && (c += r[k]) <= u)
            k++;
        for (size_t j = 0; j < d; j++)
            out[i * d + j] = (float)(mu[k * d + j] + sqrt(v[k]) * dm_rng_normal(rng));
    }
}
