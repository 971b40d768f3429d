/* swd.c — sliced p-Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015), p = 1 or 2.
 *
 * SW_p(a, b)^p = mean over unit directions q of W_p^p(q.a, q.b), where W_p^p between two 1-D
 * empirical distributions is the integral over u in [0, 1] of |F_a^{-1}(u) - F_b^{-1}(u)|^p.
 * Both quantile functions are step functions (breaks at i/na and j/nb), so the integral is an
 * exact finite sum over the merged breakpoints; for na == nb it is the mean squared difference
 * of the sorted projections. Projections run in parallel; their W2^2 are added in index order,
 * so the value does not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "eval/metrics.h"

dm_status dm_swd_projections(uint64_t seed, size_t d, size_t n_proj, double *proj, char *err)
{
    if (d == 0 || n_proj == 0 || !proj)
        return dm_err(err, DM_E_INPUT,
                      "swd projections: need d >= 1, n_proj >= 1 and a buffer "
                      "(got d = %zu, n_proj = %zu)",
                      d, n_proj);
    dm_rng rng = {0};
    dm_status st = dm_rng_init(&rng, seed, err);
    if (st != DM_OK)
        goto out;
    /* A standard normal vector divided by its norm is uniform on the sphere (Muller 1959). */
    for (size_t p = 0; p < n_proj; p++) {
        double *v = proj + p * d; /* (d) */
        double norm2;
        do {
            norm2 = 0.0;
            for (size_t k = 0; k < d; k++) {
                v[k] = dm_rng_normal(&rng);
                norm2 += v[k] * v[k];
            }
        } while (norm2 < 1e-300); /* redraw the (practically impossible) zero vector */
        double inv = 1.0 / sqrt(norm2);
        for (size_t k = 0; k < d; k++)
            v[k] *= inv;
    }
out:
    dm_rng_free(&rng);
    return st;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static void project_sorted(const float *x, size_t n, size_t d, const double *p, double *y)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < d; k++)
            s += (double)x[i * d + k] * p[k];
        y[i] = s;
    }
    qsort(y, n, sizeof *y, cmp_double);
}

/* W_p^p between sorted ya (na) and sorted yb (nb). Breakpoints are compared as integers in units
 * of 1/(na nb) — i/na = i nb/(na nb) — so segment lengths are exact. */
static double wpp_sorted(const double *ya, size_t na, const double *yb, size_t nb, int order)
{
    size_t i = 0, j = 0, u = 0; /* u: current position, in units of 1/(na nb) */
    double acc = 0.0;
    while (i < na && j < nb) {
        size_t ea = (i + 1) * nb, eb = (j + 1) * na; /* ends of the current steps */
        size_t e = ea < eb ? ea : eb;
        double diff = ya[i] - yb[j];
        acc += (order == 1 ? fabs(diff) : diff * diff) * (double)(e - u);
        u = e;
        if (ea == e)
            i++;
        if (eb == e)
            j++;
    }
    return acc / ((double)na * (double)nb);
}

static dm_status check_finite(const float *x, size_t n, size_t d, const char *which, char *err)
{
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return dm_err(err, DM_E_NUMERIC, "swd: point %zu of %s has a non-finite coordinate", i / d,
                          which);
    return DM_OK;
}

dm_status dm_swd(const float *a, size_t na, const float *b, size_t nb, size_t d, const double *proj,
                 size_t n_proj, int order, double *out, char *err)
{
    dm_status st = DM_OK;
    double *buf = NULL, *w2 = NULL;
    if (na == 0 || nb == 0 || d == 0 || n_proj == 0 || !a || !b || !proj || !out) {
        st = dm_err(err, DM_E_INPUT,
                    "swd: need non-empty point sets and projections (na = %zu, "
                    "nb = %zu, d = %zu, n_proj = %zu)",
                    na, nb, d, n_proj);
        goto out;
    }
    if (order != 1 && order != 2) {
        st = dm_err(err, DM_E_INPUT, "swd: order must be 1 or 2, not %d", order);
        goto out;
    }
    if (na > SIZE_MAX / nb) {
        st = dm_err(err, DM_E_INPUT, "swd: na * nb = %zu * %zu overflows", na, nb);
        goto out;
    }
    if ((st = check_finite(a, na, d, "the first set", err)) != DM_OK ||
        (st = check_finite(b, nb, d, "the second set", err)) != DM_OK)
        goto out;
    /* Scratch is allocated here, not in the parallel region (the allocation hook is not
     * thread-safe): one (na + nb) slice per thread. */
    int nt = omp_get_max_threads();
    buf = dm_malloc((size_t)nt * (na + nb) * sizeof *buf); /* (nt, na + nb) */
    w2 = dm_malloc(n_proj * sizeof *w2);                   /* (n_proj) */
    if (!buf || !w2) {
        st = dm_err(err, DM_E_NOMEM, "swd: out of memory for %d x %zu projected points", nt, na + nb);
        goto out;
    }
#pragma omp parallel num_threads(nt)
    {
        double *ya = buf + (size_t)omp_get_thread_num() * (na + nb), *yb = ya + na;
#pragma omp for schedule(dynamic, 1)
        for (size_t p = 0; p < n_proj; p++) {
            project_sorted(a, na, d, proj + p * d, ya);
            project_sorted(b, nb, d, proj + p * d, yb);
            w2[p] = wpp_sorted(ya, na, yb, nb, order);
        }
    }
    double sum = 0.0;
    for (size_t p = 0; p < n_proj; p++)
        sum += w2[p];
    *out = order == 1 ? sum / (double)n_proj : sqrt(sum / (double)n_proj);
out:
    dm_free(buf);
    dm_free(w2);
    return st;
}
