/* test_optim.c — Adam / AdamW against scalar references over 10 steps, EMA, L2 norm and clipping,
 * bit-identity across thread counts, argument checks and allocation failure. */
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

#include "core/alloc.h"
#include "nn/optim.h"

/* |a - b| <= tol in double (cmocka's assert_float_equal rounds to float). */
#define assert_close(a, b, tol)                                                                              \
    do {                                                                                                     \
        const double a_ = (a), b_ = (b), t_ = (tol);                                                         \
        if (!(fabs(a_ - b_) <= t_))                                                                          \
            fail_msg("%s = %.17g, want %s = %.17g (tolerance %.3g)", #a, a_, #b, b_, t_);                    \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Deterministic pseudo-random values in [-1, 1) (splitmix64), independent of GSL. */
static double urand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Gradients of step k: varied magnitudes and signs, some exact zeros. */
static void make_grads(float *g, size_t n, int k)
{
    uint64_t s = 1000 + (uint64_t)k;
    for (size_t i = 0; i < n; i++) {
        const double u = urand(&s);
        g[i] = i % 17 == 0 ? 0.0f : (float)(u * pow(10.0, (double)(i % 5) - 3.0));
    }
}

/* torch.optim.Adam / AdamW in double, written out step by step from the torch documentation. */
static void ref_adam(double *p, double *m, double *v, const float *g, size_t n, int t, double lr, double b1,
                     double b2, double eps, double wd)
{
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        if (wd > 0.0)
            p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * (double)g[i] * g[i];
        const double mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

static void check_adam(double wd)
{
    const size_t n = 40003; /* > the parallel threshold, not a multiple of 8 */
    const double lr = 0.05, b1 = 0.9, b2 = 0.99, eps = 1e-8;
    char err[DM_ERR_SIZE];
    dm_adam a;
    assert_int_equal(dm_adam_init(&a, n, lr, b1, b2, eps, wd, err), DM_OK);
    float *p = xmalloc(n * sizeof(float)), *g = xmalloc(n * sizeof(float));
    double *rp = xmalloc(n * sizeof(double)), *rm = calloc(n, sizeof(double)),
           *rv = calloc(n, sizeof(double));
    assert_non_null(rm);
    assert_non_null(rv);
    float *p0 = xmalloc(n * sizeof(float));
    uint64_t s = 7;
    for (size_t i = 0; i < n; i++)
        rp[i] = p0[i] = p[i] = (float)urand(&s);
    for (int k = 1; k <= 10; k++) {
        make_grads(g, n, k);
        /* a learning-rate schedule: the step's lr argument is the one used */
        const double lrk = lr * (1.0 - 0.05 * k);
        dm_adam_step(&a, p, g, lrk);
        ref_adam(rp, rm, rv, g, n, k, lrk, b1, b2, eps, wd);
        assert_int_equal(a.t, k);
        for (size_t i = 0; i < n; i++) {
            /* float rounding, relative to the terms' size (m can cancel) */
            const double gi = pow(10.0, (double)(i % 5) - 3.0); // |g| bound of this element
            if (fabs(p[i] - rp[i]) > 2e-6 || fabs(a.m[i] - rm[i]) > 1e-6 * (fabs(rm[i]) + gi) ||
                fabs(a.v[i] - rv[i]) > 1e-6 * (fabs(rv[i]) + gi * gi))
                fail_msg("step %d elem %zu: p %.9g m %.9g v %.9g, reference %.9g %.9g %.9g", k, i, p[i],
                         a.m[i], a.v[i], rp[i], rm[i], rv[i]);
        }
        if (k == 1) {
            /* Bias correction: m_hat = g and v_hat = g^2 after the first step, so every
             * parameter moves by lr * g / (|g| + eps) = lr * sign(g) (after the decay). */
            for (size_t i = 0; i < n; i++) {
                const double before = p0[i] * (wd > 0 ? 1.0 - lrk * wd : 1.0);
                const double want = g[i] == 0.0f ? 0.0 : lrk * g[i] / (fabs(g[i]) + eps);
                if (fabs((before - p[i]) - want) > 2e-7)
                    fail_msg("first step elem %zu moved %.9g, want %.9g", i, before - p[i], want);
            }
        }
    }
    /* The moments' bias corrections at t = 10: 1 - 0.9^10 and 1 - 0.99^10. */
    assert_close(1.0 - pow(b1, (double)a.t), 0.6513215599, 1e-10);
    assert_close(1.0 - pow(b2, (double)a.t), 0.0956179250, 1e-10);
    free(p);
    free(p0);
    free(g);
    free(rp);
    free(rm);
    free(rv);
    dm_adam_free(&a);
}

static void test_adam(void **state)
{
    (void)state;
    check_adam(0.0);
}

static void test_adamw(void **state)
{
    (void)state;
    check_adam(0.1);
}

/* The same step in float, operation for operation as optim.c documents, must give the same bits. */
static void test_adam_float_formula(void **state)
{
    (void)state;
    const size_t n = 1003;
    char err[DM_ERR_SIZE];
    dm_adam a;
    assert_int_equal(dm_adam_init(&a, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, err), DM_OK);
    float *p = xmalloc(n * sizeof(float)), *g = xmalloc(n * sizeof(float));
    float *q = xmalloc(n * sizeof(float)), *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    assert_non_null(m);
    assert_non_null(v);
    uint64_t s = 3;
    for (size_t i = 0; i < n; i++)
        q[i] = p[i] = (float)urand(&s);
    for (int k = 1; k <= 10; k++) {
        make_grads(g, n, k);
        dm_adam_step(&a, p, g, 1e-3);
        const double bc1 = 1.0 - pow(0.9, k), bc2 = 1.0 - pow(0.999, k);
        const float keep = (float)(1.0 - 1e-3 * 0.01), b1 = 0.9f, omb1 = (float)(1.0 - 0.9), b2 = 0.999f,
                    omb2 = (float)(1.0 - 0.999), step = (float)(1e-3 / bc1), sq = (float)sqrt(bc2),
                    eps = 1e-8f;
        for (size_t i = 0; i < n; i++) {
            volatile float t1 = q[i] * keep; /* volatile: no contraction into FMA */
            volatile float mm1 = b1 * m[i], mm2 = omb1 * g[i];
            m[i] = mm1 + mm2;
            volatile float vv1 = b2 * v[i], vv2 = omb2 * g[i];
            vv2 = vv2 * g[i];
            v[i] = vv1 + vv2;
            volatile float den = sqrtf(v[i]) / sq;
            den = den + eps;
            volatile float upd = m[i] / den;
            upd = step * upd;
            q[i] = t1 - upd;
        }
    }
    assert_memory_equal(p, q, n * sizeof(float));
    assert_memory_equal(a.m, m, n * sizeof(float));
    assert_memory_equal(a.v, v, n * sizeof(float));
    free(p);
    free(g);
    free(q);
    free(m);
    free(v);
    dm_adam_free(&a);
}

static void test_adam_args(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_adam a;
    assert_int_equal(dm_adam_init(&a, 10, -1e-3, 0.9, 0.999, 1e-8, 0, err), DM_E_INPUT);
    assert_non_null(strstr(err, "lr=-0.001"));
    assert_int_equal(dm_adam_init(&a, 10, 1e-3, 1.0, 0.999, 1e-8, 0, err), DM_E_INPUT);
    assert_int_equal(dm_adam_init(&a, 10, 1e-3, 0.9, NAN, 1e-8, 0, err), DM_E_INPUT);
    assert_int_equal(dm_adam_init(&a, 10, 1e-3, 0.9, 0.999, 1e-8, -0.1, err), DM_E_INPUT);
    for (long k = 1; k <= 2; k++) {
        dm_alloc_fail_at(k);
        assert_int_equal(dm_adam_init(&a, 1000, 1e-3, 0.9, 0.999, 1e-8, 0, err), DM_E_NOMEM);
        dm_alloc_fail_at(0);
    }
    assert_int_equal(dm_adam_init(&a, 1000, 1e-3, 0.9, 0.999, 1e-8, 0, err), DM_OK);
    for (size_t i = 0; i < 1000; i++)
        assert_true(a.m[i] == 0.0f && a.v[i] == 0.0f);
    dm_adam_free(&a);
}

static void test_ema(void **state)
{
    (void)state;
    const size_t n = 50001;
    float *e = xmalloc(n * sizeof(float)), *p = xmalloc(n * sizeof(float));
    uint64_t s = 11;
    for (size_t i = 0; i < n; i++) {
        e[i] = (float)urand(&s);
        p[i] = (float)urand(&s);
    }
    float *e0 = xmalloc(n * sizeof(float));
    memcpy(e0, e, n * sizeof(float));
    dm_ema_update(e, p, n, 0.999);
    for (size_t i = 0; i < n; i++)
        assert_close(e[i], 0.999 * e0[i] + 0.001 * p[i], 2e-7);
    /* decay 0 copies, decay 1 keeps */
    dm_ema_update(e, p, n, 0.0);
    assert_memory_equal(e, p, n * sizeof(float));
    memcpy(e, e0, n * sizeof(float));
    dm_ema_update(e, p, n, 1.0);
    assert_memory_equal(e, e0, n * sizeof(float));
    free(e);
    free(p);
    free(e0);
}

static double ref_norm(const float *g, size_t n)
{
    long double s = 0.0L;
    for (size_t i = 0; i < n; i++)
        s += (long double)g[i] * g[i];
    return (double)sqrtl(s);
}

static void test_norm_and_clip(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 7, 4096, 4097, 149250, 1300001};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        const size_t n = sizes[k];
        float *g = xmalloc(n * sizeof(float));
        uint64_t s = 5 + k;
        for (size_t i = 0; i < n; i++)
            g[i] = (float)(urand(&s) * (i % 3 ? 1.0 : 1e-3));
        const double want = ref_norm(g, n);
        const double got = dm_l2_norm(g, n);
        assert_close(got, want, 1e-12 * want);

        float *h = xmalloc(n * sizeof(float));
        memcpy(h, g, n * sizeof(float));
        /* max_norm <= 0 or above the norm: no change, the norm is returned */
        assert_true(dm_clip_grad_norm(h, n, 0.0) == got);
        assert_true(dm_clip_grad_norm(h, n, 2.0 * got + 1.0) == got);
        assert_memory_equal(h, g, n * sizeof(float));
        if (n > 0) {
            const double maxn = 0.25 * got;
            assert_true(dm_clip_grad_norm(h, n, maxn) == got);
            const float cf = (float)(maxn / (got + 1e-6));
            for (size_t i = 0; i < n; i++)
                assert_true(h[i] == g[i] * cf);
            /* torch's coefficient max_norm / (norm + 1e-6) leaves the norm just below max_norm */
            assert_close(dm_l2_norm(h, n), maxn * got / (got + 1e-6), 1e-6 * maxn);
        }
        free(g);
        free(h);
    }
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    const int saved = omp_get_max_threads();
    const size_t n = 1300001;
    float *g = xmalloc(n * sizeof(float));
    uint64_t s = 99;
    for (size_t i = 0; i < n; i++)
        g[i] = (float)urand(&s);
    double norms[2];
    float *pp[2];
    char err[DM_ERR_SIZE];
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        norms[th - 1] = dm_l2_norm(g, n);
        dm_adam a;
        assert_int_equal(dm_adam_init(&a, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, err), DM_OK);
        pp[th - 1] = xmalloc(n * sizeof(float));
        memset(pp[th - 1], 0, n * sizeof(float));
        for (int k = 0; k < 3; k++)
            dm_adam_step(&a, pp[th - 1], g, 1e-3);
        dm_ema_update(pp[th - 1], g, n, 0.9);
        dm_clip_grad_norm(pp[th - 1], n, 1.0);
        dm_adam_free(&a);
    }
    assert_memory_equal(&norms[0], &norms[1], sizeof(double));
    assert_memory_equal(pp[0], pp[1], n * sizeof(float));
    free(pp[0]);
    free(pp[1]);
    free(g);
    omp_set_num_threads(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adam_float_formula),
        cmocka_unit_test(test_adam_args),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_norm_and_clip),
        cmocka_unit_test(test_threads_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
