/* test_nn_attn.c — single-head self-attention (nn/attn): forward against a naive triple loop in
 * double (GroupNorm by the two-pass formula, q k v, softmax, weighted sum, projection, residual),
 * every input and parameter gradient against central differences of that reference, acc_dx, the
 * softmax kept in the workspace, init, errors, and bit-identity on 1 and 2 threads at a batch of
 * 7 (tiles of 4 + 3). */
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
#include "nn/attn.h"
#include "nn_check.h"

typedef struct at_ctx {
    int n, c, groups, hw;
    double *p, *x;
    const float *r; // (n, C, hw) loss weights
    double *y;      // (n, C, hw) scratch
    double *P;      // (n, hw, hw) the softmax of the last call
} at_ctx;

/* y = x + Wo softmax-attention(GroupNorm(x)) + bo, by direct loops in double. */
static void ref_forward(at_ctx *k)
{
    const int C = k->c, N = k->hw, G = k->groups, cpg = C / G;
    const double *gamma = k->p, *beta = k->p + C, *wqkv = k->p + 2 * C, *bqkv = wqkv + 3 * C * C;
    const double *wo = bqkv + 3 * C, *bo = wo + C * C;
    double *h = xmalloc((size_t)C * N * sizeof(double)), *qkv = xmalloc((size_t)3 * C * N * sizeof(double));
    double *a = xmalloc((size_t)C * N * sizeof(double));
    for (int i = 0; i < k->n; i++) {
        const double *x = k->x + (size_t)i * C * N;
        for (int g = 0; g < G; g++) {
            double mean = 0.0, var = 0.0;
            for (int j = 0; j < cpg * N; j++)
                mean += x[g * cpg * N + j] / (cpg * N);
            for (int j = 0; j < cpg * N; j++)
                var += (x[g * cpg * N + j] - mean) * (x[g * cpg * N + j] - mean) / (cpg * N);
            for (int j = 0; j < cpg * N; j++) {
                const int c = g * cpg + j / N;
                h[g * cpg * N + j] = gamma[c] * (x[g * cpg * N + j] - mean) / sqrt(var + 1e-5) + beta[c];
            }
        }
        for (int o = 0; o < 3 * C; o++)
            for (int j = 0; j < N; j++) {
                double s = bqkv[o];
                for (int c = 0; c < C; c++)
                    s += wqkv[o * C + c] * h[c * N + j];
                qkv[o * N + j] = s;
            }
        double *P = k->P + (size_t)i * N * N;
        for (int q = 0; q < N; q++) {
            double mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < N; j++) {
                double s = 0.0;
                for (int c = 0; c < C; c++)
                    s += qkv[c * N + q] * qkv[(C + c) * N + j];
                P[q * N + j] = s / sqrt((double)C);
                mx = fmax(mx, P[q * N + j]);
            }
            for (int j = 0; j < N; j++)
                sum += (P[q * N + j] = exp(P[q * N + j] - mx));
            for (int j = 0; j < N; j++)
                P[q * N + j] /= sum;
        }
        for (int c = 0; c < C; c++)
            for (int q = 0; q < N; q++) {
                double s = 0.0;
                for (int j = 0; j < N; j++)
                    s += P[q * N + j] * qkv[(2 * C + c) * N + j];
                a[c * N + q] = s;
            }
        for (int o = 0; o < C; o++)
            for (int q = 0; q < N; q++) {
                double s = bo[o];
                for (int c = 0; c < C; c++)
                    s += wo[o * C + c] * a[c * N + q];
                k->y[(size_t)i * C * N + o * N + q] = x[o * N + q] + s;
            }
    }
    free(h);
    free(qkv);
    free(a);
}

static double ref_loss(void *vctx)
{
    at_ctx *k = vctx;
    ref_forward(k);
    return dot_dd(k->y, k->r, (size_t)k->n * k->c * k->hw);
}

typedef struct at_fix {
    dm_attn at;
    dm_attn_ws ws;
    int n, hw;
    size_t m;
    float *p, *x, *r;
} at_fix;

/* Weights 3x PyTorch's default scale, so that the softmax is far from uniform (its backward then
 * matters), and perturbed gamma and beta. */
static void fix_init(at_fix *f, int n, int groups, int c, int hw, uint64_t seed)
{
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_attn_init(&f->at, groups, c, err), DM_OK);
    assert_int_equal(dm_attn_ws_init(&f->ws, &f->at, hw, n, err), DM_OK);
    f->n = n;
    f->hw = hw;
    f->m = (size_t)n * c * hw;
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    f->p = xmalloc(f->at.n_params * sizeof(float));
    dm_attn_init_params(&f->at, f->p, &rng);
    for (size_t i = f->at.off_qkv; i < f->at.n_params; i++)
        f->p[i] *= 3.0f;
    for (int i = 0; i < 2 * c; i++)
        f->p[i] += (float)(0.3 * dm_rng_normal(&rng));
    dm_rng_free(&rng);
    f->x = rand_floats(f->m, seed + 1, 0.5, 1.0);
    f->r = rand_floats(f->m, seed + 2, 0.0, 1.0);
}

static void fix_free(at_fix *f)
{
    dm_attn_ws_free(&f->ws);
    free(f->p);
    free(f->x);
    free(f->r);
}

static void test_init_and_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_attn at;
    assert_int_equal(dm_attn_init(&at, 8, 64, err), DM_OK);
    assert_int_equal(at.n_params, 4 * 64 * 64 + 6 * 64);
    assert_int_equal(at.off_qkv, 128);
    assert_int_equal(at.off_out, 128 + 3 * 64 * 64 + 3 * 64);
    assert_int_equal(dm_attn_init(&at, 5, 64, err), DM_E_INPUT);
    assert_non_null(strstr(err, "attn: gnorm: 64 channels"));
    assert_int_equal(dm_attn_init(&at, 1, 0, err), DM_E_INPUT);

    assert_int_equal(dm_attn_init(&at, 2, 8, err), DM_OK);
    float *p = xmalloc(at.n_params * sizeof(float));
    dm_rng a, b;
    assert_int_equal(dm_rng_init(&a, 42, err), DM_OK);
    assert_int_equal(dm_rng_init(&b, 42, err), DM_OK);
    dm_attn_init_params(&at, p, &a);
    for (int c = 0; c < 8; c++)
        assert_true(p[c] == 1.0f && p[8 + c] == 0.0f);
    for (size_t i = at.off_qkv; i < at.n_params; i++)
        assert_true(p[i] == (float)((2.0 * dm_rng_uniform(&b) - 1.0) / sqrt(8.0)));
    dm_rng_free(&a);
    dm_rng_free(&b);
    free(p);

    dm_attn_ws ws;
    assert_int_equal(dm_attn_ws_init(&ws, &at, 0, 4, err), DM_E_INPUT);
    for (long k = 1; k <= 14; k++) {
        dm_alloc_fail_at(k);
        const dm_status st = dm_attn_ws_init(&ws, &at, 16, 5, err);
        const long made = dm_alloc_fail_at(0);
        assert_int_equal(st, k <= made ? DM_E_NOMEM : DM_OK);
        if (st == DM_OK)
            dm_attn_ws_free(&ws);
        else
            assert_null(ws.h);
    }
}

/* Forward against the reference: the float pipeline's error is a few ulp of sums of C or N
 * products of magnitude ~1-3, ~1e-6 relative; 2e-5 absolute leaves room. The kept softmax: a
 * logit of magnitude up to ~10 here carries ~1e-6 absolute error (a few ulp), which moves P by
 * P (1 - P) times that plus the exp's 2 ulp: within 1e-5 of the reference; rows sum to 1. */
static void check_forward(int n, int groups, int c, int hw)
{
    at_fix f;
    fix_init(&f, n, groups, c, hw, 30 + (uint64_t)hw);
    float *y = xmalloc(f.m * sizeof(float));
    dm_attn_forward(&f.at, f.p, &f.ws, n, f.x, y);
    at_ctx k = {n,
                c,
                groups,
                hw,
                to_double(f.p, f.at.n_params),
                to_double(f.x, f.m),
                f.r,
                xmalloc(f.m * sizeof(double)),
                xmalloc((size_t)n * hw * hw * sizeof(double))};
    ref_forward(&k);
    for (size_t i = 0; i < f.m; i++)
        if (!(fabs(y[i] - k.y[i]) <= 2e-5 * (1.0 + fabs(k.y[i]))))
            fail_msg("C=%d hw=%d: y[%zu] = %.9g, reference %.9g", c, hw, i, y[i], k.y[i]);
    for (int i = 0; i < n * hw; i++) {
        double s = 0.0;
        for (int j = 0; j < hw; j++) {
            assert_close(f.ws.p[(size_t)i * hw + j], k.P[(size_t)i * hw + j], 1e-5);
            s += f.ws.p[(size_t)i * hw + j];
        }
        assert_close(s, 1.0, 1e-6);
    }
    free(k.p);
    free(k.x);
    free(k.y);
    free(k.P);
    free(y);
    fix_free(&f);
}

static void test_forward_reference(void **state)
{
    (void)state;
    check_forward(3, 2, 4, 9);
    check_forward(2, 4, 16, 7 * 7);
    check_forward(2, 8, 32, 14 * 14); /* a U-Net's 14x14 level */
    check_forward(1, 1, 3, 1);        /* one position: P = 1, a = v */
}

/* Every input and parameter gradient against central differences (h = 1e-6) of the reference
 * (its own error ~1e-9). The float backward's error: a few ulp of sums of C or N terms up to ~10
 * (products through two softmax factors and three weight matrices): ~1e-5 absolute. */
static void check_grads(int n, int groups, int c, int hw)
{
    at_fix f;
    fix_init(&f, n, groups, c, hw, 50 + (uint64_t)c);
    const size_t np = f.at.n_params;
    float *y = xmalloc(f.m * sizeof(float)), *dx = xmalloc(f.m * sizeof(float)),
          *g = xmalloc(np * sizeof(float));
    memset(g, 0xff, np * sizeof(float));
    memset(dx, 0xff, f.m * sizeof(float));
    dm_attn_forward(&f.at, f.p, &f.ws, n, f.x, y);
    dm_attn_backward(&f.at, f.p, &f.ws, n, f.x, f.r, g, dx, 0);
    at_ctx k = {n,
                c,
                groups,
                hw,
                to_double(f.p, np),
                to_double(f.x, f.m),
                f.r,
                xmalloc(f.m * sizeof(double)),
                xmalloc((size_t)n * hw * hw * sizeof(double))};
    nn_check_fd("x", ref_loss, &k, k.x, f.m, dx, 1e-6, 2e-5, 1e-4);
    nn_check_fd("params", ref_loss, &k, k.p, np, g, 1e-6, 2e-5, 1e-4);
    float *acc = rand_floats(f.m, 8, 0.0, 1.0), *base = xmalloc(f.m * sizeof(float));
    memcpy(base, acc, f.m * sizeof(float));
    dm_attn_backward(&f.at, f.p, &f.ws, n, f.x, f.r, g, acc, 1);
    for (size_t i = 0; i < f.m; i++)
        assert_close(acc[i], (double)base[i] + dx[i], 1e-6 * (1.0 + fabs(base[i]) + fabs(dx[i])));
    free(acc);
    free(base);
    free(k.p);
    free(k.x);
    free(k.y);
    free(k.P);
    free(y);
    free(dx);
    free(g);
    fix_free(&f);
}

static void test_gradients(void **state)
{
    (void)state;
    check_grads(3, 2, 4, 9); /* three items: one tile of 3 */
    check_grads(6, 1, 3, 5); /* two tiles (4 + 2): the tile sums */
    check_grads(2, 4, 8, 16);
}

static void test_threads_bitwise(void **state)
{
    (void)state;
    at_fix f;
    fix_init(&f, 7, 4, 16, 36, 91);
    const size_t np = f.at.n_params;
    float *y[2], *dx[2], *g[2];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        y[t] = xmalloc(f.m * sizeof(float));
        dx[t] = rand_floats(f.m, 5, 0.0, 1.0);
        g[t] = xmalloc(np * sizeof(float));
        dm_attn_forward(&f.at, f.p, &f.ws, f.n, f.x, y[t]);
        dm_attn_backward(&f.at, f.p, &f.ws, f.n, f.x, f.r, g[t], dx[t], 1);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(y[0], y[1], f.m * sizeof(float));
    assert_memory_equal(dx[0], dx[1], f.m * sizeof(float));
    assert_memory_equal(g[0], g[1], np * sizeof(float));
    for (int t = 0; t < 2; t++) {
        free(y[t]);
        free(dx[t]);
        free(g[t]);
    }
    fix_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_errors),
        cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
