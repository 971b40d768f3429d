/* test_knn_pr.c — k-NN precision and recall (eval/knn_pr.h), k = 3: on a mixture of K = 10
 * well-separated Gaussian modes (a 5 x 2 grid, spacing 10, std 1) in 2 dimensions, a generated set that misses one mode loses
 * about 1/K of recall (within 0.03) and keeps precision >= 0.95; a set off the data has
 * precision near 0; a point's own distance is excluded from its radius (a set against itself has
 * precision and recall 1). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"
#include "eval/knn_pr.h"

enum { K = 10, D = 2 };

/* n points of the mixture, modes 0..K-1 except `skip` (-1: none), equally often. */
static void mixture(dm_rng *rng, const double *mu, int skip, size_t n, float *x, double shift)
{
    for (size_t i = 0; i < n; i++) {
        int c;
        do
            c = (int)dm_rng_int(rng, K);
        while (c == skip);
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(mu[c * D + j] + dm_rng_normal(rng) + shift);
    }
}

static void test_missing_mode(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 2000 };
    double mu[K * D];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 17, err), DM_OK);
    for (int c = 0; c < K; c++) {
        mu[c * D] = 10.0 * (c % 5);
        mu[c * D + 1] = 10.0 * (c / 5);
    }
    float *real = malloc(sizeof(float) * N * D), *full = malloc(sizeof(float) * N * D),
          *drop = malloc(sizeof(float) * N * D), *off = malloc(sizeof(float) * N * D);
    mixture(&rng, mu, -1, N, real, 0);
    mixture(&rng, mu, -1, N, full, 0);
    mixture(&rng, mu, 0, N, drop, 0);
    mixture(&rng, mu, -1, N, off, 100.0);
    double p_full, r_full, p_drop, r_drop, p_off, r_off, p_self, r_self;
    assert_int_equal(dm_knn_precision_recall(real, N, full, N, D, DM_PR_K, &p_full, &r_full, err), DM_OK);
    assert_int_equal(dm_knn_precision_recall(real, N, drop, N, D, DM_PR_K, &p_drop, &r_drop, err), DM_OK);
    assert_int_equal(dm_knn_precision_recall(real, N, off, N, D, DM_PR_K, &p_off, &r_off, err), DM_OK);
    assert_int_equal(dm_knn_precision_recall(real, N, real, N, D, DM_PR_K, &p_self, &r_self, err), DM_OK);
    print_message("all modes: precision %.3f recall %.3f; one of %d missing: precision %.3f recall %.3f; "
                  "off the data: %.3f %.3f\n", p_full, r_full, K, p_drop, r_drop, p_off, r_off);
    assert_true(fabs((r_full - r_drop) - 1.0 / K) <= 0.03);
    assert_true(p_drop >= 0.95 && p_full >= 0.95);
    assert_true(p_off < 0.05 && r_off < 0.05);
    assert_true(p_self == 1.0 && r_self == 1.0);
    assert_int_equal(dm_knn_precision_recall(real, 3, full, N, D, 3, &p_full, &r_full, err), DM_E_INPUT);
    free(real);
    free(full);
    free(drop);
    free(off);
    dm_rng_free(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
