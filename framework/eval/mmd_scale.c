/* mmd_scale.c — the kernel of mmd2_ms and its value (mmd_scale.h). */
#include "eval/mmd_scale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "eval/metrics.h"

/* v rounded to 3 significant digits (through its decimal text: the value recorded is the value used). */
static double round3(double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.3g", v);
    return strtod(buf, NULL);
}

/* tr Cov of the mixture: sum_k w_k (d s_k^2 + |mu_k - mean|^2). */
static double mixture_trace(const dm_gmm *g)
{
    const size_t K = g->k, d = g->dim;
    double tr = 0.0;
    for (size_t j = 0; j < d; j++) {
        double m = 0.0;
        for (size_t k = 0; k < K; k++)
            m += g->w[k] * g->mu[k * d + j];
        for (size_t k = 0; k < K; k++) {
            const double e = g->mu[k * d + j] - m;
            tr += g->w[k] * (g->s[k] * g->s[k] + e * e);
        }
    }
    return tr;
}

/* E exp(-|x - x'|^2 / (2 h^2)) for x, x' independent draws of the mixture: x - x' of components
 * k, l is N(mu_k - mu_l, (s_k^2 + s_l^2) I), whose Gaussian expectation is closed-form. */
static double mixture_kappa(const dm_gmm *g, double h)
{
    const size_t K = g->k, d = g->dim;
    const double h2 = h * h;
    double sum = 0.0;
    for (size_t k = 0; k < K; k++)
        for (size_t l = 0; l < K; l++) {
            const double v = h2 + g->s[k] * g->s[k] + g->s[l] * g->s[l];
            double q = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double e = g->mu[k * d + j] - g->mu[l * d + j];
                q += e * e;
            }
            sum += g->w[k] * g->w[l] * exp(0.5 * (double)d * log(h2 / v) - 0.5 * q / v);
        }
    return sum;
}

/* tr Cov of the points (two passes per coordinate, in index order). */
static double sample_trace(const float *x, size_t n, size_t d)
{
    double tr = 0.0;
    for (size_t j = 0; j < d; j++) {
        double m = 0.0, q = 0.0;
        for (size_t i = 0; i < n; i++)
            m += x[i * d + j];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            q += ((double)x[i * d + j] - m) * ((double)x[i * d + j] - m);
        tr += q / (double)(n - 1);
    }
    return tr;
}

/* The mean kernel value over the pairs i < j of x (m, d), at each bandwidth. */
static void sample_kappa(const float *x, size_t m, size_t d, const double *h, double *kappa)
{
    for (int b = 0; b < DM_MMD_SCALES; b++)
        kappa[b] = 0.0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) {
            double q = 0.0;
            for (size_t k = 0; k < d; k++) {
                const double e = (double)x[i * d + k] - (double)x[j * d + k];
                q += e * e;
            }
            for (int b = 0; b < DM_MMD_SCALES; b++)
                kappa[b] += exp(-q / (2.0 * h[b] * h[b]));
        }
    for (int b = 0; b < DM_MMD_SCALES; b++)
        kappa[b] /= 0.5 * (double)m * (double)(m - 1);
}

dm_status dm_mmd_kernel_of(const dm_gmm *g, const float *ref, size_t n_ref, size_t d, dm_mmd_kernel *k, char *err)
{
    double lo, hi;
    if (g) {
        if (g->k == 0 || g->dim != d)
            return dm_err(err, DM_E_INPUT, "mmd2_ms: the mixture has %zu components in %zu dimensions, the data %zu",
                          g->k, g->dim, d);
        double smin = INFINITY;
        for (size_t c = 0; c < g->k; c++)
            if (g->w[c] > 0.0 && g->s[c] < smin)
                smin = g->s[c];
        lo = sqrt(0.5 * (double)d) * smin;
        hi = sqrt(2.0 * mixture_trace(g));
    } else {
        if (n_ref < 2 || d == 0 || !ref)
            return dm_err(err, DM_E_INPUT, "mmd2_ms: need at least 2 reference points (got %zu)", n_ref);
        for (size_t q = 0; q < n_ref * d; q++)
            if (!isfinite(ref[q]))
                return dm_err(err, DM_E_NUMERIC, "mmd2_ms: reference point %zu is not finite", q / d);
        hi = sqrt(2.0 * sample_trace(ref, n_ref, d));
        lo = hi / 16.0;
    }
    if (!(lo > 0.0 && isfinite(lo) && hi >= lo && isfinite(hi)))
        return dm_err(err, DM_E_INPUT, "mmd2_ms: no usable scale of the data (from %g to %g)", lo, hi);
    for (int b = 0; b < DM_MMD_SCALES; b++)
        k->h[b] = round3(lo * pow(hi / lo, (double)b / (DM_MMD_SCALES - 1)));
    if (g) {
        for (int b = 0; b < DM_MMD_SCALES; b++)
            k->kappa[b] = mixture_kappa(g, k->h[b]);
    } else {
        sample_kappa(ref, n_ref < 1000 ? n_ref : 1000, d, k->h, k->kappa);
    }
    for (int b = 0; b < DM_MMD_SCALES; b++) {
        k->kappa[b] = round3(k->kappa[b]);
        if (!(k->kappa[b] > 0.0))
            return dm_err(err, DM_E_INPUT, "mmd2_ms: the data's mean kernel value at bandwidth %g rounds to %g",
                          k->h[b], k->kappa[b]);
    }
    return DM_OK;
}

dm_status dm_mmd2_ms(const float *a, size_t na, const float *b, size_t nb, size_t d, const dm_mmd_kernel *k,
                     double *out, char *err)
{
    double v[DM_MMD_SCALES];
    dm_status st = dm_mmd2_unbiased_multi(a, na, b, nb, d, k->h, DM_MMD_SCALES, v, err);
    if (st)
        return st;
    double s = 0.0;
    for (int q = 0; q < DM_MMD_SCALES; q++)
        s += v[q] / k->kappa[q];
    *out = s / DM_MMD_SCALES;
    return DM_OK;
}
