/* test_metrics.c — sliced Wasserstein and MMD against exact answers, their invariances, and
 * bit-identity across thread counts. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "eval/metrics.h"

static void near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("%s: got %.17g, want %.17g (tolerance %g)\n", what, got, want, tol);
        fail();
    }
}

/* n points (n, d): N(shift, I), from a stream of seed. */
static float *normals(size_t n, size_t d, float shift, uint64_t seed)
{
    char err[DM_ERR_SIZE];
    dm_rng rng;
    float *x = dm_malloc(n * d * sizeof *x);
    assert_non_null(x);
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)dm_rng_normal(&rng) + shift;
    dm_rng_free(&rng);
    return x;
}

static double swd_p(const float *a, size_t na, const float *b, size_t nb, size_t d, const double *proj,
                    size_t np, int order)
{
    char err[DM_ERR_SIZE];
    double v = -1.0;
    dm_status st = dm_swd(a, na, b, nb, d, proj, np, order, &v, err);
    if (st != DM_OK)
        print_error("dm_swd: %s\n", err);
    assert_int_equal(st, DM_OK);
    return v;
}

/* The sliced 2-Wasserstein distance (most exact cases below are written for it). */
static double swd(const float *a, size_t na, const float *b, size_t nb, size_t d, const double *proj,
                  size_t np)
{
    return swd_p(a, na, b, nb, d, proj, np, 2);
}

static double mmd2(const float *a, size_t na, const float *b, size_t nb, size_t d, double h)
{
    char err[DM_ERR_SIZE];
    double v = NAN;
    dm_status st = dm_mmd2_unbiased(a, na, b, nb, d, h, &v, err);
    if (st != DM_OK)
        print_error("dm_mmd2_unbiased: %s\n", err);
    assert_int_equal(st, DM_OK);
    return v;
}

/* ---- sliced Wasserstein --------------------------------------------------------------------- */

static void test_projections(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { NP = 20000 };
    static double p[NP * 3], q[NP * 3], r[NP * 3];
    assert_int_equal(dm_swd_projections(5, 3, NP, p, err), DM_OK);
    assert_int_equal(dm_swd_projections(5, 3, NP, q, err), DM_OK);
    assert_int_equal(dm_swd_projections(6, 3, NP, r, err), DM_OK);
    assert_memory_equal(p, q, sizeof p);
    assert_memory_not_equal(p, r, sizeof p);
    /* Unit vectors, uniform on the sphere: mean 0, E[p_k^2] = 1/3, E[p_0 p_1] = 0. */
    double m[3] = {0}, m2[3] = {0}, c01 = 0.0;
    for (size_t i = 0; i < NP; i++) {
        const double *v = p + 3 * i;
        near(v[0] * v[0] + v[1] * v[1] + v[2] * v[2], 1.0, 1e-14, "unit norm");
        for (int k = 0; k < 3; k++) {
            m[k] += v[k];
            m2[k] += v[k] * v[k];
        }
        c01 += v[0] * v[1];
    }
    for (int k = 0; k < 3; k++) {
        near(m[k] / NP, 0.0, 0.02, "mean of a direction coordinate");
        near(m2[k] / NP, 1.0 / 3.0, 0.01, "second moment of a direction coordinate");
    }
    near(c01 / NP, 0.0, 0.01, "coordinate correlation");
    assert_int_equal(dm_swd_projections(5, 0, 1, p, err), DM_E_INPUT);
}

static void test_swd_1d_exact(void **state)
{
    (void)state;
    const double one[] = {1.0};
    const float a01[] = {0.0f, 1.0f}, b01[] = {1.0f, 0.0f};
    near(swd(a01, 2, b01, 2, 1, one, 1), 0.0, 0.0, "same set");

    /* A shift by c moves every quantile by c. */
    enum { N = 257 };
    float a[N], b[N];
    for (size_t i = 0; i < N; i++) {
        a[i] = (float)((i * 37) % N) * 0.25f; /* exact in float */
        b[i] = a[i] + 3.5f;
    }
    near(swd(a, N, b, N, 1, one, 1), 3.5, 1e-12, "1-D shift");
    const double minus[] = {-1.0};
    near(swd(a, N, b, N, 1, minus, 1), 3.5, 1e-12, "1-D shift, reversed direction");

    /* Unequal sizes: the quantile functions integrated piecewise. */
    const float z[] = {0.0f}, a3[] = {2.0f, 0.0f, 1.0f}, b2[] = {3.0f, 0.0f};
    near(swd(z, 1, a01, 2, 1, one, 1), sqrt(0.5), 1e-15, "{0} vs {0, 1}");
    /* {0,1,2} vs {0,3}: on (1/3,1/2] 1 vs 0, on (1/2,2/3] 1 vs 3, on (2/3,1] 2 vs 3. */
    near(swd(a3, 3, b2, 2, 1, one, 1), sqrt(1.0 / 6 + 4.0 / 6 + 1.0 / 3), 1e-15, "{0,1,2} vs {0,3}");
    near(swd(b2, 2, a3, 3, 1, one, 1), sqrt(7.0 / 6), 1e-15, "{0,3} vs {0,1,2}");
    /* A set against a copy of itself repeated: the same empirical distribution. */
    const float a33[] = {2.0f, 0.0f, 1.0f, 1.0f, 2.0f, 0.0f};
    near(swd(a3, 3, a33, 6, 1, one, 1), 0.0, 0.0, "a vs a twice");

    /* Order 1: the same quantile pieces, absolute instead of squared differences. */
    near(swd_p(z, 1, a01, 2, 1, one, 1, 1), 0.5, 1e-15, "W1 {0} vs {0, 1}");
    near(swd_p(a3, 3, b2, 2, 1, one, 1, 1), 1.0 / 6 + 2.0 / 6 + 1.0 / 3, 1e-15, "W1 {0,1,2} vs {0,3}");
    near(swd_p(a, N, b, N, 1, one, 1, 1), 3.5, 1e-12, "W1 1-D shift");
}

static void test_swd_shift_2d(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 1000, NP = 64 };
    double proj[NP * 2];
    assert_int_equal(dm_swd_projections(11, 2, NP, proj, err), DM_OK);
    float *a = normals(N, 2, 0.0f, 1);
    float b[N * 2];
    const double c[2] = {0.75, -1.25};
    for (size_t i = 0; i < N; i++) {
        /* round a to a grid so the shifted coordinates are exact in float */
        a[2 * i] = roundf(a[2 * i] * 64.0f) / 64.0f;
        a[2 * i + 1] = roundf(a[2 * i + 1] * 64.0f) / 64.0f;
        b[2 * i] = a[2 * i] + (float)c[0];
        b[2 * i + 1] = a[2 * i + 1] + (float)c[1];
    }
    double want = 0.0;
    for (size_t p = 0; p < NP; p++) {
        double pc = proj[2 * p] * c[0] + proj[2 * p + 1] * c[1];
        want += pc * pc;
    }
    want = sqrt(want / NP);
    near(swd(a, N, b, N, 2, proj, NP), want, 1e-12, "2-D shift");
    near(swd(b, N, a, N, 2, proj, NP), want, 1e-12, "2-D shift, swapped");
    double want1 = 0.0;
    for (size_t p = 0; p < NP; p++)
        want1 += fabs(proj[2 * p] * c[0] + proj[2 * p + 1] * c[1]);
    near(swd_p(a, N, b, N, 2, proj, NP, 1), want1 / NP, 1e-12, "2-D shift, order 1");
    dm_free(a);
}

static void test_swd_symmetry_threads(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { NP = 50 };
    double proj[NP * 3];
    assert_int_equal(dm_swd_projections(3, 3, NP, proj, err), DM_OK);
    float *a = normals(700, 3, 0.0f, 21), *b = normals(450, 3, 0.3f, 22);
    omp_set_num_threads(1);
    double v1 = swd(a, 700, b, 450, 3, proj, NP);
    omp_set_num_threads(2);
    double v2 = swd(a, 700, b, 450, 3, proj, NP);
    double v3 = swd(b, 450, a, 700, 3, proj, NP);
    assert_memory_equal(&v1, &v2, sizeof v1);
    assert_memory_equal(&v1, &v3, sizeof v1); /* exactly symmetric */
    assert_true(v1 > 0.2 && v1 < 0.7);        /* a shift of 0.3 per axis: |c| = 0.52 */

    double out;
    assert_int_equal(dm_swd(a, 0, b, 450, 3, proj, NP, 2, &out, err), DM_E_INPUT);
    assert_int_equal(dm_swd(a, 700, b, 450, 3, proj, NP, 3, &out, err), DM_E_INPUT);
    a[5] = NAN;
    assert_int_equal(dm_swd(a, 700, b, 450, 3, proj, NP, 2, &out, err), DM_E_NUMERIC);
    assert_non_null(strstr(err, "point 1 of the first set"));
    dm_free(a);
    dm_free(b);
}

/* ---- MMD ------------------------------------------------------------------------------------ */

static void test_bandwidth_exact(void **state)
{
    (void)state;
    const float p3[] = {0.0f, 1.0f, 3.0f};                  /* distances 1, 3, 2 */
    const float p4[] = {0.0f, 1.0f, 3.0f, 7.0f};            /* 1, 3, 7, 2, 6, 4: median (3 + 4) / 2 */
    const float q[] = {0.0f, 0.0f, 3.0f, 4.0f, 0.0f, 4.0f}; /* 2-D: 5, 4, 3 */
    assert_true(dm_mmd_bandwidth(p3, 3, 1) == 2.0);
    assert_true(dm_mmd_bandwidth(p4, 4, 1) == 3.5);
    assert_true(dm_mmd_bandwidth(q, 3, 2) == 4.0);
    assert_true(isnan(dm_mmd_bandwidth(p3, 1, 1)));

    /* Only the first 2000 points count. */
    float *x = normals(2500, 2, 0.0f, 31);
    double h2000 = dm_mmd_bandwidth(x, 2000, 2);
    for (size_t i = 2000; i < 2500; i++)
        x[2 * i] = 1000.0f;
    assert_true(dm_mmd_bandwidth(x, 2500, 2) == h2000);
    near(h2000, sqrt(2.0) * sqrt(2.0 * log(2.0)), 0.03, "median distance of N(0, I_2) pairs");
    dm_free(x);
}

static double k_rbf(const float *x, const float *y, size_t d, double h)
{
    double s = 0.0;
    for (size_t k = 0; k < d; k++)
        s += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
    return exp(-s / (2.0 * h * h));
}

static void test_mmd_tiny_exact(void **state)
{
    (void)state;
    const float a[] = {0.0f, 0.0f, 1.0f, 0.5f, -0.5f, 2.0f};
    const float b[] = {0.25f, -1.0f, 3.0f, 1.0f};
    const double h = 1.3;
    /* Gretton et al. 2012 eq. 3 written out for na = 3, nb = 2. */
    double kaa = 2.0 * (k_rbf(a, a + 2, 2, h) + k_rbf(a, a + 4, 2, h) + k_rbf(a + 2, a + 4, 2, h));
    double kbb = 2.0 * k_rbf(b, b + 2, 2, h);
    double kab = 0.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            kab += k_rbf(a + 2 * i, b + 2 * j, 2, h);
    double want = kaa / 6.0 + kbb / 2.0 - 2.0 * kab / 6.0;
    near(mmd2(a, 3, b, 2, 2, h), want, 1e-14, "3 vs 2 points");
    near(mmd2(b, 2, a, 3, 2, h), want, 1e-14, "2 vs 3 points");
    /* b far away: the cross kernel underflows (the clamped path), MMD^2 = the within terms. */
    const float bfar[] = {1000.25f, -1001.0f, 1003.0f, -999.0f}; /* b + (1000, -1000) */
    near(mmd2(a, 3, bfar, 2, 2, h), kaa / 6.0 + kbb / 2.0, 1e-14, "far apart");
}

static void test_mmd_null_and_shift(void **state)
{
    (void)state;
    enum { N = 400, PAIRS = 20 };
    float *ref = normals(2000, 2, 0.0f, 100);
    double h = dm_mmd_bandwidth(ref, 2000, 2);
    double s = 0.0, ss = 0.0, shifted = 0.0;
    for (int p = 0; p < PAIRS; p++) {
        float *a = normals(N, 2, 0.0f, 200 + 2 * (uint64_t)p);
        float *b = normals(N, 2, 0.0f, 201 + 2 * (uint64_t)p);
        float *c = normals(N, 2, 0.5f, 201 + 2 * (uint64_t)p);
        double v = mmd2(a, N, b, N, 2, h);
        s += v;
        ss += v * v;
        shifted += mmd2(a, N, c, N, 2, h);
        dm_free(a), dm_free(b), dm_free(c);
    }
    double mean = s / PAIRS, sd = sqrt((ss / PAIRS - mean * mean) * PAIRS / (PAIRS - 1));
    double se = sd / sqrt((double)PAIRS);
    /* Unbiased: the mean over pairs is 0 up to its standard error. */
    if (!(fabs(mean) < 4.0 * se)) {
        print_error("null MMD^2 mean %g, standard error %g\n", mean, se);
        fail();
    }
    /* A shift by 0.5 per axis stands far above the null spread. */
    shifted /= PAIRS;
    if (!(shifted > 20.0 * sd && shifted > 0.01)) {
        print_error("shifted MMD^2 %g vs null sd %g\n", shifted, sd);
        fail();
    }
    dm_free(ref);
}

static void test_mmd_threads_and_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    float *a = normals(3001, 3, 0.0f, 41), *b = normals(2333, 3, 0.1f, 42);
    double h = dm_mmd_bandwidth(a, 3001, 3);
    omp_set_num_threads(1);
    double v1 = mmd2(a, 3001, b, 2333, 3, h);
    omp_set_num_threads(2);
    double v2 = mmd2(a, 3001, b, 2333, 3, h);
    omp_set_num_threads(3);
    double v3 = mmd2(a, 3001, b, 2333, 3, h);
    omp_set_num_threads(2);
    assert_memory_equal(&v1, &v2, sizeof v1);
    assert_memory_equal(&v1, &v3, sizeof v1);
    near(mmd2(b, 2333, a, 3001, 3, h), v1, 1e-12, "symmetry");

    double out;
    assert_int_equal(dm_mmd2_unbiased(a, 1, b, 5, 3, h, &out, err), DM_E_INPUT);
    assert_int_equal(dm_mmd2_unbiased(a, 5, b, 5, 3, 0.0, &out, err), DM_E_INPUT);
    assert_int_equal(dm_mmd2_unbiased(a, 5, b, 5, 3, NAN, &out, err), DM_E_INPUT);
    assert_int_equal(dm_mmd2_unbiased(a, 5, b, 5, 3, 1e-200, &out, err), DM_E_INPUT);
    b[7] = INFINITY;
    assert_int_equal(dm_mmd2_unbiased(a, 5, b, 5, 3, h, &out, err), DM_E_NUMERIC);
    assert_non_null(strstr(err, "point 2 of the second set"));
    dm_alloc_fail_at(1);
    assert_int_equal(dm_mmd2_unbiased(a, 5, b, 2, 3, h, &out, err), DM_E_NOMEM);
    dm_alloc_fail_at(0);
    dm_free(a);
    dm_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projections),        cmocka_unit_test(test_swd_1d_exact),
        cmocka_unit_test(test_swd_shift_2d),       cmocka_unit_test(test_swd_symmetry_threads),
        cmocka_unit_test(test_bandwidth_exact),    cmocka_unit_test(test_mmd_tiny_exact),
        cmocka_unit_test(test_mmd_null_and_shift), cmocka_unit_test(test_mmd_threads_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
