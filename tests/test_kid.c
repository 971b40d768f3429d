/* test_kid.c — KID's estimator (eval/kid.h): the unbiased MMD^2 of the polynomial kernel against
 * its definition; its mean over 200 splits of one set into halves within two standard errors of
 * 0 (unbiased: the biased V-statistic, with the i = j terms, lands many standard errors above);
 * a shifted set far above the subsets' spread; subsets reproducible from the stream. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"
#include "eval/kid.h"

static double k3(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)a[j] * b[j];
    return pow(s / (double)d + 1.0, 3);
}

static void gauss(dm_rng *rng, float *x, size_t n, size_t d, double shift)
{
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)(dm_rng_normal(rng) + shift);
}

static void test_definition(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 7, M = 5, D = 3 };
    float x[N * D], y[M * D];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 1, err), DM_OK);
    gauss(&rng, x, N, D, 0);
    gauss(&rng, y, M, D, 0.3);
    double a = 0, b = 0, c = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (i != j)
                a += k3(x + i * D, x + j * D, D);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++)
            if (i != j)
                b += k3(y + i * D, y + j * D, D);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++)
            c += k3(x + i * D, y + j * D, D);
    const double want = a / (N * (N - 1)) + b / (M * (M - 1)) - 2 * c / (N * M);
    const double got = dm_kid_mmd2(x, N, y, M, D);
    if (fabs(got - want) > 1e-12 * fabs(want) + 1e-15)
        fail_msg("kid mmd2 %.17g, by its definition %.17g", got, want);
    dm_rng_free(&rng);
}

static void test_unbiased_over_splits(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 60, D = 8, SPLITS = 200 };
    float z[2 * N * D], x[N * D], y[N * D];
    size_t idx[2 * N];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 7, err), DM_OK);
    gauss(&rng, z, 2 * N, D, 0);
    double s = 0, s2 = 0, vs = 0;
    for (int r = 0; r < SPLITS; r++) {
        for (size_t i = 0; i < 2 * N; i++)
            idx[i] = i;
        for (size_t i = 0; i < 2 * N - 1; i++) {
            const size_t j = i + (size_t)dm_rng_int(&rng, (unsigned long)(2 * N - i)), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (size_t i = 0; i < N; i++) {
            memcpy(x + i * D, z + idx[i] * D, sizeof(float) * D);
            memcpy(y + i * D, z + idx[N + i] * D, sizeof(float) * D);
        }
        const double v = dm_kid_mmd2(x, N, y, N, D);
        s += v;
        s2 += v * v;
        /* the V-statistic (with i = j): what a biased estimator would give */
        double diag = 0;
        for (size_t i = 0; i < N; i++)
            diag += k3(x + i * D, x + i * D, D) + k3(y + i * D, y + i * D, D);
        vs += (v * (N - 1) / N + diag / ((double)N * N)) / SPLITS;
    }
    const double mean = s / SPLITS, sd = sqrt((s2 - SPLITS * mean * mean) / (SPLITS - 1)), se = sd / sqrt(SPLITS);
    print_message("KID over %d splits into halves: mean %.3g, standard error %.3g; biased form %.3g\n", SPLITS,
                  mean, se, vs);
    assert_true(fabs(mean) <= 2 * se);
    assert_true(vs > 10 * se); /* the test can tell a biased estimator */
    dm_rng_free(&rng);
}

static void test_subsets(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 300, D = 16 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D), *z = malloc(sizeof(float) * N * D);
    dm_rng rng, a, b;
    assert_int_equal(dm_rng_init(&rng, 9, err), DM_OK);
    gauss(&rng, x, N, D, 0);
    gauss(&rng, y, N, D, 0);
    gauss(&rng, z, N, D, 0.5);
    double m1, s1, m2, s2, ms, ss;
    assert_int_equal(dm_rng_init(&a, 4, err), DM_OK);
    assert_int_equal(dm_rng_init(&b, 4, err), DM_OK);
    assert_int_equal(dm_kid(x, N, y, N, D, 50, 100, &a, &m1, &s1, err), DM_OK);
    assert_int_equal(dm_kid(x, N, y, N, D, 50, 100, &b, &m2, &s2, err), DM_OK);
    assert_true(m1 == m2 && s1 == s2); /* the same draws from the same stream */
    assert_true(fabs(m1) < 3 * s1 / sqrt(50.0) + 1e-3);
    assert_int_equal(dm_kid(x, N, z, N, D, 50, 100, &a, &ms, &ss, err), DM_OK);
    print_message("KID same law %.3g +- %.3g, shifted by 0.5: %.3g +- %.3g\n", m1, s1, ms, ss);
    assert_true(ms > 10 * ss / sqrt(50.0) && ms > 10 * fabs(m1));
    assert_int_equal(dm_kid(x, 1, y, N, D, 5, 10, &a, &ms, &ss, err), DM_E_INPUT);
    free(x);
    free(y);
    free(z);
    dm_rng_free(&rng);
    dm_rng_free(&a);
    dm_rng_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_definition),
        cmocka_unit_test(test_unbiased_over_splits),
        cmocka_unit_test(test_subsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
