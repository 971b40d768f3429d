/* mixture_metrics.c — data_nll, in_mode99, mode_recall, mode_chi2 (mixture_metrics.h). */
#include "eval/mixture_metrics.h"

#include <gsl/gsl_cdf.h>
#include <math.h>

#include "core/alloc.h"

static int32_t comp_class(const dm_gmm *g, size_t k) { return g->cls ? g->cls[k] : (int32_t)k; }

/* The target weights w' (K): the mixture's, or per class rescaled to the labels' shares. */
static dm_status target_weights(const dm_gmm *g, const int32_t *y, size_t n, double *wt, char *err)
{
    const size_t K = g->k, C = g->cls ? g->n_classes : K;
    if (!y) {
        for (size_t k = 0; k < K; k++)
            wt[k] = g->w[k];
        return DM_OK;
    }
    double *wc = dm_calloc(2 * C, sizeof *wc), *nc = wc + C;   /* class weights W_c, counts n_c */
    if (!wc)
        return dm_err(err, DM_E_NOMEM, "mixture metrics: out of memory for %zu classes", C);
    dm_status st = DM_OK;
    for (size_t k = 0; k < K; k++)
        wc[comp_class(g, k)] += g->w[k];
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || (size_t)y[i] >= C || !(wc[y[i]] > 0.0)) {
            st = dm_err(err, DM_E_INPUT, "mixture metrics: sample %zu has class %d, not one of the mixture's %zu "
                        "classes of positive weight", i, (int)y[i], C);
            goto out;
        }
        nc[y[i]] += 1.0;
    }
    for (size_t k = 0; k < K; k++) {
        const int32_t c = comp_class(g, k);
        wt[k] = nc[c] / (double)n * g->w[k] / wc[c];
    }
out:
    dm_free(wc);
    return st;
}

dm_status dm_mixture_metrics(const dm_gmm *g, const float *x, const int32_t *y, size_t n, dm_mix_result *res,
                             char *err)
{
    const size_t K = g->k, d = g->dim;
    if (n == 0 || K == 0 || d == 0)
        return dm_err(err, DM_E_INPUT, "mixture metrics: need samples and a mixture (n = %zu, k = %zu, d = %zu)", n,
                      K, d);
    for (size_t q = 0; q < n * d; q++)
        if (!isfinite(x[q]))
            return dm_err(err, DM_E_NUMERIC, "mixture metrics: sample %zu is not finite", q / d);
    /* One block: w' (K), log-normalizers (K), 1 / (2 s^2) (K), counts (K), per-sample -log p (n),
     * component (n) and in-mode flag (n). */
    double *wt = dm_malloc(sizeof(double) * (4 * K + 3 * n));
    if (!wt)
        return dm_err(err, DM_E_NOMEM, "mixture metrics: out of memory for %zu samples", n);
    double *lc = wt + K, *h = lc + K, *count = h + K, *nll = count + K, *comp = nll + n, *inside = comp + n;
    dm_status st = target_weights(g, y, n, wt, err);
    if (st)
        goto out;
    const double q99 = gsl_cdf_chisq_Pinv(0.99, (double)d);
    for (size_t k = 0; k < K; k++) {
        const double s2 = g->s[k] * g->s[k];
        lc[k] = wt[k] > 0.0 ? log(wt[k]) - 0.5 * (double)d * log(2.0 * M_PI * s2) : -INFINITY;
        h[k] = 0.5 / s2;
        count[k] = 0.0;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        /* Pass 1: the largest log term (the most responsible component) and the nearest component
         * in its own stds; pass 2: log-sum-exp around the largest term. */
        double best = -INFINITY, maha = INFINITY;
        size_t arg = 0;
        for (size_t k = 0; k < K; k++) {
            if (!(wt[k] > 0.0))
                continue;
            double q = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double e = (double)xi[j] - g->mu[k * d + j];
                q += e * e;
            }
            const double l = lc[k] - h[k] * q;
            if (l > best) {
                best = l;
                arg = k;
            }
            if (2.0 * h[k] * q < maha)
                maha = 2.0 * h[k] * q;
        }
        double s = 0.0;
        for (size_t k = 0; k < K; k++) {
            if (!(wt[k] > 0.0))
                continue;
            double q = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double e = (double)xi[j] - g->mu[k * d + j];
                q += e * e;
            }
            s += exp(lc[k] - h[k] * q - best);
        }
        nll[i] = -(best + log(s));
        comp[i] = (double)arg;
        inside[i] = maha <= q99;
    }
    double sum_nll = 0.0, sum_in = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum_nll += nll[i];
        sum_in += inside[i];
        count[(size_t)comp[i]] += 1.0;
    }
    double recalled = 0.0, present = 0.0, chi2 = 0.0;
    for (size_t k = 0; k < K; k++) {
        if (!(wt[k] > 0.0))
            continue;
        const double e = (double)n * wt[k];
        present += 1.0;
        recalled += count[k] >= 0.5 * e;
        chi2 += (count[k] - e) * (count[k] - e) / e;
    }
    res->data_nll = sum_nll / (double)n;
    res->in_mode99 = sum_in / (double)n;
    res->mode_recall = recalled / present;
    res->mode_chi2 = chi2;
    res->n = n;
out:
    dm_free(wt);
    return st;
}
