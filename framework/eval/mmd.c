/* mmd.c — maximum mean discrepancy with a Gaussian (RBF) kernel (Gretton et al. 2012, JMLR 13,
 * "A kernel two-sample test", eq. 3: the unbiased MMD^2_u), and the median-heuristic bandwidth.
 *
 * Determinism: every row sum is a double accumulated in a fixed order by the same code whatever
 * thread runs it, and row sums are added in index order, so the value is bit-identical for any
 * OpenMP thread count. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "eval/metrics.h"

/* ---- bandwidth ------------------------------------------------------------------------------ */

/* k-th smallest of v[0..n) (0-based), by quickselect with a median-of-three pivot; reorders v so
 * that v[k] holds it and everything after k is >= it. Deterministic: no random pivots. */
static double select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        double x = v[lo], y = v[mid], z = v[hi];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo, j = hi;
        while (i <= j) { /* Hoare partition: [lo, j] <= pivot <= [i, hi] */
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k]; /* between the two parts: equal to the pivot */
    }
    return v[k];
}

double dm_mmd_bandwidth(const float *ref, size_t n, size_t d)
{
    size_t m = n < 2000 ? n : 2000;
    if (m < 2 || d == 0 || !ref)
        return NAN;
    for (size_t i = 0; i < m * d; i++)
        if (!isfinite(ref[i]))
            return NAN;
    size_t np = m * (m - 1) / 2;
    double *dist2 = dm_malloc(np * sizeof *dist2); /* (m (m - 1) / 2) squared distances, i < j */
    if (!dist2)
        return NAN;
    size_t q = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) {
            double s = 0.0;
            for (size_t k = 0; k < d; k++) {
                double t = (double)ref[i * d + k] - (double)ref[j * d + k];
                s += t * t;
            }
            dist2[q++] = s;
        }
    /* sqrt is monotone: the median distance is sqrt of the median squared distance; for an even
     * count, the mean of the two middle distances. */
    double h = sqrt(select_kth(dist2, np, np / 2));
    if (np % 2 == 0) {
        double below = dist2[0]; /* the largest of the lower half, after the selection */
        for (size_t i = 1; i < np / 2; i++)
            below = dist2[i] > below ? dist2[i] : below;
        h = 0.5 * (h + sqrt(below));
    }
    dm_free(dist2);
    return h;
}

/* ---- unbiased MMD^2 ------------------------------------------------------------------------- */

/* exp(x) for x in [-708, 0], vectorizable (libm's exp is a call the compiler cannot vectorize
 * without -ffast-math, which this file must not use): x = k ln2 + r with |r| <= ln2/2 (Cody-Waite
 * split of ln2, as fdlibm's e_exp.c), exp(r) by its Taylor series to degree 12 (truncation error
 * < 2e-16 relative), times 2^k built in the exponent bits (k >= -1022 keeps them valid).
 * Relative error a few ulp. The caller clamps x: a clamp inside this function makes gcc split
 * the loop into a constant path and a computed path, which it then cannot vectorize. */
static inline double exp_bounded(double x)
{
    const double shift = 0x1.8p52; /* adding it rounds to an integer held in the low bits */
    const double ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
    double kd = x * 0x1.71547652b82fep0 + shift; /* x / ln2 */
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shift;
    double r = (x - kd * ln2_hi) - kd * ln2_lo;
    /* Estrin's scheme: the same polynomial as Horner's rule, but with a dependency chain of
     * depth 4 instead of 12, so that consecutive vector iterations overlap. */
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double p01 = 1.0 + r, p23 = 0.5 + r * (1.0 / 6.0), p45 = 1.0 / 24.0 + r * (1.0 / 120.0);
    double p67 = 1.0 / 720.0 + r * (1.0 / 5040.0), p89 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    double p1011 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), p12 = 1.0 / 479001600.0;
    double q0 = p01 + r2 * p23, q1 = p45 + r2 * p67, q2 = p89 + r2 * p1011;
    double p = (q0 + r4 * q1) + r8 * (q2 + r4 * p12);
    uint64_t bits = (ki + 1023) << 52; /* 2^k: k + 1023 in [2, 1023], a normal exponent */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#define DM_MMD_BLOCK 256 /* columns per block: the distance buffer stays in L1 */

/* DM_E_NUMERIC naming the first point of a (na, d) or b (nb, d) that is not finite. */
static dm_status check_finite(const float *a, size_t na, const float *b, size_t nb, size_t d, char *err)
{
    for (size_t i = 0; i < na * d; i++)
        if (!isfinite(a[i]))
            return dm_err(err, DM_E_NUMERIC, "mmd: point %zu of the first set is not finite", i / d);
    for (size_t i = 0; i < nb * d; i++)
        if (!isfinite(b[i]))
            return dm_err(err, DM_E_NUMERIC, "mmd: point %zu of the second set is not finite", i / d);
    return DM_OK;
}

/* dist2[j] = |x - y_{b0 + j}|^2 for j < len, x (d), y given transposed: yt (d, ny); summed over
 * coordinates in order, so every kernel built on it sees the same distances bit for bit. */
static inline void block_dist2(const float *x, const double *yt, size_t ny, size_t d, size_t b0, size_t len,
                               double *dist2)
{
    const double x0 = (double)x[0];
#pragma omp simd
    for (size_t j = 0; j < len; j++) {
        double t = yt[b0 + j] - x0;
        dist2[j] = t * t;
    }
    for (size_t k = 1; k < d; k++) {
        const double *y = yt + k * ny + b0;
        double xk = (double)x[k];
#pragma omp simd
        for (size_t j = 0; j < len; j++) {
            double t = y[j] - xk;
            dist2[j] += t * t;
        }
    }
}

/* sum over j in [j0, j1) of exp(-|x - y_j|^2 * c), x (d), y given transposed: yt (d, ny). */
static double row_sum(const float *x, const double *yt, size_t ny, size_t d, size_t j0, size_t j1, double c)
{
    /* Aligned so that the vectorized reduction below splits its sum the same way in every
     * thread (its lane partial sums must not depend on where a thread's stack lies). */
    _Alignas(64) double dist2[DM_MMD_BLOCK];
    double acc = 0.0;
    const double lim = 708.0 / c; /* -c * lim = -708 up to rounding */
    for (size_t b0 = j0; b0 < j1; b0 += DM_MMD_BLOCK) {
        size_t len = j1 - b0 < DM_MMD_BLOCK ? j1 - b0 : DM_MMD_BLOCK;
        block_dist2(x, yt, ny, d, b0, len, dist2);
        /* exp(-708) ~ 3e-308 stands in for smaller kernel values: it changes no sum. */
#pragma omp simd
        for (size_t j = 0; j < len; j++)
            if (dist2[j] > lim)
                dist2[j] = lim;
#pragma omp simd reduction(+ : acc) simdlen(8)
        for (size_t j = 0; j < len; j++)
            acc += exp_bounded(-c * dist2[j]);
    }
    return acc;
}

/* (n, d) floats -> (d, n) doubles, so the inner loop over points is unit-stride. */
static void transpose(const float *x, size_t n, size_t d, double *xt)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            xt[k * n + i] = x[i * d + k];
}

dm_status dm_mmd2_unbiased(const float *a, size_t na, const float *b, size_t nb, size_t d, double h,
                           double *out, char *err)
{
    dm_status st = DM_OK;
    double *block = NULL;
    if (na < 2 || nb < 2 || d == 0 || !a || !b || !out) {
        st = dm_err(err, DM_E_INPUT,
                    "mmd: need at least 2 points per set and d >= 1 (na = %zu, "
                    "nb = %zu, d = %zu)",
                    na, nb, d);
        goto out;
    }
    if (!(h > 0.0 && isfinite(h))) {
        st = dm_err(err, DM_E_INPUT,
                    "mmd: the bandwidth must be finite and > 0 (got %g; dm_mmd_bandwidth gives NaN for "
                    "fewer than 2 reference points, a non-finite one, or no memory)",
                    h);
        goto out;
    }
    if ((st = check_finite(a, na, b, nb, d, err)))
        goto out;
    /* One block: at (d, na), bt (d, nb), row sums raa (na), rbb (nb), rab (na). */
    block = dm_malloc(((na + nb) * d + 2 * na + nb) * sizeof *block);
    if (!block) {
        st = dm_err(err, DM_E_NOMEM, "mmd: out of memory for %zu + %zu points", na, nb);
        goto out;
    }
    double *at = block, *bt = at + d * na, *raa = bt + d * nb, *rbb = raa + na, *rab = rbb + nb;
    transpose(a, na, d, at);
    transpose(b, nb, d, bt);
    const double c = 1.0 / (2.0 * h * h);
    if (!isfinite(c)) {
        st = dm_err(err, DM_E_INPUT, "mmd: the bandwidth %g is too small", h);
        goto out;
    }
    /* Rows of the upper triangles (j > i) and of the full cross block; the triangle rows
     * shrink, hence the dynamic schedule. Which thread computes a row does not change its sum. */
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < na; i++)
            raa[i] = row_sum(a + i * d, at, na, d, i + 1, na, c);
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < nb; i++)
            rbb[i] = row_sum(b + i * d, bt, nb, d, i + 1, nb, c);
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < na; i++)
            rab[i] = row_sum(a + i * d, bt, nb, d, 0, nb, c);
    }
    double saa = 0.0, sbb = 0.0, sab = 0.0;
    for (size_t i = 0; i < na; i++) {
        saa += raa[i];
        sab += rab[i];
    }
    for (size_t i = 0; i < nb; i++)
        sbb += rbb[i];
    /* Gretton et al. 2012 eq. 3; each off-diagonal pair counted once above, hence the 2. */
    double fa = (double)na, fb = (double)nb;
    *out = 2.0 * saa / (fa * (fa - 1.0)) + 2.0 * sbb / (fb * (fb - 1.0)) - 2.0 * sab / (fa * fb);
out:
    dm_free(block);
    return st;
}

/* ---- unbiased MMD^2 at several bandwidths ------------------------------------------------- */

/* row_sum for nh bandwidths at once: the squared distances of a block are computed once, then
 * each bandwidth's kernel values are clamped and summed exactly as row_sum does (same loops, same
 * reduction), so acc[b] equals row_sum(..., c[b]) bit for bit. acc (nh) is added to. */
static void row_sum_multi(const float *x, const double *yt, size_t ny, size_t d, size_t j0, size_t j1,
                          const double *c, size_t nh, double *acc)
{
    _Alignas(64) double dist2[DM_MMD_BLOCK];
    _Alignas(64) double clamped[DM_MMD_BLOCK];
    for (size_t b0 = j0; b0 < j1; b0 += DM_MMD_BLOCK) {
        size_t len = j1 - b0 < DM_MMD_BLOCK ? j1 - b0 : DM_MMD_BLOCK;
        block_dist2(x, yt, ny, d, b0, len, dist2);
        for (size_t b = 0; b < nh; b++) {
            const double lim = 708.0 / c[b], cb = c[b];
            double a = 0.0;
#pragma omp simd
            for (size_t j = 0; j < len; j++)
                clamped[j] = dist2[j] > lim ? lim : dist2[j];
#pragma omp simd reduction(+ : a) simdlen(8)
            for (size_t j = 0; j < len; j++)
                a += exp_bounded(-cb * clamped[j]);
            acc[b] += a;
        }
    }
}

dm_status dm_mmd2_unbiased_multi(const float *a, size_t na, const float *b, size_t nb, size_t d, const double *h,
                                 size_t nh, double *out, char *err)
{
    dm_status st = DM_OK;
    double *block = NULL;
    if (na < 2 || nb < 2 || d == 0 || !a || !b || !out || !h || nh == 0) {
        st = dm_err(err, DM_E_INPUT, "mmd: need at least 2 points per set, d >= 1 and a bandwidth (na = %zu, "
                    "nb = %zu, d = %zu, %zu bandwidths)", na, nb, d, nh);
        goto out;
    }
    for (size_t q = 0; q < nh; q++)
        if (!(h[q] > 0.0 && isfinite(h[q]) && isfinite(1.0 / (2.0 * h[q] * h[q])))) {
            st = dm_err(err, DM_E_INPUT, "mmd: bandwidth %zu is %g; each must be finite, > 0 and not tiny", q, h[q]);
            goto out;
        }
    if ((st = check_finite(a, na, b, nb, d, err)))
        goto out;
    /* One block: at (d, na), bt (d, nb), kernel constants c (nh), row sums raa (na, nh),
     * rbb (nb, nh), rab (na, nh). */
    block = dm_calloc((na + nb) * d + nh + (2 * na + nb) * nh, sizeof *block);
    if (!block) {
        st = dm_err(err, DM_E_NOMEM, "mmd: out of memory for %zu + %zu points at %zu bandwidths", na, nb, nh);
        goto out;
    }
    double *at = block, *bt = at + d * na, *c = bt + d * nb, *raa = c + nh, *rbb = raa + na * nh,
           *rab = rbb + nb * nh;
    transpose(a, na, d, at);
    transpose(b, nb, d, bt);
    for (size_t q = 0; q < nh; q++)
        c[q] = 1.0 / (2.0 * h[q] * h[q]);
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < na; i++)
            row_sum_multi(a + i * d, at, na, d, i + 1, na, c, nh, raa + i * nh);
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < nb; i++)
            row_sum_multi(b + i * d, bt, nb, d, i + 1, nb, c, nh, rbb + i * nh);
#pragma omp for schedule(dynamic, 16) nowait
        for (size_t i = 0; i < na; i++)
            row_sum_multi(a + i * d, bt, nb, d, 0, nb, c, nh, rab + i * nh);
    }
    const double fa = (double)na, fb = (double)nb;
    for (size_t q = 0; q < nh; q++) {
        double saa = 0.0, sbb = 0.0, sab = 0.0;
        for (size_t i = 0; i < na; i++) {
            saa += raa[i * nh + q];
            sab += rab[i * nh + q];
        }
        for (size_t i = 0; i < nb; i++)
            sbb += rbb[i * nh + q];
        out[q] = 2.0 * saa / (fa * (fa - 1.0)) + 2.0 * sbb / (fb * (fb - 1.0)) - 2.0 * sab / (fa * fb);
    }
out:
    dm_free(block);
    return st;
}
