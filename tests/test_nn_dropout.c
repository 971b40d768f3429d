/* test_nn_dropout.c — dropout with per-item counter-based masks (nn/dropout): the mask is the
 * documented dm_seed_index construction, independent of the batch split and the thread count;
 * keep rates (overall, per element position, per item, adjacent pairs) within 5 standard errors;
 * scaling and the gradient against central differences; acc_dx; p = 0 is the identity. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "nn/dropout.h"
#include "nn_check.h"

/* The documented mask, from core's dm_seed_index itself. */
static int keep_ref(double p, uint64_t key, int64_t item, size_t j)
{
    const uint64_t ki = dm_seed_index(key, (uint64_t)item);
    return (dm_seed_index(ki, j) >> 40) >= (uint64_t)llround(p * 16777216.0);
}

typedef struct drop_ctx {
    double p;
    uint64_t key;
    int64_t item0;
    int n;
    size_t d;
    double *x;
    const float *r;
} drop_ctx;

static double drop_loss(void *vctx)
{
    const drop_ctx *k = vctx;
    double L = 0.0;
    for (int i = 0; i < k->n; i++)
        for (size_t j = 0; j < k->d; j++)
            if (keep_ref(k->p, k->key, k->item0 + i, j))
                L += k->r[(size_t)i * k->d + j] * k->x[(size_t)i * k->d + j] / (1.0 - k->p);
    return L;
}

/* Forward is x * mask * (float)(1 / (1 - p)) exactly; backward against central differences of
 * the double reference (L is linear: the difference is exact up to ~1e-16 |L| / h; the float
 * gradient is one rounded product, 1 ulp); acc_dx; in place. */
static void test_values_and_gradient(void **state)
{
    (void)state;
    const double ps[] = {0.1, 0.5, 0.9};
    const int n = 5;
    const size_t d = 3 * 7 * 5; // (C, H, W) = (3, 7, 5)
    const size_t m = n * d;
    for (int q = 0; q < 3; q++) {
        const double p = ps[q];
        const uint64_t key = dm_dropout_key(1234, 2);
        float *x = rand_floats(m, 1, 0.0, 1.0), *r = rand_floats(m, 2, 0.0, 1.0);
        float *y = xmalloc(m * sizeof(float)), *dx = xmalloc(m * sizeof(float));
        dm_dropout_forward(p, key, 11, n, d, x, y);
        const float scale = (float)(1.0 / (1.0 - p));
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) {
                const size_t e = (size_t)i * d + j;
                assert_true(y[e] == (keep_ref(p, key, 11 + i, j) ? x[e] * scale : 0.0f));
            }
        dm_dropout_backward(p, key, 11, n, d, r, dx, 0);
        drop_ctx k = {p, key, 11, n, d, to_double(x, m), r};
        nn_check_fd("x", drop_loss, &k, k.x, m, dx, 1e-3, 1e-9, 1e-6);
        float *acc = rand_floats(m, 3, 0.0, 1.0), *base = xmalloc(m * sizeof(float));
        memcpy(base, acc, m * sizeof(float));
        dm_dropout_backward(p, key, 11, n, d, r, acc, 1);
        for (size_t e = 0; e < m; e++) /* acc may fuse the product into the add: one rounding less */
            assert_close(acc[e], (double)base[e] + dx[e], 1.2e-7 * (fabs(base[e]) + fabs(dx[e])));
        memcpy(acc, x, m * sizeof(float));
        dm_dropout_forward(p, key, 11, n, d, acc, acc); /* in place */
        assert_memory_equal(acc, y, m * sizeof(float));
        memcpy(acc, r, m * sizeof(float));
        dm_dropout_backward(p, key, 11, n, d, acc, acc, 0);
        assert_memory_equal(acc, dx, m * sizeof(float));
        free(acc);
        free(base);
        free(k.x);
        free(x);
        free(r);
        free(y);
        free(dx);
    }
}

static void test_p_zero_identity(void **state)
{
    (void)state;
    const size_t m = 4 * 50;
    float *x = rand_floats(m, 4, 0.0, 1.0), *y = xmalloc(m * sizeof(float)),
          *dx = rand_floats(m, 5, 0.0, 1.0);
    float *base = xmalloc(m * sizeof(float));
    memcpy(base, dx, m * sizeof(float));
    dm_dropout_forward(0.0, 99, 0, 4, 50, x, y);
    assert_memory_equal(y, x, m * sizeof(float));
    dm_dropout_backward(0.0, 99, 0, 4, 50, x, dx, 1);
    for (size_t e = 0; e < m; e++)
        assert_true(dx[e] == base[e] + x[e]);
    dm_dropout_backward(0.0, 99, 0, 4, 50, x, dx, 0);
    assert_memory_equal(dx, x, m * sizeof(float));
    free(x);
    free(y);
    free(dx);
    free(base);
}

/* The mask of an item depends on (key, item, element) only: a batch of 7 on 1 and 2 threads and
 * split as 3 + 4 (item0 = 0 and 3) give the same bits, forward and backward. */
static void test_split_and_threads(void **state)
{
    (void)state;
    const int n = 7;
    const size_t d = 32 * 28 * 28, m = n * d;
    const uint64_t key = dm_dropout_key(77, 5);
    float *x = rand_floats(m, 6, 0.0, 1.0), *y[3], *dx[3];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        y[t] = xmalloc(m * sizeof(float));
        dx[t] = xmalloc(m * sizeof(float));
        omp_set_num_threads(t == 1 ? 2 : 1);
        if (t < 2) {
            dm_dropout_forward(0.3, key, 0, n, d, x, y[t]);
            dm_dropout_backward(0.3, key, 0, n, d, x, dx[t], 0);
        } else {
            omp_set_num_threads(2);
            dm_dropout_forward(0.3, key, 0, 3, d, x, y[t]);
            dm_dropout_forward(0.3, key, 3, 4, d, x + 3 * d, y[t] + 3 * d);
            dm_dropout_backward(0.3, key, 3, 4, d, x + 3 * d, dx[t] + 3 * d, 0);
            dm_dropout_backward(0.3, key, 0, 3, d, x, dx[t], 0);
        }
    }
    omp_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        assert_memory_equal(y[0], y[t], m * sizeof(float));
        assert_memory_equal(dx[0], dx[t], m * sizeof(float));
    }
    for (int t = 0; t < 3; t++) {
        free(y[t]);
        free(dx[t]);
    }
    free(x);
}

/* |count - N q| <= 5 sqrt(N q (1 - q)): the binomial's standard error (q the expected rate). */
static void assert_rate(const char *what, long count, long N, double q)
{
    const double se = sqrt((double)N * q * (1.0 - q));
    if (!(fabs((double)count - (double)N * q) <= 5.0 * se))
        fail_msg("%s: %ld of %ld, expected %.1f +- %.1f (5 standard errors)", what, count, N, N * q,
                 5.0 * se);
}

/* Keep rates over 64 items of 32 x 28 x 28 (1.6M draws): overall, per element position (over
 * items: 784 checks), per item (over elements), and adjacent pairs kept together ((1 - p)^2: the
 * elements of a stream are independent). Other layers (keys) give other masks: the fraction of
 * agreeing elements is p^2 + (1 - p)^2. */
static void test_keep_rates(void **state)
{
    (void)state;
    const int n = 64;
    const size_t d = 32 * 28 * 28, m = n * d;
    float *one = xmalloc(m * sizeof(float)), *y = xmalloc(m * sizeof(float)),
          *y2 = xmalloc(m * sizeof(float));
    for (size_t e = 0; e < m; e++)
        one[e] = 1.0f;
    const double ps[] = {0.1, 0.5};
    for (int q = 0; q < 2; q++) {
        const double p = ps[q];
        dm_dropout_forward(p, dm_dropout_key(5, 0), 0, n, d, one, y);
        dm_dropout_forward(p, dm_dropout_key(5, 1), 0, n, d, one, y2);
        long kept = 0, pairs = 0, agree = 0;
        for (size_t e = 0; e < m; e++) {
            kept += y[e] != 0.0f;
            agree += (y[e] != 0.0f) == (y2[e] != 0.0f);
            if (e % 2 == 0)
                pairs += y[e] != 0.0f && y[e + 1] != 0.0f;
        }
        assert_rate("kept", kept, (long)m, 1.0 - p);
        assert_rate("adjacent pairs kept", pairs, (long)m / 2, (1.0 - p) * (1.0 - p));
        assert_rate("agreement of two layers", agree, (long)m, p * p + (1.0 - p) * (1.0 - p));
        int pos_out = 0;
        for (size_t j = 0; j < 784; j++) { // per position of the first channel, over items
            long c = 0;
            for (int i = 0; i < n; i++)
                c += y[(size_t)i * d + j] != 0.0f;
            pos_out += fabs(c - n * (1.0 - p)) > 3.0 * sqrt(n * p * (1.0 - p));
        }
        for (int i = 0; i < n; i++) {
            long c = 0;
            for (size_t j = 0; j < d; j++)
                c += y[(size_t)i * d + j] != 0.0f;
            assert_rate("kept in one item", c, (long)d, 1.0 - p);
        }
        /* beyond 3 standard errors: the exact binomial(64, 1 - p) tails are 0.38% (p = 0.1) and
         * 0.16% (p = 0.5), 3.0 and 1.2 of 784 positions expected; 12 is beyond the mean + 5
         * sqrt(mean) of both */
        if (pos_out > 12)
            fail_msg("p = %g: %d of 784 positions beyond 3 standard errors", p, pos_out);
    }
    free(one);
    free(y);
    free(y2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_gradient),
        cmocka_unit_test(test_p_zero_identity),
        cmocka_unit_test(test_split_and_threads),
        cmocka_unit_test(test_keep_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
