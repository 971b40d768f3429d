/* kid.c — KID's estimator (kid.h). */
#include "eval/kid.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

static double kpoly(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++)
        s += (double)a[j] * b[j];
    const double u = s / (double)d + 1.0;
    return u * u * u;
}

double dm_kid_mmd2(const float *x, size_t n, const float *y, size_t m, size_t d)
{
    double kxx = 0.0, kyy = 0.0, kxy = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            kxx += kpoly(x + i * d, x + j * d, d);
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            kyy += kpoly(y + i * d, y + j * d, d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++)
            kxy += kpoly(x + i * d, y + j * d, d);
    return 2.0 * kxx / ((double)n * (double)(n - 1)) + 2.0 * kyy / ((double)m * (double)(m - 1)) -
           2.0 * kxy / ((double)n * (double)m);
}

/* The first s entries of idx (a permutation of 0..n-1 kept between calls) become a uniform
 * subset without replacement. */
static void draw_subset(size_t *idx, size_t n, size_t s, dm_rng *rng)
{
    for (size_t i = 0; i < s; i++) {
        const size_t j = i + (size_t)dm_rng_int(rng, (unsigned long)(n - i));
        const size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

dm_status dm_kid(const float *x, size_t n, const float *y, size_t m, size_t d, size_t n_subsets, size_t subset,
                 dm_rng *rng, double *mean, double *std, char *err)
{
    const size_t s = subset < n ? (subset < m ? subset : m) : (n < m ? n : m);
    if (s < 2 || n_subsets < 1 || d < 1)
        return dm_err(err, DM_E_INPUT, "kid: needs at least 2 points per set, 1 subset and 1 feature (sets of %zu "
                      "and %zu, subsets of %zu, %zu subsets, %zu features)", n, m, subset, n_subsets, d);
    size_t *ix = dm_malloc(sizeof(size_t) * n), *iy = dm_malloc(sizeof(size_t) * m);
    float *sx = dm_malloc_aligned(sizeof(float) * s * d), *sy = dm_malloc_aligned(sizeof(float) * s * d);
    double *v = dm_malloc(sizeof(double) * n_subsets);
    dm_status st = DM_OK;
    if (!ix || !iy || !sx || !sy || !v) {
        st = dm_err(err, DM_E_NOMEM, "kid: out of memory for subsets of %zu points of %zu features", s, d);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ix[i] = i;
    for (size_t i = 0; i < m; i++)
        iy[i] = i;
    double sum = 0.0;
    for (size_t r = 0; r < n_subsets; r++) {
        draw_subset(ix, n, s, rng);
        draw_subset(iy, m, s, rng);
        for (size_t i = 0; i < s; i++) {
            memcpy(sx + i * d, x + ix[i] * d, sizeof(float) * d);
            memcpy(sy + i * d, y + iy[i] * d, sizeof(float) * d);
        }
        v[r] = dm_kid_mmd2(sx, s, sy, s, d);
        sum += v[r];
    }
    *mean = sum / (double)n_subsets;
    double ss = 0.0;
    for (size_t r = 0; r < n_subsets; r++)
        ss += (v[r] - *mean) * (v[r] - *mean);
    *std = n_subsets > 1 ? sqrt(ss / (double)(n_subsets - 1)) : 0.0;
out:
    dm_free(ix);
    dm_free(iy);
    dm_free_aligned(sx);
    dm_free_aligned(sy);
    dm_free(v);
    return st;
}
