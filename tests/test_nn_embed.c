/* test_nn_embed.c — the time and class embedding and the per-block projection (nn/embed), and the
 * Linear it is built from (nn/linear): the sinusoid against the peer's formula, forward against a
 * naive double reference, every parameter gradient (and the projection's input gradient) against
 * central differences of that reference, the null class, acc flags, init draw order,
 * bit-identity on 1 and 2 threads at a batch of 37 (two row tiles, uneven), errors. */
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
#include "nn/embed.h"
#include "nn/linear.h"
#include "nn_check.h"

static double silu_d(double u)
{
    return u / (1.0 + exp(-u));
}

/* y (n, out) = x W^T + b in double; p = W (out, in), b (out). */
static void ref_linear(int in, int out, const double *p, int n, const double *x, double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = p[(size_t)in * out + o];
            for (int k = 0; k < in; k++)
                s += p[(size_t)o * in + k] * x[(size_t)i * in + k];
            y[(size_t)i * out + o] = s;
        }
}

/* The peer's sinusoidal(t, dim), in double. */
static void ref_sinusoid(int dim, double c, double *e)
{
    const int half = dim / 2;
    for (int k = 0; k < half; k++) {
        const double f = exp(-log(10000.0) * k / half);
        e[k] = sin(c * f);
        e[half + k] = cos(c * f);
    }
}

typedef struct emb_ctx {
    int T, n_classes, n;
    const float *c;
    const int32_t *y;
    double *p;
    const float *r; // (n, T)
} emb_ctx;

static void ref_embed(const emb_ctx *k, double *out)
{
    const int T = k->T;
    double *e0 = xmalloc((size_t)T * sizeof(double)), *z = xmalloc((size_t)T * sizeof(double)),
           *t = xmalloc((size_t)T * sizeof(double));
    const size_t l2 = (size_t)(T + 1) * T, tab = 2 * l2;
    for (int i = 0; i < k->n; i++) {
        ref_sinusoid(T, k->c[i], e0);
        ref_linear(T, T, k->p, 1, e0, z);
        for (int j = 0; j < T; j++)
            z[j] = silu_d(z[j]);
        ref_linear(T, T, k->p + l2, 1, z, t);
        if (k->n_classes > 0) {
            const int yi = k->y && k->y[i] >= 0 && k->y[i] < k->n_classes ? k->y[i] : k->n_classes;
            for (int j = 0; j < T; j++)
                t[j] += k->p[tab + (size_t)yi * T + j];
        }
        for (int j = 0; j < T; j++)
            out[(size_t)i * T + j] = silu_d(t[j]);
    }
    free(e0);
    free(z);
    free(t);
}

static double emb_loss(void *vctx)
{
    const emb_ctx *k = vctx;
    double *out = xmalloc((size_t)k->n * k->T * sizeof(double));
    ref_embed(k, out);
    const double L = dot_dd(out, k->r, (size_t)k->n * k->T);
    free(out);
    return L;
}

static void test_init_and_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_embed e;
    assert_int_equal(dm_embed_init(&e, 128, 0, err), DM_OK);
    assert_int_equal(e.n_params, 2 * (128 * 128 + 128)); /* the peer's time MLP: 33,024 */
    assert_int_equal(dm_embed_init(&e, 16, 10, err), DM_OK);
    assert_int_equal(e.off_l2, 16 * 17);
    assert_int_equal(e.off_table, 2 * 16 * 17);
    assert_int_equal(e.n_params, 2 * 16 * 17 + 11 * 16);
    assert_int_equal(dm_embed_init(&e, 15, 0, err), DM_E_INPUT);
    assert_non_null(strstr(err, "dim=15"));
    assert_int_equal(dm_embed_init(&e, 16, -1, err), DM_E_INPUT);
    dm_tproj tp;
    assert_int_equal(dm_tproj_init(&tp, 128, 64, err), DM_OK);
    assert_int_equal(tp.n_params, 128 * 64 + 64);
    assert_int_equal(dm_tproj_init(&tp, 128, 0, err), DM_E_INPUT);

    /* Draw order: W1, b1, W2, b2 from U(-1/sqrt(T), 1/sqrt(T)), then the table from N(0, 1). */
    assert_int_equal(dm_embed_init(&e, 16, 10, err), DM_OK);
    float *p = xmalloc(e.n_params * sizeof(float));
    dm_rng a, b;
    assert_int_equal(dm_rng_init(&a, 42, err), DM_OK);
    assert_int_equal(dm_rng_init(&b, 42, err), DM_OK);
    dm_embed_init_params(&e, p, &a);
    for (size_t i = 0; i < e.off_table; i++)
        assert_true(p[i] == (float)((2.0 * dm_rng_uniform(&b) - 1.0) * 0.25));
    for (size_t i = e.off_table; i < e.n_params; i++)
        assert_true(p[i] == (float)dm_rng_normal(&b));
    dm_rng_free(&a);
    dm_rng_free(&b);
    free(p);

    dm_embed_ws ws;
    assert_int_equal(dm_embed_ws_init(&ws, &e, 0, err), DM_E_INPUT);
    for (long k = 1; k <= 10; k++) {
        dm_alloc_fail_at(k);
        const dm_status st = dm_embed_ws_init(&ws, &e, 4, err);
        const long made = dm_alloc_fail_at(0);
        assert_int_equal(st, k <= made ? DM_E_NOMEM : DM_OK);
        if (st == DM_OK)
            dm_embed_ws_free(&ws);
        else
            assert_null(ws.e0);
    }
}

static void test_sinusoid_peer(void **state)
{
    (void)state;
    enum { T = 128, N = 5 };
    const float c[N] = {0.0f, 1.0f, 999.0f, 0.37f, 2.5e3f};
    double freq[T / 2], want[T];
    float e0[N * T];
    dm_embed_freq(T, freq);
    dm_embed_sinusoid(T, freq, N, c, e0);
    for (int i = 0; i < N; i++) {
        ref_sinusoid(T, c[i], want);
        for (int k = 0; k < T; k++)
            assert_true(e0[i * T + k] == (float)want[k]);
    }
}

/* Forward and every parameter gradient against the double reference. Float error: products of T
 * terms ~1e-6 relative to the sums of magnitudes (~1 here), so 1e-5 abs on out; the gradient's
 * through two Linears and two SiLUs, a few times that. h = 1e-6 on the double reference: its own
 * error ~1e-9. */
static void check_embed(int T, int n_classes, int n, const int32_t *y)
{
    char err[DM_ERR_SIZE];
    dm_embed e;
    dm_embed_ws ws;
    assert_int_equal(dm_embed_init(&e, T, n_classes, err), DM_OK);
    assert_int_equal(dm_embed_ws_init(&ws, &e, n, err), DM_OK);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 3, err), DM_OK);
    float *p = xmalloc(e.n_params * sizeof(float));
    dm_embed_init_params(&e, p, &rng);
    dm_rng_free(&rng);
    for (size_t i = 0; i < e.n_params; i++) /* larger weights: the SiLUs' curvature matters */
        p[i] *= 2.0f;
    float *c = xmalloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++)
        c[i] = (float)(37 * i % 1000) * 0.731f;
    float *r = rand_floats((size_t)n * T, 4, 0.0, 1.0), *out = xmalloc((size_t)n * T * sizeof(float));
    float *grads = xmalloc(e.n_params * sizeof(float));
    memset(grads, 0xff, e.n_params * sizeof(float));
    dm_embed_forward(&e, p, &ws, n, c, y, out);
    emb_ctx k = {T, n_classes, n, c, y, to_double(p, e.n_params), r};
    double *ref = xmalloc((size_t)n * T * sizeof(double));
    ref_embed(&k, ref);
    for (int i = 0; i < n * T; i++)
        assert_close(out[i], ref[i], 1e-5 * (1.0 + fabs(ref[i])));
    dm_embed_backward(&e, p, &ws, n, r, grads);
    nn_check_fd("params", emb_loss, &k, k.p, e.n_params, grads, 1e-6, 2e-5, 1e-4);
    free(ref);
    free(k.p);
    free(p);
    free(c);
    free(r);
    free(out);
    free(grads);
    dm_embed_ws_free(&ws);
}

static void test_embed(void **state)
{
    (void)state;
    const int32_t y[9] = {2, DM_EMBED_NULL_CLASS, 0, 2, 3, 1, 2, -7, 0}; /* 3 = n_classes, -7: null too */
    check_embed(8, 0, 5, NULL);
    check_embed(8, 3, 9, y);
    check_embed(6, 3, 4, NULL); /* y = NULL: all null */
    check_embed(12, 1, 9, (const int32_t[9]){0, 0, 1, -1, 0, 1, 0, 0, 0});
}

/* ---- per-block projection ------------------------------------------------------------------ */

typedef struct proj_ctx {
    int T, C, n, hw;
    double *p, *emb;
    const float *h0, *r; // (n, C, hw) each: the activation before the add, the loss weights
} proj_ctx;

static double proj_loss(void *vctx)
{
    const proj_ctx *k = vctx;
    double *pr = xmalloc((size_t)k->n * k->C * sizeof(double)), L = 0.0;
    ref_linear(k->T, k->C, k->p, k->n, k->emb, pr);
    for (int i = 0; i < k->n; i++)
        for (int c = 0; c < k->C; c++)
            for (int j = 0; j < k->hw; j++) {
                const size_t q = ((size_t)i * k->C + c) * k->hw + j;
                L += k->r[q] * (k->h0[q] + pr[(size_t)i * k->C + c]);
            }
    free(pr);
    return L;
}

static void test_tproj(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const int T = 10, C = 6, n = 5, hw = 13;
    const size_t m = (size_t)n * C * hw;
    dm_tproj tp;
    dm_tproj_ws ws;
    assert_int_equal(dm_tproj_init(&tp, T, C, err), DM_OK);
    assert_int_equal(dm_tproj_ws_init(&ws, &tp, n, err), DM_OK);
    float *p = rand_floats(tp.n_params, 5, 0.0, 0.5), *emb = rand_floats((size_t)n * T, 6, 0.0, 1.0);
    float *h0 = rand_floats(m, 7, 0.0, 1.0), *r = rand_floats(m, 8, 0.0, 1.0),
          *h = xmalloc(m * sizeof(float));
    memcpy(h, h0, m * sizeof(float));
    dm_tproj_forward(&tp, p, &ws, n, emb, hw, h);
    proj_ctx k = {T, C, n, hw, to_double(p, tp.n_params), to_double(emb, (size_t)n * T), h0, r};
    double *pr = xmalloc((size_t)n * C * sizeof(double));
    ref_linear(T, C, k.p, n, k.emb, pr);
    for (size_t q = 0; q < m; q++)
        assert_close(h[q], h0[q] + pr[q / hw], 1e-6 * (1.0 + fabs(h0[q]) + fabs(pr[q / hw])));
    float *grads = xmalloc(tp.n_params * sizeof(float)), *demb = xmalloc((size_t)n * T * sizeof(float));
    memset(grads, 0xff, tp.n_params * sizeof(float));
    dm_tproj_backward(&tp, p, &ws, n, emb, hw, r, grads, demb, 0);
    /* L is linear in p and emb separately: the central difference's error is rounding, ~1e-16 |L|
     * / h ~ 1e-11; the float gradients sum hw N(0, 1) values (in double) then n or C products in
     * float: ~1e-6. */
    nn_check_fd("params", proj_loss, &k, k.p, tp.n_params, grads, 1e-4, 1e-5, 1e-5);
    nn_check_fd("emb", proj_loss, &k, k.emb, (size_t)n * T, demb, 1e-4, 1e-5, 1e-5);
    float *acc = rand_floats((size_t)n * T, 9, 0.0, 1.0), *base = xmalloc((size_t)n * T * sizeof(float));
    memcpy(base, acc, (size_t)n * T * sizeof(float));
    dm_tproj_backward(&tp, p, &ws, n, emb, hw, r, grads, acc, 1);
    for (int i = 0; i < n * T; i++)
        assert_close(acc[i], (double)base[i] + demb[i], 1e-6 * (1.0 + fabs(base[i]) + fabs(demb[i])));
    free(acc);
    free(base);
    free(pr);
    free(k.p);
    free(k.emb);
    free(p);
    free(emb);
    free(h0);
    free(r);
    free(h);
    free(grads);
    free(demb);
    dm_tproj_ws_free(&ws);
}

/* Forward and backward of both on 1 and 2 threads at n = 37 (Linear row tiles 32 + 5) and T = 40
 * (dW tiles 32 + 8). */
static void test_threads_bitwise(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const int T = 40, C = 24, n = 37, hw = 49, ncls = 4;
    dm_embed e;
    dm_embed_ws ews;
    dm_tproj tp;
    dm_tproj_ws tws;
    assert_int_equal(dm_embed_init(&e, T, ncls, err), DM_OK);
    assert_int_equal(dm_embed_ws_init(&ews, &e, n, err), DM_OK);
    assert_int_equal(dm_tproj_init(&tp, T, C, err), DM_OK);
    assert_int_equal(dm_tproj_ws_init(&tws, &tp, n, err), DM_OK);
    const size_t np = e.n_params + tp.n_params, m = (size_t)n * C * hw;
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 8, err), DM_OK);
    float *p = xmalloc(np * sizeof(float));
    dm_embed_init_params(&e, p, &rng);
    dm_tproj_init_params(&tp, p + e.n_params, &rng);
    dm_rng_free(&rng);
    float *c = rand_floats((size_t)n, 10, 500.0, 200.0), *dh = rand_floats(m, 11, 0.0, 1.0);
    int32_t y[37];
    for (int i = 0; i < n; i++)
        y[i] = i % 6 - 1;
    float *out[2], *h[2], *g[2], *demb[2];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        out[t] = xmalloc((size_t)n * T * sizeof(float));
        h[t] = rand_floats(m, 12, 0.0, 1.0);
        g[t] = xmalloc(np * sizeof(float));
        demb[t] = xmalloc((size_t)n * T * sizeof(float));
        dm_embed_forward(&e, p, &ews, n, c, y, out[t]);
        dm_tproj_forward(&tp, p + e.n_params, &tws, n, out[t], hw, h[t]);
        dm_tproj_backward(&tp, p + e.n_params, &tws, n, out[t], hw, dh, g[t] + e.n_params, demb[t], 0);
        dm_embed_backward(&e, p, &ews, n, demb[t], g[t]);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(out[0], out[1], (size_t)n * T * sizeof(float));
    assert_memory_equal(h[0], h[1], m * sizeof(float));
    assert_memory_equal(demb[0], demb[1], (size_t)n * T * sizeof(float));
    assert_memory_equal(g[0], g[1], np * sizeof(float));
    for (int t = 0; t < 2; t++) {
        free(out[t]);
        free(h[t]);
        free(g[t]);
        free(demb[t]);
    }
    free(p);
    free(c);
    free(dh);
    dm_embed_ws_free(&ews);
    dm_tproj_ws_free(&tws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_errors), cmocka_unit_test(test_sinusoid_peer),
        cmocka_unit_test(test_embed),           cmocka_unit_test(test_tproj),
        cmocka_unit_test(test_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
