/* test_mlp.c — the toy MLP: shapes and init, time embedding, SiLU kernels, forward against a naive
 * double-precision re-implementation, gradients against central differences (of that double
 * re-implementation, h = 1e-6, and of the float forward itself, h = 1e-2), bit-identity of
 * forward + backward + Adam across thread counts, and allocation failures. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "nn/act_fast.h"
#include "nn/mlp.h"
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

/* A small model with its parameters, workspace and a random batch. */
typedef struct fixture {
    dm_mlp m;
    dm_mlp_ws ws;
    int n;
    float *params; // (n_params)
    float *x;      // (n, in_dim)
    float *t;      // (n)
    float *r;      // (n, out_dim): loss L = sum(out * r)
} fixture;

static void fixture_init(fixture *f, dm_mlp_cfg cfg, int n, uint64_t seed)
{
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_mlp_init(&f->m, &cfg, err), DM_OK);
    assert_int_equal(dm_mlp_ws_init(&f->ws, &f->m, n, err), DM_OK);
    f->n = n;
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    f->params = xmalloc(f->m.n_params * sizeof(float));
    dm_mlp_init_params(&f->m, f->params, &rng);
    /* Larger biases than the default init, so that the bias paths matter in the checks. */
    for (int l = 0; l < f->m.n_layers; l++)
        for (int j = 0; j < f->m.fan_out[l]; j++)
            f->params[f->m.b_off[l] + j] = (float)(dm_rng_uniform(&rng) - 0.5);
    f->x = xmalloc((size_t)n * cfg.in_dim * sizeof(float));
    f->t = xmalloc((size_t)n * sizeof(float));
    f->r = xmalloc((size_t)n * cfg.out_dim * sizeof(float));
    for (int i = 0; i < n * cfg.in_dim; i++)
        f->x[i] = (float)(2.0 * dm_rng_normal(&rng));
    for (int i = 0; i < n; i++)
        f->t[i] = (float)dm_rng_int(&rng, 1000);
    for (int i = 0; i < n * cfg.out_dim; i++)
        f->r[i] = (float)dm_rng_normal(&rng);
    dm_rng_free(&rng);
}

static void fixture_free(fixture *f)
{
    dm_mlp_ws_free(&f->ws);
    dm_mlp_free(&f->m);
    free(f->params);
    free(f->x);
    free(f->t);
    free(f->r);
}

/* ---- naive double reference ---------------------------------------------------------------- */

static double ref_freq(int k, int nfreq)
{
    return exp(-log(10000.0) * k / nfreq);
}

/* out (n, out_dim) of the MLP with double parameters p, by triple loops. */
static void ref_forward(const dm_mlp *m, const double *p, int n, const double *x, const float *t, double *out)
{
    const dm_mlp_cfg *c = &m->cfg;
    int maxw = m->fan_in[0];
    for (int l = 0; l < m->n_layers; l++)
        maxw = m->fan_out[l] > maxw ? m->fan_out[l] : maxw;
    double *h = xmalloc((size_t)maxw * sizeof(double)); // (maxw)
    double *z = xmalloc((size_t)maxw * sizeof(double)); // (maxw)
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < c->in_dim; d++)
            h[d] = x[(size_t)i * c->in_dim + d];
        for (int k = 0; k < c->nfreq; k++) {
            h[c->in_dim + k] = sin((double)t[i] * ref_freq(k, c->nfreq));
            h[c->in_dim + c->nfreq + k] = cos((double)t[i] * ref_freq(k, c->nfreq));
        }
        for (int l = 0; l < m->n_layers; l++) {
            const int fi = m->fan_in[l], fo = m->fan_out[l];
            for (int o = 0; o < fo; o++) {
                double s = p[m->b_off[l] + o];
                for (int k = 0; k < fi; k++)
                    s += p[m->w_off[l] + (size_t)o * fi + k] * h[k];
                z[o] = s;
            }
            for (int o = 0; o < fo; o++)
                h[o] = l < m->n_layers - 1 ? z[o] / (1.0 + exp(-z[o])) : z[o];
        }
        for (int o = 0; o < c->out_dim; o++)
            out[(size_t)i * c->out_dim + o] = h[o];
    }
    free(h);
    free(z);
}

static double ref_loss(const fixture *f, const double *p, const double *x)
{
    const int nout = f->n * f->m.cfg.out_dim;
    double *out = xmalloc((size_t)nout * sizeof(double));
    ref_forward(&f->m, p, f->n, x, f->t, out);
    double L = 0.0;
    for (int i = 0; i < nout; i++)
        L += out[i] * f->r[i];
    free(out);
    return L;
}

/* L = sum(out * r) of the float forward, accumulated in double. */
static double float_loss(fixture *f, const float *params, const float *x)
{
    const int nout = f->n * f->m.cfg.out_dim;
    float *out = xmalloc((size_t)nout * sizeof(float));
    dm_mlp_forward(&f->m, params, &f->ws, f->n, x, f->t, out);
    double L = 0.0;
    for (int i = 0; i < nout; i++)
        L += (double)out[i] * f->r[i];
    free(out);
    return L;
}

/* ---- shapes, init, errors ------------------------------------------------------------------ */

static const dm_mlp_cfg toy_cfg = {.in_dim = 2, .out_dim = 2, .nfreq = 32, .width = 256, .depth = 3};

static void test_shapes_and_init(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_mlp m;
    assert_int_equal(dm_mlp_init(&m, &toy_cfg, err), DM_OK);
    assert_int_equal(m.n_layers, 4);
    assert_int_equal(m.n_params, 149250); /* = the peer's parameter count */
    assert_int_equal(m.fan_in[0], 66);
    assert_int_equal(m.fan_out[3], 2);
    assert_int_equal(m.w_off[0], 0);
    assert_int_equal(m.b_off[0], 66 * 256);
    assert_int_equal(m.w_off[1], 66 * 256 + 256);
    assert_int_equal(m.b_off[3], m.n_params - 2);

    /* Draw order: layer by layer, W row-major then b, U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
    float *p = xmalloc(m.n_params * sizeof(float));
    dm_rng a, b;
    assert_int_equal(dm_rng_init(&a, 42, err), DM_OK);
    assert_int_equal(dm_rng_init(&b, 42, err), DM_OK);
    dm_mlp_init_params(&m, p, &a);
    for (int l = 0; l < m.n_layers; l++) {
        const double bound = 1.0 / sqrt((double)m.fan_in[l]);
        const size_t cnt = (size_t)m.fan_in[l] * m.fan_out[l] + m.fan_out[l];
        double lo = 1, hi = -1;
        for (size_t i = 0; i < cnt; i++) {
            const float want = (float)((2.0 * dm_rng_uniform(&b) - 1.0) * bound);
            assert_true(p[m.w_off[l] + i] == want);
            lo = fmin(lo, p[m.w_off[l] + i] / bound);
            hi = fmax(hi, p[m.w_off[l] + i] / bound);
        }
        assert_true(lo >= -1.0 && hi <= 1.0 && lo < -0.9 && hi > 0.9);
    }
    free(p);
    dm_rng_free(&a);
    dm_rng_free(&b);
    dm_mlp_free(&m);

    dm_mlp_cfg bad = toy_cfg;
    bad.width = 0;
    assert_int_equal(dm_mlp_init(&m, &bad, err), DM_E_INPUT);
    assert_non_null(strstr(err, "width=0"));
    bad = toy_cfg;
    bad.depth = -1;
    assert_int_equal(dm_mlp_init(&m, &bad, err), DM_E_INPUT);
    assert_int_equal(dm_mlp_init(&m, &toy_cfg, err), DM_OK);
    dm_mlp_ws ws;
    assert_int_equal(dm_mlp_ws_init(&ws, &m, 0, err), DM_E_INPUT);
    dm_mlp_free(&m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    for (long k = 1; k <= 8; k++) {
        dm_mlp m;
        dm_mlp_ws ws;
        dm_alloc_fail_at(k);
        dm_status st = dm_mlp_init(&m, &toy_cfg, err);
        if (st == DM_OK) {
            st = dm_mlp_ws_init(&ws, &m, 64, err);
            if (st == DM_OK)
                dm_mlp_ws_free(&ws);
            dm_mlp_free(&m);
        }
        const long made = dm_alloc_fail_at(0);
        if (k <= made) /* the k-th allocation happened, so it failed */
            assert_int_equal(st, DM_E_NOMEM);
        else
            assert_int_equal(st, DM_OK);
    }
}

/* ---- time embedding, SiLU ------------------------------------------------------------------ */

static void test_time_embed_exact(void **state)
{
    (void)state;
    const dm_mlp_cfg cfg = {.in_dim = 3, .out_dim = 1, .nfreq = 32, .width = 4, .depth = 1};
    fixture f;
    fixture_init(&f, cfg, 203, 7);
    /* Runs of equal t (as in sampling) take the copy path; also fractional and large t. */
    for (int i = 0; i < f.n; i++)
        f.t[i] = i < 50 ? 999.0f : i < 100 ? (float)(i / 7) : (float)(0.37 * i - 3.1);
    f.t[150] = 1e5f;
    float *out = xmalloc((size_t)f.n * sizeof(float));
    dm_mlp_forward(&f.m, f.params, &f.ws, f.n, f.x, f.t, out);
    const float *h0 = f.ws.act[0]; // (n, 3 + 64)
    for (int i = 0; i < f.n; i++) {
        const float *row = h0 + (size_t)i * f.m.fan_in[0];
        for (int d = 0; d < 3; d++)
            assert_true(row[d] == f.x[i * 3 + d]);
        for (int k = 0; k < 32; k++) {
            const double a = (double)f.t[i] * ref_freq(k, 32);
            if (row[3 + k] != (float)sin(a) || row[3 + 32 + k] != (float)cos(a))
                fail_msg("row %d k %d t %g: %.9g %.9g want %.9g %.9g", i, k, f.t[i], row[3 + k], row[35 + k],
                         (float)sin(a), (float)cos(a));
        }
    }
    free(out);
    fixture_free(&f);
}

static double sigmoid_d(double z)
{
    return 1.0 / (1.0 + exp(-z));
}
static double silu_d(double z)
{
    return z * sigmoid_d(z);
}
static double dsilu_d(double z)
{
    const double s = sigmoid_d(z);
    return s * (1.0 + z * (1.0 - s));
}

static void test_silu(void **state)
{
    (void)state;
    enum { N = 130, M = 5, OD = 3 }; // 3 row chunks, the last partial
    static float z[N * M], s[N * M], h[N * M], g[N * M], g0[N * M], zo[N * OD], out[N * OD], dout[N * OD];
    float b[M], wo[OD * M], bo[OD];
    double part[3 * M];
    for (int i = 0; i < N * M; i++) {
        z[i] = (float)(-9.0 + 18.0 * (i * 0.6180339887 - floor(i * 0.6180339887)));
        g0[i] = (float)sin(1.7 * i);
    }
    z[0] = -100.0f;
    z[1] = 100.0f;
    z[2] = 0.0f;
    z[3] = -40.5f;
    for (int j = 0; j < M; j++)
        b[j] = 0.25f * (float)j - 0.5f;
    for (int i = 0; i < OD * M; i++)
        wo[i] = (float)cos(0.3 * i);
    for (int o = 0; o < OD; o++)
        bo[o] = 0.1f * (float)o;
    for (int i = 0; i < N * OD; i++)
        dout[i] = (float)sin(0.77 * i + 0.1);

    /* forward: SiLU with the next layer's bias prefill and the output layer fused */
    for (int i = 0; i < N * M; i++)
        s[i] = z[i] + b[i % M];
    static float nz[N * 4];
    const float nb[4] = {1.5f, -2.0f, 0.25f, 3.0f};
    const dm_act_prefill next = {4, nb, nz};
    const dm_act_out ol = {OD, wo, bo, zo, out};
    dm_act_silu_fwd(N, M, s, h, &next, &ol);
    for (int i = 0; i < N; i++)
        assert_memory_equal(nz + 4 * i, nb, sizeof nb);
    for (int i = 0; i < N * M; i++) {
        const float v = z[i] + b[i % M];
        assert_close(s[i], sigmoid_d(v), 3e-7 * sigmoid_d(v) + 1e-35);
        assert_close(h[i], silu_d(v), 3e-7 * fabs(silu_d(v)) + 1e-35);
    }
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OD; o++) {
            double want = bo[o], mag = fabs(bo[o]);
            for (int j = 0; j < M; j++) {
                want += (double)h[i * M + j] * wo[o * M + j];
                mag += fabs((double)h[i * M + j] * wo[o * M + j]);
            }
            assert_close(zo[i * OD + o], want, 1e-6 * mag);
            assert_true(out[i * OD + o] == zo[i * OD + o]);
        }
    dm_act_silu(N * M, z, h);
    for (int i = 0; i < N * M; i++)
        assert_close(h[i], silu_d(z[i]), 3e-7 * fabs(silu_d(z[i])) + 1e-35);

    /* backward from the forward's s and h (no bias), against the double derivative and against
     * central differences of the float forward (h = 1e-2: truncation ~ h^2 |SiLU'''| / 6 < 2e-5,
     * rounding ~ 1e-5). SiLU' from s and h is exact up to ~|z| ulps. */
    memcpy(s, z, sizeof z);
    dm_act_silu_fwd(N, M, s, h, NULL, NULL);
    memcpy(g, g0, sizeof g);
    for (int i = 0; i < N * 4; i++)
        nz[i] = NAN;
    const dm_act_prefill zero = {4, NULL, nz};
    dm_act_silu_bwd(N, M, s, h, g, part, 0, NULL, NULL, &zero);
    for (int i = 0; i < N * 4; i++)
        assert_true(nz[i] == 0.0f);
    for (int i = 0; i < N * M; i++) {
        const double want = g0[i] * dsilu_d(z[i]);
        assert_close(g[i], want, 1e-7 * (2.0 + fabs(z[i])) * fabs(g0[i]));
        float zp = z[i] + 1e-2f, zm = z[i] - 1e-2f, hp, hm;
        dm_act_silu(1, &zp, &hp);
        dm_act_silu(1, &zm, &hm);
        const double fd = ((double)hp - hm) / ((double)zp - zm);
        assert_close(g[i], g0[i] * fd, 1e-4);
    }
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < M; j++) {
            double sum = 0.0;
            for (int i = c * 64; i < N && i < (c + 1) * 64; i++)
                sum += g[i * M + j];
            assert_close(part[c * M + j], sum, 1e-12);
        }

    /* backward with dL/dh formed from the output layer: dout (N, OD) wo (OD, M) */
    dm_act_silu_bwd(N, M, s, h, g, part, OD, dout, wo, NULL);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            double gh = 0.0, mag = 0.0;
            for (int o = 0; o < OD; o++) {
                gh += (double)dout[i * OD + o] * wo[o * M + j];
                mag += fabs((double)dout[i * OD + o] * wo[o * M + j]);
            }
            const double want = gh * dsilu_d(z[i * M + j]);
            assert_close(g[i * M + j], want, 1e-6 * mag * (1.0 + fabs(z[i * M + j])));
        }
}

/* ---- forward and gradients ----------------------------------------------------------------- */

/* shared_t: every row gets the same t, as in a sampling step (mlp.c then forms layer 0 from one
 * embedding product instead of the full sgemm). */
static void check_forward(dm_mlp_cfg cfg, int n, int shared_t)
{
    fixture f;
    fixture_init(&f, cfg, n, 11);
    for (int i = 0; shared_t && i < n; i++)
        f.t[i] = 731.0f;
    const int nout = n * cfg.out_dim;
    float *out = xmalloc((size_t)nout * sizeof(float));
    double *ref = xmalloc((size_t)nout * sizeof(double));
    double *p = xmalloc(f.m.n_params * sizeof(double));
    double *x = xmalloc((size_t)n * cfg.in_dim * sizeof(double));
    for (size_t i = 0; i < f.m.n_params; i++)
        p[i] = f.params[i];
    for (int i = 0; i < n * cfg.in_dim; i++)
        x[i] = f.x[i];
    dm_mlp_forward(&f.m, f.params, &f.ws, n, f.x, f.t, out);
    ref_forward(&f.m, p, n, x, f.t, ref);
    for (int i = 0; i < nout; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * (1.0 + fabs(ref[i])))
            fail_msg("out[%d] = %.9g, reference %.9g", i, out[i], ref[i]);
    free(out);
    free(ref);
    free(p);
    free(x);
    fixture_free(&f);
}

static void test_forward_naive(void **state)
{
    (void)state;
    for (int shared = 0; shared <= 1; shared++) {
        check_forward((dm_mlp_cfg){.in_dim = 2, .out_dim = 2, .nfreq = 8, .width = 32, .depth = 3}, 37,
                      shared);
        check_forward((dm_mlp_cfg){.in_dim = 3, .out_dim = 6, .nfreq = 5, .width = 17, .depth = 2}, 130,
                      shared);
        check_forward((dm_mlp_cfg){.in_dim = 2, .out_dim = 3, .nfreq = 4, .width = 9, .depth = 0}, 20,
                      shared);
        check_forward(toy_cfg, 300, shared);
        check_forward(toy_cfg, 4100, shared); /* three forward tiles */
    }
}

/* Analytic dparams and dx against central differences: of the double reference (every parameter,
 * h = 1e-6) and of the float forward itself (every 3rd parameter, h = 1e-2, tolerance 1e-2). */
static void check_grads(dm_mlp_cfg cfg, int n, int shared_t)
{
    fixture f;
    fixture_init(&f, cfg, n, 5);
    for (int i = 0; shared_t && i < n; i++)
        f.t[i] = 17.0f;
    const size_t np = f.m.n_params, nx = (size_t)n * cfg.in_dim;
    float *out = xmalloc((size_t)n * cfg.out_dim * sizeof(float));
    float *grads = xmalloc(np * sizeof(float));
    float *dx = xmalloc(nx * sizeof(float));
    double *p = xmalloc(np * sizeof(double));
    double *x = xmalloc(nx * sizeof(double));
    float *pf = xmalloc(np * sizeof(float));
    float *xf = xmalloc(nx * sizeof(float));
    memset(grads, 0xff, np * sizeof(float)); // NaN: every entry must be overwritten
    dm_mlp_forward(&f.m, f.params, &f.ws, n, f.x, f.t, out);
    dm_mlp_backward(&f.m, f.params, &f.ws, n, f.r, grads, dx);
    for (size_t i = 0; i < np; i++)
        p[i] = f.params[i];
    for (size_t i = 0; i < nx; i++)
        x[i] = f.x[i];
    memcpy(pf, f.params, np * sizeof(float));
    memcpy(xf, f.x, nx * sizeof(float));

    const double hd = 1e-6;
    for (size_t i = 0; i < np; i++) {
        const double p0 = p[i];
        p[i] = p0 + hd;
        const double lp = ref_loss(&f, p, x);
        p[i] = p0 - hd;
        const double lm = ref_loss(&f, p, x);
        p[i] = p0;
        const double fd = (lp - lm) / (2 * hd);
        if (!(fabs(grads[i] - fd) <= 2e-5 + 1e-4 * fabs(fd)))
            fail_msg("dparam[%zu] = %.9g, double central difference %.9g", i, grads[i], fd);
        if (i % 3 == 0) {
            const float q0 = pf[i];
            pf[i] = q0 + 1e-2f;
            const double fp = float_loss(&f, pf, f.x);
            const double hp = (double)pf[i] - q0;
            pf[i] = q0 - 1e-2f;
            const double fm = float_loss(&f, pf, f.x);
            const double hm = q0 - (double)pf[i];
            pf[i] = q0;
            const double ffd = (fp - fm) / (hp + hm);
            if (!(fabs(grads[i] - ffd) <= 1e-3 + 1e-2 * fabs(ffd)))
                fail_msg("dparam[%zu] = %.9g, float central difference %.9g", i, grads[i], ffd);
        }
    }
    for (size_t i = 0; i < nx; i++) {
        const double x0 = x[i];
        x[i] = x0 + hd;
        const double lp = ref_loss(&f, p, x);
        x[i] = x0 - hd;
        const double lm = ref_loss(&f, p, x);
        x[i] = x0;
        const double fd = (lp - lm) / (2 * hd);
        if (!(fabs(dx[i] - fd) <= 2e-5 + 1e-4 * fabs(fd)))
            fail_msg("dx[%zu] = %.9g, double central difference %.9g", i, dx[i], fd);
        const float q0 = xf[i];
        xf[i] = q0 + 1e-2f;
        const double fp = float_loss(&f, f.params, xf);
        xf[i] = q0 - 1e-2f;
        const double fm = float_loss(&f, f.params, xf);
        xf[i] = q0;
        const double ffd = (fp - fm) / 2e-2;
        if (!(fabs(dx[i] - ffd) <= 1e-3 + 1e-2 * fabs(ffd)))
            fail_msg("dx[%zu] = %.9g, float central difference %.9g", i, dx[i], ffd);
    }
    /* dx == NULL skips the input gradient and leaves the parameter gradients unchanged. */
    float *g2 = xmalloc(np * sizeof(float));
    dm_mlp_forward(&f.m, f.params, &f.ws, n, f.x, f.t, out); // the checks above ran other batches
    dm_mlp_backward(&f.m, f.params, &f.ws, n, f.r, g2, NULL);
    assert_memory_equal(g2, grads, np * sizeof(float));
    free(g2);
    free(out);
    free(grads);
    free(dx);
    free(p);
    free(x);
    free(pf);
    free(xf);
    fixture_free(&f);
}

/* depth 0: the network is one Linear layer on [x, embedding]. */
static void test_linear_grad(void **state)
{
    (void)state;
    check_grads((dm_mlp_cfg){.in_dim = 2, .out_dim = 3, .nfreq = 4, .width = 8, .depth = 0}, 5, 0);
    check_grads((dm_mlp_cfg){.in_dim = 2, .out_dim = 3, .nfreq = 4, .width = 8, .depth = 0}, 5, 1);
}

static void test_mlp_grad(void **state)
{
    (void)state;
    check_grads((dm_mlp_cfg){.in_dim = 2, .out_dim = 2, .nfreq = 4, .width = 8, .depth = 2}, 5, 0);
    /* one t for the batch (layer 0 from the shared embedding) */
    check_grads((dm_mlp_cfg){.in_dim = 2, .out_dim = 2, .nfreq = 4, .width = 8, .depth = 2}, 5, 1);
    /* more rows than one bias-gradient chunk, odd sizes */
    check_grads((dm_mlp_cfg){.in_dim = 3, .out_dim = 3, .nfreq = 3, .width = 7, .depth = 3}, 70, 0);
}

/* ---- determinism across thread counts ------------------------------------------------------ */

typedef struct run_out {
    float *out, *grads, *dx, *params;
} run_out;

/* Two training steps (forward, backward, Adam) then a forward, on `threads` threads. */
static void run_steps(const dm_mlp_cfg *cfg, int n, int shared_t, int threads, run_out *r)
{
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    fixture f;
    fixture_init(&f, *cfg, n, 3);
    for (int i = 0; shared_t && i < n; i++)
        f.t[i] = 250.0f;
    char err[DM_ERR_SIZE];
    dm_adam adam;
    assert_int_equal(dm_adam_init(&adam, f.m.n_params, 1e-3, 0.9, 0.999, 1e-8, 0.0, err), DM_OK);
    r->out = xmalloc((size_t)n * cfg->out_dim * sizeof(float));
    r->grads = xmalloc(f.m.n_params * sizeof(float));
    r->dx = xmalloc((size_t)n * cfg->in_dim * sizeof(float));
    for (int step = 0; step < 2; step++) {
        dm_mlp_forward(&f.m, f.params, &f.ws, n, f.x, f.t, r->out);
        dm_mlp_backward(&f.m, f.params, &f.ws, n, f.r, r->grads, r->dx);
        dm_adam_step(&adam, f.params, r->grads, 1e-3);
    }
    dm_mlp_forward(&f.m, f.params, &f.ws, n, f.x, f.t, r->out);
    r->params = xmalloc(f.m.n_params * sizeof(float));
    memcpy(r->params, f.params, f.m.n_params * sizeof(float));
    dm_adam_free(&adam);
    fixture_free(&f);
}

static void run_free(run_out *r)
{
    free(r->out);
    free(r->grads);
    free(r->dx);
    free(r->params);
}

static void check_threads(const dm_mlp_cfg *cfg, int n, int shared_t)
{
    dm_mlp m;
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_mlp_init(&m, cfg, err), DM_OK);
    run_out a, b;
    run_steps(cfg, n, shared_t, 1, &a);
    run_steps(cfg, n, shared_t, 2, &b);
    assert_memory_equal(a.out, b.out, (size_t)n * cfg->out_dim * sizeof(float));
    assert_memory_equal(a.grads, b.grads, m.n_params * sizeof(float));
    assert_memory_equal(a.dx, b.dx, (size_t)n * cfg->in_dim * sizeof(float));
    assert_memory_equal(a.params, b.params, m.n_params * sizeof(float));
    run_free(&a);
    run_free(&b);
    dm_mlp_free(&m);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    const int saved = omp_get_max_threads();
    check_threads(&toy_cfg, 1024, 0);
    check_threads(&toy_cfg, 333, 0);
    check_threads(&toy_cfg, 4500, 0); /* more than one forward tile */
    check_threads(&toy_cfg, 4500, 1); /* one t for the batch, as when sampling */
    /* inner dimensions of more than one K chunk, not multiples of 32 */
    check_threads(&(dm_mlp_cfg){.in_dim = 2, .out_dim = 3, .nfreq = 150, .width = 300, .depth = 2}, 2500, 0);
    check_threads(&(dm_mlp_cfg){.in_dim = 3, .out_dim = 5, .nfreq = 7, .width = 45, .depth = 2}, 200, 0);
    openblas_set_num_threads(saved);
    omp_set_num_threads(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_init),  cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_time_embed_exact), cmocka_unit_test(test_silu),
        cmocka_unit_test(test_forward_naive),    cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_mlp_grad),         cmocka_unit_test(test_threads_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
