#include "eval/conditional.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "diffusion/denoiser_gmm.h"
#include "eval/metrics.h"

/* The rows of x whose label is c, at most cap of them, copied in order into out; their count. */
static size_t gather(const float *x, const int32_t *y, size_t n, size_t d, int32_t c, size_t cap, float *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n && m < cap; i++)
        if (y[i] == c)
            memcpy(out + (m++) * d, x + i * d, sizeof(float) * d);
    return m;
}

dm_status dm_cond_metrics(const float *x, const int32_t *y, size_t n, const float *ref, const int32_t *ref_y,
                          size_t nr, size_t d, size_t C, const dm_gmm *gmm, size_t mmd_max, dm_cond_result *res,
                          char *err)
{
    dm_status st = DM_OK;
    const size_t cap = mmd_max / (C ? C : 1) > 2 ? mmd_max / C : 2;
    float *a = dm_malloc(sizeof(float) * cap * d), *b = dm_malloc(sizeof(float) * cap * d);
    size_t *count = gmm ? dm_calloc(gmm->k, sizeof *count) : NULL;
    if (!a || !b || (gmm && !count)) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the class-conditional metrics");
        goto out;
    }
    if (gmm && (gmm->k > 256 || gmm->dim != d || d > 64)) {
        st = dm_err(err, DM_E_INPUT, "class metrics: the mixture (%zu components in %zu dimensions) does not fit",
                    gmm->k, gmm->dim);
        goto out;
    }
    const double h = dm_mmd_bandwidth(ref, nr, d);
    double sum_mmd = 0.0, sum_var = 0.0, sum_ent = 0.0;
    size_t hits = 0, total = 0;
    for (size_t c = 0; c < C; c++) {
        const size_t na = gather(x, y, n, d, (int32_t)c, cap, a), nb = gather(ref, ref_y, nr, d, (int32_t)c, cap, b);
        if (na < 2 || nb < 2) {
            st = dm_err(err, DM_E_INPUT, "class metrics: class %zu has %zu samples and %zu reference points (need 2 "
                        "of each: raise eval.n_samples / eval.n_ref)", c, na, nb);
            goto out;
        }
        double m2;
        if ((st = dm_mmd2_unbiased(a, na, b, nb, d, h, &m2, err)))
            goto out;
        sum_mmd += m2;
        /* Variance of every sample of class c, in double (two passes). */
        double var = 0.0;
        size_t nc = 0;
        for (size_t j = 0; j < d; j++) {
            double s = 0.0, s2 = 0.0;
            nc = 0;
            for (size_t i = 0; i < n; i++)
                if (y[i] == (int32_t)c) {
                    s += x[i * d + j];
                    nc++;
                }
            const double mean = s / (double)nc;
            for (size_t i = 0; i < n; i++)
                if (y[i] == (int32_t)c)
                    s2 += (x[i * d + j] - mean) * (x[i * d + j] - mean);
            var += s2 / (double)(nc - 1);
        }
        sum_var += var / (double)d;
        if (!gmm)
            continue;
        /* Exact class posterior at t = 0 and the most responsible class-c component. */
        memset(count, 0, sizeof *count * gmm->k);
        size_t in_class = 0;
        for (size_t i = 0; i < n; i++) {
            if (y[i] != (int32_t)c)
                continue;
            double xi[64], r[256], m[256 * 64], v[256], pc[256] = { 0 };
            for (size_t j = 0; j < d; j++)
                xi[j] = x[i * d + j];
            dm_gmm_posterior(gmm, 1.0, 0.0, xi, r, m, v);
            size_t best = 0, bestk = gmm->k;
            for (size_t k = 0; k < gmm->k; k++) {
                const size_t ck = gmm->cls ? (size_t)gmm->cls[k] : k;
                pc[ck] += r[k];
            }
            for (size_t q = 1; q < C; q++)
                if (pc[q] > pc[best])
                    best = q;
            hits += best == c;
            total++;
            /* within class c: the component of largest responsibility (from the log terms, so
             * that far-out samples with r underflowing still pick their nearest component) */
            double lbest = -INFINITY;
            for (size_t k = 0; k < gmm->k; k++) {
                const size_t ck = gmm->cls ? (size_t)gmm->cls[k] : k;
                if (ck != c)
                    continue;
                double q = 0.0;
                for (size_t j = 0; j < d; j++)
                    q += (xi[j] - gmm->mu[k * d + j]) * (xi[j] - gmm->mu[k * d + j]);
                const double s2 = gmm->s[k] * gmm->s[k];
                const double l = log(gmm->w[k]) - 0.5 * (double)d * log(s2) - 0.5 * q / s2;
                if (l > lbest) {
                    lbest = l;
                    bestk = k;
                }
            }
            if (bestk < gmm->k) {
                count[bestk]++;
                in_class++;
            }
        }
        double ent = 0.0;
        for (size_t k = 0; k < gmm->k; k++)
            if (count[k]) {
                const double p = (double)count[k] / (double)in_class;
                ent -= p * log(p);
            }
        sum_ent += ent;
    }
    res->cond_mmd2 = sum_mmd / (double)C;
    res->class_var = sum_var / (double)C;
    res->class_share = gmm ? (double)hits / (double)total : NAN;
    res->class_entropy = gmm ? sum_ent / (double)C : NAN;
    res->n = n;
out:
    dm_free(a);
    dm_free(b);
    dm_free(count);
    return st;
}
