/* test_nn_resample.c — nearest x2 upsampling and channel concatenation (nn/resample): forward
 * against direct index formulas, gradients against central differences of a double reference,
 * acc flags and NULL gradients, bit-identity on 1 and 2 threads at a batch of 7. */
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

#include "nn/resample.h"
#include "nn_check.h"

typedef struct up_ctx {
    int n, c, h, w;
    double *x;
    const float *r; // (n, c, 2h, 2w)
} up_ctx;

/* L = sum_{i,c,y,x} r[i, c, y, x] xin[i, c, y / 2, x / 2] (the reference upsample, then the dot). */
static double up_loss(void *vctx)
{
    const up_ctx *k = vctx;
    double L = 0.0;
    for (int p = 0; p < k->n * k->c; p++)
        for (int yy = 0; yy < 2 * k->h; yy++)
            for (int xx = 0; xx < 2 * k->w; xx++)
                L += k->r[((size_t)p * 2 * k->h + yy) * 2 * k->w + xx] *
                     k->x[((size_t)p * k->h + yy / 2) * k->w + xx / 2];
    return L;
}

static void check_upsample(int n, int c, int h, int w)
{
    const size_t m = (size_t)n * c * h * w, mo = 4 * m;
    float *x = rand_floats(m, 1, 0.0, 1.0), *r = rand_floats(mo, 2, 0.0, 1.0);
    float *y = xmalloc(mo * sizeof(float)), *dx = xmalloc(m * sizeof(float));
    dm_upsample2_forward(n, c, h, w, x, y);
    for (int p = 0; p < n * c; p++)
        for (int yy = 0; yy < 2 * h; yy++)
            for (int xx = 0; xx < 2 * w; xx++)
                assert_true(y[((size_t)p * 2 * h + yy) * 2 * w + xx] ==
                            x[((size_t)p * h + yy / 2) * w + xx / 2]);
    memset(dx, 0xff, m * sizeof(float));
    dm_upsample2_backward(n, c, h, w, r, dx, 0);
    /* L is linear in x: the central difference is exact up to rounding (~1e-16 |L| / h ~ 1e-11);
     * the float backward adds four N(0, 1) floats in three roundings of at most half an ulp of
     * partial sums below 16: < 3e-6. */
    up_ctx k = {n, c, h, w, to_double(x, m), r};
    nn_check_fd("x", up_loss, &k, k.x, m, dx, 1e-4, 3e-6, 0.0);
    float *acc = rand_floats(m, 3, 0.0, 1.0), *base = xmalloc(m * sizeof(float));
    memcpy(base, acc, m * sizeof(float));
    dm_upsample2_backward(n, c, h, w, r, acc, 1);
    for (size_t i = 0; i < m; i++)
        assert_true(acc[i] == base[i] + dx[i]);
    free(acc);
    free(base);
    free(k.x);
    free(x);
    free(r);
    free(y);
    free(dx);
}

static void test_upsample(void **state)
{
    (void)state;
    check_upsample(2, 3, 4, 5);
    check_upsample(3, 2, 7, 7);
    check_upsample(1, 1, 1, 1);
    check_upsample(2, 4, 14, 14);
}

typedef struct cat_ctx {
    int n, c1, c2, hw;
    double *a, *b;
    const float *r; // (n, c1 + c2, hw)
} cat_ctx;

static double cat_loss(void *vctx)
{
    const cat_ctx *k = vctx;
    double L = 0.0;
    const int ct = k->c1 + k->c2;
    for (int i = 0; i < k->n; i++)
        for (int c = 0; c < ct; c++)
            for (int j = 0; j < k->hw; j++) {
                const double v = c < k->c1 ? k->a[((size_t)i * k->c1 + c) * k->hw + j]
                                           : k->b[((size_t)i * k->c2 + c - k->c1) * k->hw + j];
                L += k->r[((size_t)i * ct + c) * k->hw + j] * v;
            }
    return L;
}

static void check_concat(int n, int c1, int c2, int hw)
{
    const size_t ma = (size_t)n * c1 * hw, mb = (size_t)n * c2 * hw, my = ma + mb;
    float *a = rand_floats(ma, 4, 0.0, 1.0), *b = rand_floats(mb, 5, 0.0, 1.0),
          *r = rand_floats(my, 6, 0.0, 1.0);
    float *y = xmalloc(my * sizeof(float)), *da = xmalloc(ma * sizeof(float)),
          *db = xmalloc(mb * sizeof(float));
    dm_concat_forward(n, c1, c2, hw, a, b, y);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < c1 + c2; c++)
            for (int j = 0; j < hw; j++) {
                const float want =
                    c < c1 ? a[((size_t)i * c1 + c) * hw + j] : b[((size_t)i * c2 + c - c1) * hw + j];
                assert_true(y[((size_t)i * (c1 + c2) + c) * hw + j] == want);
            }
    dm_concat_backward(n, c1, c2, hw, r, da, 0, db, 0);
    for (int i = 0; i < n; i++) { // the gradient is dy's slice, exactly
        assert_memory_equal(da + (size_t)i * c1 * hw, r + (size_t)i * (c1 + c2) * hw, (size_t)c1 * hw * 4);
        assert_memory_equal(db + (size_t)i * c2 * hw, r + ((size_t)i * (c1 + c2) + c1) * hw,
                            (size_t)c2 * hw * 4);
    }
    /* and against central differences where they are cheap (L is linear: exact up to
     * ~1e-16 |L| / h ~ 1e-11) */
    cat_ctx k = {n, c1, c2, hw, to_double(a, ma), to_double(b, mb), r};
    if (my <= 1000) {
        nn_check_fd("a", cat_loss, &k, k.a, ma, da, 1e-4, 1e-9, 0.0);
        nn_check_fd("b", cat_loss, &k, k.b, mb, db, 1e-4, 1e-9, 0.0);
    }
    /* the skip's gradient adds to what it has; NULL asks for no gradient */
    float *acc = rand_floats(mb, 7, 0.0, 1.0), *base = xmalloc(mb * sizeof(float));
    memcpy(base, acc, mb * sizeof(float));
    float *da2 = rand_floats(ma, 8, 0.0, 1.0);
    dm_concat_backward(n, c1, c2, hw, r, da2, 0, acc, 1);
    assert_memory_equal(da2, da, ma * sizeof(float));
    for (size_t i = 0; i < mb; i++)
        assert_true(acc[i] == base[i] + db[i]);
    memcpy(acc, base, mb * sizeof(float));
    dm_concat_backward(n, c1, c2, hw, r, NULL, 0, acc, 1);
    for (size_t i = 0; i < mb; i++)
        assert_true(acc[i] == base[i] + db[i]);
    dm_concat_backward(n, c1, c2, hw, r, da2, 1, NULL, 0);
    for (size_t i = 0; i < ma; i++)
        assert_true(da2[i] == da[i] + da[i]);
    free(acc);
    free(base);
    free(da2);
    free(k.a);
    free(k.b);
    free(a);
    free(b);
    free(r);
    free(y);
    free(da);
    free(db);
}

static void test_concat(void **state)
{
    (void)state;
    check_concat(2, 3, 5, 7);
    check_concat(3, 4, 2, 1);
    check_concat(2, 64, 32, 28 * 28);
}

static void test_threads_bitwise(void **state)
{
    (void)state;
    const int n = 7, c = 5, h = 6, w = 9, hw = h * w;
    const size_t m = (size_t)n * c * hw;
    float *x = rand_floats(m, 9, 0.0, 1.0), *g = rand_floats(4 * m, 10, 0.0, 1.0);
    float *y[2], *dx[2], *cy[2], *ca[2], *cb[2];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        y[t] = xmalloc(4 * m * sizeof(float));
        dx[t] = rand_floats(m, 11, 0.0, 1.0);
        cy[t] = xmalloc(2 * m * sizeof(float));
        ca[t] = rand_floats(m, 12, 0.0, 1.0);
        cb[t] = xmalloc(m * sizeof(float));
        dm_upsample2_forward(n, c, h, w, x, y[t]);
        dm_upsample2_backward(n, c, h, w, g, dx[t], 1);
        dm_concat_forward(n, c, c, hw, x, dx[t], cy[t]);
        dm_concat_backward(n, c, c, hw, g, ca[t], 1, cb[t], 0);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(y[0], y[1], 4 * m * sizeof(float));
    assert_memory_equal(dx[0], dx[1], m * sizeof(float));
    assert_memory_equal(cy[0], cy[1], 2 * m * sizeof(float));
    assert_memory_equal(ca[0], ca[1], m * sizeof(float));
    assert_memory_equal(cb[0], cb[1], m * sizeof(float));
    for (int t = 0; t < 2; t++) {
        free(y[t]);
        free(dx[t]);
        free(cy[t]);
        free(ca[t]);
        free(cb[t]);
    }
    free(x);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
