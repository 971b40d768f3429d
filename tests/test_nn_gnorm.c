/* test_nn_gnorm.c — GroupNorm (+ SiLU) and SiLU (nn/gnorm): forward against a direct two-pass
 * formula in double; every input and parameter gradient against central differences of that
 * double reference; acc_dx; bit-identity of forward and backward on 1 and 2 threads at a batch
 * of 7; errors and allocation failures. */
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
#include "nn/gnorm.h"
#include "nn_check.h"

/* ---- the double reference ------------------------------------------------------------------ */

typedef struct gn_case {
    int n, c, groups, hw, silu;
} gn_case;

static double silu_d(double u)
{
    return u / (1.0 + exp(-u));
}

/* y (n, C, hw) of GroupNorm(+SiLU) with params p = (gamma, beta), two passes per item and group. */
static void ref_forward(const gn_case *k, const double *p, const double *x, double *y)
{
    const int cpg = k->c / k->groups;
    const size_t D = (size_t)cpg * k->hw;
    for (int i = 0; i < k->n; i++)
        for (int g = 0; g < k->groups; g++) {
            const size_t off = ((size_t)i * k->groups + g) * D;
            double mean = 0.0, var = 0.0;
            for (size_t j = 0; j < D; j++)
                mean += x[off + j];
            mean /= (double)D;
            for (size_t j = 0; j < D; j++)
                var += (x[off + j] - mean) * (x[off + j] - mean);
            var /= (double)D; // biased
            for (size_t j = 0; j < D; j++) {
                const int c = g * cpg + (int)(j / k->hw);
                const double u = p[c] * (x[off + j] - mean) / sqrt(var + 1e-5) + p[k->c + c];
                y[off + j] = k->silu ? silu_d(u) : u;
            }
        }
}

typedef struct gn_ctx {
    const gn_case *k;
    double *p, *x, *y;
    const float *r;
} gn_ctx;

static double ref_loss(void *vctx)
{
    gn_ctx *c = vctx;
    ref_forward(c->k, c->p, c->x, c->y);
    return dot_dd(c->y, c->r, (size_t)c->k->n * c->k->c * c->k->hw);
}

/* A layer, its parameters (gamma around 1, beta around 0, both perturbed so that every term of
 * the backward matters) and a batch x with a non-zero mean. */
typedef struct gn_fix {
    gn_case k;
    dm_gnorm g;
    dm_gnorm_ws ws;
    size_t m;
    float *p, *x, *r;
} gn_fix;

static void fix_init(gn_fix *f, gn_case k, uint64_t seed)
{
    char err[DM_ERR_SIZE];
    f->k = k;
    assert_int_equal(dm_gnorm_init(&f->g, k.groups, k.c, err), DM_OK);
    assert_int_equal(dm_gnorm_ws_init(&f->ws, &f->g, k.hw, k.n, err), DM_OK);
    f->m = (size_t)k.n * k.c * k.hw;
    f->p = rand_floats(2 * (size_t)k.c, seed, 0.0, 0.4);
    for (int c = 0; c < k.c; c++)
        f->p[c] += 1.0f;
    f->x = rand_floats(f->m, seed + 1, 0.7, 1.5);
    f->r = rand_floats(f->m, seed + 2, 0.0, 1.0);
}

static void fix_free(gn_fix *f)
{
    dm_gnorm_ws_free(&f->ws);
    free(f->p);
    free(f->x);
    free(f->r);
}

static void run_forward(gn_fix *f, float *y)
{
    if (f->k.silu)
        dm_gnorm_silu_forward(&f->g, f->p, &f->ws, f->k.n, f->x, y);
    else
        dm_gnorm_forward(&f->g, f->p, &f->ws, f->k.n, f->x, y);
}

static void run_backward(gn_fix *f, const float *dy, float *grads, float *dx, int acc)
{
    if (f->k.silu)
        dm_gnorm_silu_backward(&f->g, f->p, &f->ws, f->k.n, f->x, dy, grads, dx, acc);
    else
        dm_gnorm_backward(&f->g, f->p, &f->ws, f->k.n, f->x, dy, grads, dx, acc);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_init_and_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_gnorm g;
    assert_int_equal(dm_gnorm_init(&g, 8, 32, err), DM_OK);
    assert_int_equal(g.n_params, 64);
    float p[64];
    memset(p, 0xff, sizeof p);
    dm_gnorm_init_params(&g, p);
    for (int c = 0; c < 32; c++) {
        assert_true(p[c] == 1.0f);
        assert_true(p[32 + c] == 0.0f);
    }
    assert_int_equal(dm_gnorm_init(&g, 3, 32, err), DM_E_INPUT);
    assert_non_null(strstr(err, "32 channels"));
    assert_int_equal(dm_gnorm_init(&g, 0, 32, err), DM_E_INPUT);
    assert_int_equal(dm_gnorm_init(&g, 8, 32, err), DM_OK);
    dm_gnorm_ws ws;
    assert_int_equal(dm_gnorm_ws_init(&ws, &g, 0, 4, err), DM_E_INPUT);
    assert_int_equal(dm_gnorm_ws_init(&ws, &g, 16, 0, err), DM_E_INPUT);
    for (long k = 1; k <= 5; k++) {
        dm_alloc_fail_at(k);
        const dm_status st = dm_gnorm_ws_init(&ws, &g, 16, 4, err);
        const long made = dm_alloc_fail_at(0);
        if (k <= made) {
            assert_int_equal(st, DM_E_NOMEM);
            assert_null(ws.stats);
        } else {
            assert_int_equal(st, DM_OK);
            dm_gnorm_ws_free(&ws);
        }
    }
}

/* Forward against the reference: float rounding of u = x a + b is a few ulp of |x a| + |b|,
 * i.e. ~1e-6 relative at |mean| / std ~ 1 (the data here); SiLU adds ~2 ulp. */
static void check_forward(gn_case k)
{
    gn_fix f;
    fix_init(&f, k, 100 + (uint64_t)k.hw);
    float *y = xmalloc(f.m * sizeof(float));
    double *yr = xmalloc(f.m * sizeof(double)), *pd = to_double(f.p, 2 * (size_t)k.c),
           *xd = to_double(f.x, f.m);
    run_forward(&f, y);
    ref_forward(&f.k, pd, xd, yr);
    for (size_t i = 0; i < f.m; i++)
        if (!(fabs(y[i] - yr[i]) <= 2e-6 * (1.0 + fabs(yr[i]))))
            fail_msg("C=%d G=%d hw=%d silu=%d: y[%zu] = %.9g, reference %.9g", k.c, k.groups, k.hw, k.silu, i,
                     y[i], yr[i]);
    /* the kept statistics are the reference's */
    for (int i = 0; i < k.n; i++)
        for (int g = 0; g < k.groups; g++) {
            const size_t D = (size_t)(k.c / k.groups) * k.hw, off = ((size_t)i * k.groups + g) * D;
            double mean = 0.0, var = 0.0;
            for (size_t j = 0; j < D; j++)
                mean += xd[off + j] / (double)D;
            for (size_t j = 0; j < D; j++)
                var += (xd[off + j] - mean) * (xd[off + j] - mean) / (double)D;
            const double *st = f.ws.stats + ((size_t)i * k.groups + g) * 2;
            assert_close(st[0], mean, 1e-12 * (1.0 + fabs(mean)));
            assert_close(st[1], 1.0 / sqrt(var + 1e-5), 1e-12 / sqrt(var + 1e-5));
        }
    free(y);
    free(yr);
    free(pd);
    free(xd);
    fix_free(&f);
}

static void test_forward_reference(void **state)
{
    (void)state;
    for (int silu = 0; silu <= 1; silu++) {
        check_forward((gn_case){5, 32, 8, 49, silu});  /* groups of 196: whole lanes */
        check_forward((gn_case){3, 12, 4, 35, silu});  /* groups of 105: a lane tail */
        check_forward((gn_case){2, 6, 1, 7, silu});    /* one group */
        check_forward((gn_case){2, 6, 6, 3, silu});    /* one channel per group, 3 values */
        check_forward((gn_case){1, 16, 8, 784, silu}); /* the peer's resolution */
    }
    /* a constant group: var = 0, xhat = 0, y = beta (or SiLU(beta)) */
    gn_fix f;
    fix_init(&f, (gn_case){2, 4, 2, 9, 1}, 9);
    for (size_t i = 0; i < f.m; i++)
        f.x[i] = 3.25f;
    float *y = xmalloc(f.m * sizeof(float));
    run_forward(&f, y);
    for (size_t i = 0; i < f.m; i++) {
        const double b = f.p[4 + (i / 9) % 4];
        assert_close(y[i], silu_d(b), 1e-6);
    }
    free(y);
    fix_free(&f);
}

/* Every input and parameter gradient against central differences (h = 1e-6) of the double
 * reference, whose own error is ~1e-9 (rounding eps |L| / h, truncation h^2 |L'''|). The float
 * backward's error is a few ulp of its largest terms: dx = A du + B (x - m) + C with terms up to
 * ~10 here, so < 5e-6 absolute; dgamma and dbeta are double sums of float products (~1e-7
 * relative). Measured: at most 2% of the tolerance (NN_CHECK_VERBOSE=1). */
static void check_grads(gn_case k)
{
    gn_fix f;
    fix_init(&f, k, 7 + (uint64_t)k.c);
    const size_t np = 2 * (size_t)k.c;
    float *y = xmalloc(f.m * sizeof(float)), *dx = xmalloc(f.m * sizeof(float)),
          *grads = xmalloc(np * sizeof(float));
    memset(grads, 0xff, np * sizeof(float)); // NaN: every entry must be overwritten
    memset(dx, 0xff, f.m * sizeof(float));
    run_forward(&f, y);
    run_backward(&f, f.r, grads, dx, 0);
    gn_ctx c = {&f.k, to_double(f.p, np), to_double(f.x, f.m), xmalloc(f.m * sizeof(double)), f.r};
    nn_check_fd("x", ref_loss, &c, c.x, f.m, dx, 1e-6, 5e-6, 2e-5);
    nn_check_fd("params", ref_loss, &c, c.p, np, grads, 1e-6, 5e-6, 2e-5);

    /* acc_dx: dx += the same gradient */
    float *acc = rand_floats(f.m, 3, 0.0, 1.0);
    float *base = xmalloc(f.m * sizeof(float));
    memcpy(base, acc, f.m * sizeof(float));
    run_backward(&f, f.r, grads, acc, 1);
    for (size_t i = 0; i < f.m; i++)
        assert_close(acc[i], (double)base[i] + dx[i], 1e-6 * (1.0 + fabs(base[i]) + fabs(dx[i])));
    free(acc);
    free(base);
    free(c.p);
    free(c.x);
    free(c.y);
    free(y);
    free(dx);
    free(grads);
    fix_free(&f);
}

static void test_gradients(void **state)
{
    (void)state;
    for (int silu = 0; silu <= 1; silu++) {
        check_grads((gn_case){3, 6, 2, 5, silu});
        check_grads((gn_case){2, 8, 4, 9, silu});
        check_grads((gn_case){2, 4, 1, 11, silu});
        check_grads((gn_case){2, 3, 3, 6, silu});
    }
}

/* Forward and backward bits on 1 and 2 threads at a batch of 7 (two threads: 4 + 3 items). */
static void test_threads_bitwise(void **state)
{
    (void)state;
    const int saved = omp_get_max_threads();
    for (int silu = 0; silu <= 1; silu++) {
        gn_fix f;
        fix_init(&f, (gn_case){7, 32, 8, 100, silu}, 77);
        const size_t np = 2 * 32;
        float *y[2], *dx[2], *g[2], *dxa[2];
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t + 1);
            y[t] = xmalloc(f.m * sizeof(float));
            dx[t] = xmalloc(f.m * sizeof(float));
            g[t] = xmalloc(np * sizeof(float));
            dxa[t] = rand_floats(f.m, 5, 0.0, 1.0);
            run_forward(&f, y[t]);
            run_backward(&f, f.r, g[t], dx[t], 0);
            run_backward(&f, f.r, g[t], dxa[t], 1);
        }
        assert_memory_equal(y[0], y[1], f.m * sizeof(float));
        assert_memory_equal(dx[0], dx[1], f.m * sizeof(float));
        assert_memory_equal(dxa[0], dxa[1], f.m * sizeof(float));
        assert_memory_equal(g[0], g[1], np * sizeof(float));
        for (int t = 0; t < 2; t++) {
            free(y[t]);
            free(dx[t]);
            free(g[t]);
            free(dxa[t]);
        }
        fix_free(&f);
    }
    omp_set_num_threads(saved);
}

static void test_silu_alone(void **state)
{
    (void)state;
    enum { M = 301 };
    float *x = rand_floats(M, 21, 0.0, 4.0), *dy = rand_floats(M, 22, 0.0, 1.0);
    x[0] = -100.0f;
    x[1] = 100.0f;
    x[2] = 0.0f;
    float y[M], dx[M], acc[M];
    dm_silu_forward(M, x, y);
    dm_silu_backward(M, x, dy, dx, 0);
    for (int i = 0; i < M; i++) {
        acc[i] = 0.5f;
        const double s = 1.0 / (1.0 + exp(-(double)x[i]));
        assert_close(y[i], x[i] * s, 3e-7 * fabs(x[i] * s) + 1e-30);
        /* central difference of the double SiLU: SiLU' = s (1 + x (1 - s)); float error ~|x| ulp */
        const double h = 1e-6, fd = (silu_d(x[i] + h) - silu_d(x[i] - h)) / (2 * h);
        assert_close(dx[i], dy[i] * fd, 1e-6 * (1.0 + fabs(x[i])) * fabs(dy[i]) + 1e-9);
    }
    dm_silu_backward(M, x, dy, acc, 1);
    for (int i = 0; i < M; i++)
        assert_close(acc[i], 0.5 + dx[i], 1e-6 * (1.0 + fabs(dx[i])));
    dm_silu_forward(M, x, x); /* in place */
    assert_memory_equal(x, y, sizeof y);
    free(x);
    free(dy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_errors), cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_gradients),       cmocka_unit_test(test_threads_bitwise),
        cmocka_unit_test(test_silu_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
