/* The exact divergences (analytic mixture: closed form; network: one backward pass per input
 * dimension) and Hutchinson's quadratic forms zᵀ (∂x0_hat/∂x) z (one backward) against central
 * differences and each other, and the PF-ODE log-likelihood (eval/nll.h) against the exact
 * log-density of a 2-D Gaussian mixture on the VP, sub-VP, VE and EDM schedules (exact
 * divergence) and of a 4-D one on VP (Hutchinson), against the closed form of a network whose
 * output is zero, and its errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/denoiser_net.h"
#include "diffusion/params.h"
#include "diffusion/schedules.h"
#include "eval/nll.h"
#include "nn/net_mlp.h"

#ifdef __SANITIZE_ADDRESS__
#define N_NLL 200
#else
#define N_NLL 400
#endif

/* ---- fixtures ------------------------------------------------------------------------------ */

/* The schedules' defaults (their option tables), and the discrete DDPM for the error test. */
static const dm_vp_schedule_opts vp_o = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };
static const dm_ve_schedule_opts ve_o = { .sigma_min = 0.01, .sigma_max = 50, .eps = 1e-5, .t_end = 1e-5 };
static const dm_edm_schedule_opts edm_o = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7,
                                            .p_mean = -1.2, .p_std = 1.2 };
static const dm_ddpm_linear_opts ddpm_o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };

enum { S_VP, S_SUBVP, S_VE, S_EDM, S_DDPM };

static void sched_init(dm_schedule *s, int kind)
{
    char err[DM_ERR_SIZE];
    const dm_schedule_ops *ops[] = { &dm_schedule_vp, &dm_schedule_subvp, &dm_schedule_ve, &dm_schedule_edm,
                                     &dm_schedule_ddpm_linear };
    const void *opts[] = { &vp_o, &vp_o, &ve_o, &edm_o, &ddpm_o };
    assert_int_equal(dm_schedule_init(s, ops[kind], opts[kind], err), DM_OK);
}

/* Five isotropic components in 2-D, unequal weights, stds 0.2-0.5. */
typedef struct mixture {
    dm_gmm g;
    double w[5], mu[10], s[5];
} mixture;

static void mixture_init(mixture *m)
{
    static const double w[5] = { 0.3, 0.25, 0.2, 0.15, 0.1 };
    static const double mu[10] = { -2.0, 0.0, 1.5, 1.0, 0.5, -1.5, 2.5, -1.0, -0.5, 2.0 };
    static const double s[5] = { 0.2, 0.3, 0.5, 0.25, 0.4 };
    memcpy(m->w, w, sizeof w);
    memcpy(m->mu, mu, sizeof mu);
    memcpy(m->s, s, sizeof s);
    m->g = (dm_gmm){ .k = 5, .dim = 2, .w = m->w, .mu = m->mu, .s = m->s };
}

/* Four isotropic components in 4-D, unequal weights, stds 0.25-0.5, partly overlapping (so the
 * responsibilities switch and the denoiser's Jacobian has off-diagonal terms). */
typedef struct mixture4 {
    dm_gmm g;
    double w[4], mu[16], s[4];
} mixture4;

static void mixture4_init(mixture4 *m)
{
    static const double w[4] = { 0.35, 0.3, 0.2, 0.15 };
    static const double mu[16] = { -2.0, 0.0, 1.0, 0.5,  1.5, 1.0, -0.5, -1.0,
                                   0.5, -1.5, 2.0, 0.0,  2.0, -1.0, -1.0, 1.5 };
    static const double s[4] = { 0.3, 0.5, 0.25, 0.4 };
    memcpy(m->w, w, sizeof w);
    memcpy(m->mu, mu, sizeof mu);
    memcpy(m->s, s, sizeof s);
    m->g = (dm_gmm){ .k = 4, .dim = 4, .w = m->w, .mu = m->mu, .s = m->s };
}

/* n exact samples of a mixture (n, g->dim). */
static void gmm_draw(const dm_gmm *g, dm_rng *rng, size_t n, float *x)
{
    const size_t d = g->dim;
    for (size_t i = 0; i < n; i++) {
        const double u = dm_rng_uniform(rng);
        size_t c = 0;
        for (double acc = g->w[0]; c + 1 < g->k && u >= acc; acc += g->w[++c])
            ;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(g->mu[c * d + j] + g->s[c] * dm_rng_normal(rng));
    }
}

static void mixture_draw(const mixture *m, dm_rng *rng, size_t n, float *x)
{
    gmm_draw(&m->g, rng, n, x);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- (1) the analytic mixture's divergence ------------------------------------------------ */

/* E[x0 | x_t = x] in double, from the posterior (at most 8 components in 8 dimensions). */
static void gmm_mean(const dm_gmm *g, double a, double s, const double *x, double *out)
{
    double r[8], m[64], v[8];
    const size_t d = g->dim;
    dm_gmm_posterior(g, a, s, x, r, m, v);
    for (size_t j = 0; j < d; j++) {
        out[j] = 0.0;
        for (size_t k = 0; k < g->k; k++)
            out[j] += r[k] * m[k * d + j];
    }
}

static void test_gmm_div(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture mx;
    mixture_init(&mx);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    enum { N = 64 };
    float x[N * 2], xp[N * 2], xm[N * 2], x0[N * 2], x0p[N * 2], x0m[N * 2], x0e[N * 2];
    double t[N], div[N];
    double worst_d = 0.0, worst_f = 0.0;
    for (int kind = S_VP; kind <= S_EDM; kind++) {
        dm_schedule s;
        sched_init(&s, kind);
        dm_gmm_denoiser gd;
        dm_denoiser den;
        dm_gmm_denoiser_init(&gd, &den, &mx.g, &s, N);
        assert_non_null(den.eval_div);
        /* Rows at different times, from t_min to t_max (on a log scale), at points of p_t and
         * between components (where the responsibilities switch). */
        for (size_t i = 0; i < N; i++) {
            const double u = (double)i / (N - 1);
            t[i] = s.t_min * pow(s.t_max / s.t_min, u);
            const double a = s.ops->alpha(&s, t[i]), sg = s.ops->sigma(&s, t[i]);
            float p[2];
            mixture_draw(&mx, &rng, 1, p);
            for (size_t j = 0; j < 2; j++)
                x[i * 2 + j] = (float)(a * p[j] + sg * dm_rng_normal(&rng) + (i % 4 == 0 ? 0.7 : 0.0));
        }
        assert_int_equal(den.eval_div(den.ctx, N, x, t, x0, div, err), DM_OK);
        assert_int_equal(den.eval(den.ctx, N, x, t, NULL, x0e, NULL, err), DM_OK);
        for (size_t q = 0; q < N * 2; q++)
            assert_float_equal(x0[q], x0e[q], 1e-6 * (1.0 + fabs(x0e[q])));
        /* In double: central differences of the posterior mean, step ~1e-4 of the noise scale. */
        for (size_t i = 0; i < N; i++) {
            const double a = s.ops->alpha(&s, t[i]), sg = s.ops->sigma(&s, t[i]);
            const double h = 1e-4 * sqrt(a * a * 0.04 + sg * sg);
            double fd = 0.0;
            for (size_t j = 0; j < 2; j++) {
                double y[2] = { x[i * 2], x[i * 2 + 1] }, dp[2], dm[2];
                y[j] += h;
                gmm_mean(&mx.g, a, sg, y, dp);
                y[j] -= 2 * h;
                gmm_mean(&mx.g, a, sg, y, dm);
                fd += (dp[j] - dm[j]) / (2 * h);
            }
            const double e = fabs(fd - div[i]) / (1.0 + fabs(fd));
            worst_d = fmax(worst_d, e);
            assert_true(e < 1e-5);
        }
        /* Through eval itself (float outputs): the step must dwarf the float rounding of x0_hat.
         * Rows do not interact, so one batch moves coordinate j of every row at once. */
        double fdf[N] = { 0 };
        for (size_t j = 0; j < 2; j++) {
            memcpy(xp, x, sizeof x);
            memcpy(xm, x, sizeof x);
            for (size_t i = 0; i < N; i++) {
                const double a = s.ops->alpha(&s, t[i]), sg = s.ops->sigma(&s, t[i]);
                const float h = (float)(1e-2 * sqrt(a * a * 0.04 + sg * sg));
                xp[i * 2 + j] += h;
                xm[i * 2 + j] -= h;
            }
            assert_int_equal(den.eval(den.ctx, N, xp, t, NULL, x0p, NULL, err), DM_OK);
            assert_int_equal(den.eval(den.ctx, N, xm, t, NULL, x0m, NULL, err), DM_OK);
            for (size_t i = 0; i < N; i++)
                fdf[i] += ((double)x0p[i * 2 + j] - x0m[i * 2 + j]) / ((double)xp[i * 2 + j] - xm[i * 2 + j]);
        }
        for (size_t i = 0; i < N; i++) {
            const double e = fabs(fdf[i] - div[i]) / (1.0 + fabs(fdf[i]));
            worst_f = fmax(worst_f, e);
            assert_true(e < 2e-3);
        }
        dm_schedule_free(&s);
    }
    printf("gmm div: worst relative error vs double FD %.2e, vs float eval FD %.2e\n", worst_d, worst_f);
    dm_rng_free(&rng);
}

/* ---- (2) the network's divergence --------------------------------------------------------- */

typedef struct net_case {
    int sched;
    const dm_param_ops *param;
    const void *param_opts;
    int out_dim;
} net_case;

static void check_net_div(const net_case *nc, double *worst)
{
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, nc->sched);
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, 2, nc->out_dim, 0, 32, 2, 4, err), DM_OK);
    float *params = malloc(sizeof(float) * mlp.n_params);
    assert_non_null(params);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 5, err), DM_OK);
    dm_net_init_params(&mlp, params, &rng);
    enum { N = 48 };
    dm_net_denoiser nd;
    dm_denoiser den;
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &mlp, params, &s, nc->param, nc->param_opts, 0.5, N, err),
                     DM_OK);
    assert_non_null(den.eval_div);
    float x[N * 2], xp[N * 2], xm[N * 2], x0[N * 2], x0e[N * 2], x0p[N * 2], x0m[N * 2];
    double t[N], div[N], fd[N];
    /* The first half of the rows at one time (the MLP's shared-t path), the rest at different times. */
    for (size_t i = 0; i < N; i++) {
        const double u = i < N / 2 ? 0.5 : (double)(i - N / 2) / (N / 2 - 1);
        t[i] = s.t_min * pow(s.t_max / s.t_min, 0.3 + 0.6 * u); /* away from t_min: float FD */
        for (size_t j = 0; j < 2; j++)
            x[i * 2 + j] = (float)(2.0 * dm_rng_normal(&rng));
    }
    assert_int_equal(den.eval_div(den.ctx, N, x, t, x0, div, err), DM_OK);
    assert_int_equal(den.eval(den.ctx, N, x, t, NULL, x0e, NULL, err), DM_OK);
    for (size_t q = 0; q < N * 2; q++)
        assert_true(x0[q] == x0e[q]); /* the same forward, the same arithmetic */
    for (size_t i = 0; i < N; i++)
        fd[i] = 0.0;
    const float h = 1.0f / 64;
    for (size_t j = 0; j < 2; j++) {
        memcpy(xp, x, sizeof x);
        memcpy(xm, x, sizeof x);
        for (size_t i = 0; i < N; i++) {
            xp[i * 2 + j] += h;
            xm[i * 2 + j] -= h;
        }
        assert_int_equal(den.eval(den.ctx, N, xp, t, NULL, x0p, NULL, err), DM_OK);
        assert_int_equal(den.eval(den.ctx, N, xm, t, NULL, x0m, NULL, err), DM_OK);
        for (size_t i = 0; i < N; i++)
            fd[i] += ((double)x0p[i * 2 + j] - x0m[i * 2 + j]) / ((double)xp[i * 2 + j] - xm[i * 2 + j]);
    }
    for (size_t i = 0; i < N; i++) {
        const double e = fabs(fd[i] - div[i]) / (1.0 + fabs(fd[i]));
        *worst = fmax(*worst, e);
        assert_true(e < 1e-3);
    }
    /* div alone, x0 not wanted */
    double div2[N];
    assert_int_equal(den.eval_div(den.ctx, N, x, t, NULL, div2, err), DM_OK);
    for (size_t i = 0; i < N; i++)
        assert_true(div2[i] == div[i]);
    dm_net_denoiser_free(&nd);
    dm_rng_free(&rng);
    free(params);
    dm_net_free(&mlp);
    dm_schedule_free(&s);
}

static void test_net_div(void **state)
{
    (void)state;
    static const dm_param_edm_opts edm_p = { .sigma_data = 0.5 };
    const net_case cases[] = {
        { S_VP, &dm_param_eps, NULL, 2 },
        { S_VP, &dm_param_v, NULL, 2 },
        { S_VP, &dm_param_eps, NULL, 4 }, /* a learned-variance output: F's stride is 4 */
        { S_EDM, &dm_param_edm, &edm_p, 2 }, /* c_in != 1 */
        { S_VE, &dm_param_x0, NULL, 2 },
    };
    double worst = 0.0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_net_div(&cases[c], &worst);
    printf("net div: worst relative error vs float eval FD %.2e\n", worst);
}

/* ---- (2b) Hutchinson's quadratic form zᵀ (∂x0_hat/∂x) z (eval_hutch) ------------------------ */

/* The 2^d Rademacher probes of dimension d: pattern p has z_j = -1 where bit j of p is set.
 * Averaged over all of them, zᵀJz = sum_jl J_jl z_j z_l gives tr J exactly: for j != l, z_j z_l
 * is +1 on half the patterns and -1 on the other half. */
static void sign_pattern(size_t p, size_t d, float *z)
{
    for (size_t j = 0; j < d; j++)
        z[j] = (p >> j) & 1 ? -1.0f : 1.0f;
}

/* Probe number q of a row: the first three Rademacher, the others Gaussian (eval_hutch holds for
 * any z; a Gaussian one has |z|^2 != d). */
static void draw_probe(dm_rng *rng, size_t q, size_t d, float *z)
{
    for (size_t j = 0; j < d; j++)
        z[j] = q < 3 ? (dm_rng_int(rng, 2) ? 1.0f : -1.0f) : (float)dm_rng_normal(rng);
}

enum { HD = 4, NPAT = 16 }; /* the dimension of the Hutchinson tests and its 2^HD sign patterns */

static void test_gmm_hutch(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture4 mx;
    mixture4_init(&mx);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 17, err), DM_OK);
    enum { N = 32, P = 5 };
    float x[N * HD], z[N * HD], x0[N * HD], x0e[N * HD], xr[N * NPAT * HD], zr[N * NPAT * HD];
    double t[N], tr[N * NPAT], q[N], div[N], qr[N * NPAT];
    double worst_fd = 0.0, worst_tr = 0.0;
    for (int kind = S_VP; kind <= S_EDM; kind++) {
        dm_schedule s;
        sched_init(&s, kind);
        dm_gmm_denoiser gd;
        dm_denoiser den;
        dm_gmm_denoiser_init(&gd, &den, &mx.g, &s, N * NPAT);
        assert_non_null(den.eval_hutch);
        /* As test_gmm_div: times from t_min to t_max, points of p_t, some shifted off them. */
        for (size_t i = 0; i < N; i++) {
            const double u = (double)i / (N - 1);
            t[i] = s.t_min * pow(s.t_max / s.t_min, u);
            const double a = s.ops->alpha(&s, t[i]), sg = s.ops->sigma(&s, t[i]);
            float p[HD];
            gmm_draw(&mx.g, &rng, 1, p);
            for (size_t j = 0; j < HD; j++)
                x[i * HD + j] = (float)(a * p[j] + sg * dm_rng_normal(&rng) + (i % 4 == 0 ? 0.7 : 0.0));
        }
        assert_int_equal(den.eval(den.ctx, N, x, t, NULL, x0e, NULL, err), DM_OK);
        /* (a) against central differences of the double posterior mean along z:
         * zᵀ J z = d/dh zᵀ D(x + h z) at h = 0. */
        for (size_t pr = 0; pr < P; pr++) {
            for (size_t i = 0; i < N; i++)
                draw_probe(&rng, pr, HD, z + i * HD);
            assert_int_equal(den.eval_hutch(den.ctx, N, x, t, z, x0, q, err), DM_OK);
            for (size_t k = 0; k < N * HD; k++)
                assert_float_equal(x0[k], x0e[k], 1e-6 * (1.0 + fabs(x0e[k])));
            for (size_t i = 0; i < N; i++) {
                const double a = s.ops->alpha(&s, t[i]), sg = s.ops->sigma(&s, t[i]);
                const double h = 1e-4 * sqrt(a * a * 0.0625 + sg * sg);
                double yp[HD], ym[HD], dp[HD], dm[HD], fd = 0.0;
                for (size_t j = 0; j < HD; j++) {
                    yp[j] = x[i * HD + j] + h * z[i * HD + j];
                    ym[j] = x[i * HD + j] - h * z[i * HD + j];
                }
                gmm_mean(&mx.g, a, sg, yp, dp);
                gmm_mean(&mx.g, a, sg, ym, dm);
                for (size_t j = 0; j < HD; j++)
                    fd += z[i * HD + j] * (dp[j] - dm[j]) / (2 * h);
                const double e = fabs(fd - q[i]) / (1.0 + fabs(fd));
                worst_fd = fmax(worst_fd, e);
                assert_true(e < 1e-5);
            }
        }
        /* (b) the mean over all 2^d sign patterns is the exact divergence, row by row. */
        for (size_t i = 0; i < N; i++)
            for (size_t p = 0; p < NPAT; p++) {
                memcpy(xr + (i * NPAT + p) * HD, x + i * HD, sizeof(float) * HD);
                sign_pattern(p, HD, zr + (i * NPAT + p) * HD);
                tr[i * NPAT + p] = t[i];
            }
        assert_int_equal(den.eval_hutch(den.ctx, N * NPAT, xr, tr, zr, NULL, qr, err), DM_OK);
        assert_int_equal(den.eval_div(den.ctx, N, x, t, NULL, div, err), DM_OK);
        for (size_t i = 0; i < N; i++) {
            double mean = 0.0;
            for (size_t p = 0; p < NPAT; p++)
                mean += qr[i * NPAT + p];
            mean /= NPAT;
            const double e = fabs(mean - div[i]) / (1.0 + fabs(div[i]));
            worst_tr = fmax(worst_tr, e);
            assert_true(e < 1e-10);
        }
        dm_schedule_free(&s);
    }
    printf("gmm hutch (d = %d): worst relative error of zᵀJz vs double FD %.2e; of the mean over the %d "
           "sign patterns vs eval_div %.2e\n", HD, worst_fd, NPAT, worst_tr);
    dm_rng_free(&rng);
}

static void check_net_hutch(const net_case *nc, double *worst_fd, double *worst_tr)
{
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, nc->sched);
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, HD, nc->out_dim, 0, 32, 2, 4, err), DM_OK);
    float *params = malloc(sizeof(float) * mlp.n_params);
    assert_non_null(params);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 6, err), DM_OK);
    dm_net_init_params(&mlp, params, &rng);
    enum { N = 8, P = 5 };
    dm_net_denoiser nd;
    dm_denoiser den;
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &mlp, params, &s, nc->param, nc->param_opts, 0.5, N * NPAT,
                                          err), DM_OK);
    assert_non_null(den.eval_hutch);
    float x[N * HD], z[N * HD], xp[N * HD], xm[N * HD], x0[N * HD], x0e[N * HD], x0p[N * HD], x0m[N * HD];
    float xr[N * NPAT * HD], zr[N * NPAT * HD];
    double t[N], tr[N * NPAT], q[N], div[N], qr[N * NPAT];
    for (size_t i = 0; i < N; i++) {
        const double u = i < N / 2 ? 0.5 : (double)(i - N / 2) / (N / 2 - 1);
        t[i] = s.t_min * pow(s.t_max / s.t_min, 0.3 + 0.6 * u);
        for (size_t j = 0; j < HD; j++)
            x[i * HD + j] = (float)(2.0 * dm_rng_normal(&rng));
    }
    assert_int_equal(den.eval(den.ctx, N, x, t, NULL, x0e, NULL, err), DM_OK);
    /* (a) against central differences of the float eval along z (step 1/64, as check_net_div). */
    const float h = 1.0f / 64;
    for (size_t pr = 0; pr < P; pr++) {
        for (size_t i = 0; i < N; i++)
            draw_probe(&rng, pr, HD, z + i * HD);
        assert_int_equal(den.eval_hutch(den.ctx, N, x, t, z, x0, q, err), DM_OK);
        for (size_t k = 0; k < N * HD; k++) {
            assert_true(x0[k] == x0e[k]); /* the same forward, the same arithmetic */
            xp[k] = x[k] + h * z[k];
            xm[k] = x[k] - h * z[k];
        }
        assert_int_equal(den.eval(den.ctx, N, xp, t, NULL, x0p, NULL, err), DM_OK);
        assert_int_equal(den.eval(den.ctx, N, xm, t, NULL, x0m, NULL, err), DM_OK);
        for (size_t i = 0; i < N; i++) {
            double fd = 0.0;
            for (size_t j = 0; j < HD; j++)
                fd += z[i * HD + j] * ((double)x0p[i * HD + j] - x0m[i * HD + j]) / (2.0 * h);
            const double e = fabs(fd - q[i]) / (1.0 + fabs(fd));
            *worst_fd = fmax(*worst_fd, e);
            assert_true(e < 1e-3);
        }
    }
    /* (b) the mean over all 2^d sign patterns against eval_div (after eval_hutch left its probe
     * in the shared cotangent scratch). */
    for (size_t i = 0; i < N; i++)
        for (size_t p = 0; p < NPAT; p++) {
            memcpy(xr + (i * NPAT + p) * HD, x + i * HD, sizeof(float) * HD);
            sign_pattern(p, HD, zr + (i * NPAT + p) * HD);
            tr[i * NPAT + p] = t[i];
        }
    assert_int_equal(den.eval_hutch(den.ctx, N * NPAT, xr, tr, zr, NULL, qr, err), DM_OK);
    assert_int_equal(den.eval_div(den.ctx, N, x, t, NULL, div, err), DM_OK);
    for (size_t i = 0; i < N; i++) {
        double mean = 0.0;
        for (size_t p = 0; p < NPAT; p++)
            mean += qr[i * NPAT + p];
        mean /= NPAT;
        const double e = fabs(mean - div[i]) / (1.0 + fabs(div[i]));
        *worst_tr = fmax(*worst_tr, e);
        assert_true(e < 1e-5);
    }
    dm_net_denoiser_free(&nd);
    dm_rng_free(&rng);
    free(params);
    dm_net_free(&mlp);
    dm_schedule_free(&s);
}

static void test_net_hutch(void **state)
{
    (void)state;
    static const dm_param_edm_opts edm_p = { .sigma_data = 0.5 };
    const net_case cases[] = {
        { S_VP, &dm_param_eps, NULL, HD },
        { S_VP, &dm_param_v, NULL, HD },
        { S_VP, &dm_param_eps, NULL, 2 * HD }, /* learned variance: F's stride is 2 d */
        { S_EDM, &dm_param_edm, &edm_p, HD },  /* c_in != 1 */
        { S_VE, &dm_param_x0, NULL, HD },
    };
    double worst_fd = 0.0, worst_tr = 0.0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_net_hutch(&cases[c], &worst_fd, &worst_tr);
    printf("net hutch (d = %d): worst relative error of zᵀJz vs float eval FD %.2e; of the mean over the %d "
           "sign patterns vs eval_div %.2e\n", HD, worst_fd, NPAT, worst_tr);
}

/* ---- (3) PF-ODE log-likelihood of the mixture --------------------------------------------- */

static void check_gmm_nll(int kind, const char *name, size_t n, double tol)
{
    char err[DM_ERR_SIZE];
    mixture mx;
    mixture_init(&mx);
    dm_schedule s;
    sched_init(&s, kind);
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, &mx.g, &s, 1024);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 2024, err), DM_OK);
    float *x = malloc(sizeof(float) * n * 2);
    double *logp = malloc(sizeof(double) * n), *delta = malloc(sizeof(double) * n);
    double *z = malloc(sizeof(double) * n * 2);
    assert_true(x && logp && delta && z);
    mixture_draw(&mx, &rng, n, x);
    int64_t nfe = 0, nfe2 = 0;
    const double t0 = now();
    assert_int_equal(dm_nll_pfode(&den, &s, x, n, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_OK);
    const double dt = now() - t0;
    /* Against log p_0 (alpha = 1, sigma = 0) of the mixture; the exact-marginal variant replaces
     * the N(0, prior_std^2) prior by the mixture's own p_T, removing the prior's approximation. */
    assert_int_equal(dm_nll_pfode_flow(&den, &s, x, n, 1e-5, 1e-5, 1e-5, 0, z, delta, &nfe2, err), DM_OK);
    assert_int_equal(nfe, nfe2);
    const double aT = s.ops->alpha(&s, s.t_max), sT = s.ops->sigma(&s, s.t_max);
    const double ae = s.ops->alpha(&s, 1e-5), se = s.ops->sigma(&s, 1e-5);
    double err_prior = 0.0, err_exact = 0.0, err_eps = 0.0, bias = 0.0, mean_logp = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double xi[2] = { x[i * 2], x[i * 2 + 1] };
        const double ref = dm_gmm_log_density(&mx.g, 1.0, 0.0, xi);
        const double exact = dm_gmm_log_density(&mx.g, aT, sT, z + i * 2) + delta[i];
        assert_true(fabs(logp[i] - (dm_nll_prior_logp(&s, z + i * 2, 2) + delta[i])) < 1e-12 * (1 + fabs(logp[i])));
        err_prior += fabs(logp[i] - ref);
        err_exact += fabs(exact - ref);
        err_eps += fabs(exact - dm_gmm_log_density(&mx.g, ae, se, xi));
        bias += logp[i] - ref;
        mean_logp += ref;
    }
    err_prior /= (double)n;
    err_exact /= (double)n;
    err_eps /= (double)n;
    bias /= (double)n;
    mean_logp /= (double)n;
    printf("nll %-6s n=%zu: mean |err| %.2e nats (prior N(0, %g^2)), %.2e (exact p_T), %.2e (exact p_T "
           "vs log p_eps); bias %+.2e; mean log p %.4f; nfe %lld; %.3f s\n",
           name, n, err_prior, s.prior_std, err_exact, err_eps, bias, mean_logp, (long long)nfe, dt);
    assert_true(err_prior < tol);
    assert_true(err_exact < tol);
    /* The solver alone, against the density it computes (p_eps: VE's sigma_min = 0.01 blurs). */
    assert_true(err_eps < 2e-4);
    assert_true(nfe > 0);
    free(x);
    free(logp);
    free(delta);
    free(z);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

static void test_gmm_nll_vp(void **state)
{
    (void)state;
    check_gmm_nll(S_VP, "vp", N_NLL, 0.02);
}

static void test_gmm_nll_others(void **state)
{
    (void)state;
    check_gmm_nll(S_SUBVP, "subvp", N_NLL, 0.02);
    check_gmm_nll(S_VE, "ve", N_NLL, 0.02);
    check_gmm_nll(S_EDM, "edm", N_NLL, 0.02);
}

/* ---- (3b) Hutchinson's estimate in 4-D ---------------------------------------------------- */

/* A wrapper whose eval_hutch ignores the probe it is handed and uses sign pattern `pattern` in
 * every row: the flow with each of the 2^d patterns in turn. */
typedef struct fixed_probe {
    const dm_denoiser *inner;
    size_t pattern;
    float *zbuf; /* (max_batch, dim) */
} fixed_probe;

static dm_status fixed_probe_hutch(void *ctx, size_t n, const float *x, const double *t, const float *z,
                                   float *x0, double *zjz, char *err)
{
    fixed_probe *f = ctx;
    const size_t d = f->inner->dim;
    (void)z;
    for (size_t i = 0; i < n; i++)
        sign_pattern(f->pattern, d, f->zbuf + i * d);
    return f->inner->eval_hutch(f->inner->ctx, n, x, t, f->zbuf, x0, zjz, err);
}

/* The trajectory does not depend on the probe, so delta_i = z_iᵀ A_i z_i (A_i the integral of
 * ∂v/∂x along it) up to the solver's tolerance, and its mean over the 2^d sign patterns is the
 * exact tr A_i: the Hutchinson flow averaged over all patterns must reproduce the exact
 * log-density to the solver's accuracy, point by point — a sharp check of the whole path (a wrong
 * sign or factor on zᵀJz or |z|^2 would show at full size). Against the mixture's own p_T, as in
 * check_gmm_nll, so the N(0, I) prior's approximation does not enter. */
static void test_hutch_nll_patterns(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture4 mx;
    mixture4_init(&mx);
    dm_schedule s;
    sched_init(&s, S_VP);
    enum { N = 48 };
    dm_gmm_denoiser gd;
    dm_denoiser inner;
    dm_gmm_denoiser_init(&gd, &inner, &mx.g, &s, N);
    float x[N * HD], zbuf[N * HD];
    double z[N * HD], delta[N], avg[N] = { 0 }, single[N];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 31, err), DM_OK);
    gmm_draw(&mx.g, &rng, N, x);
    fixed_probe fp = { .inner = &inner, .zbuf = zbuf };
    dm_denoiser den = inner;
    den.ctx = &fp;
    den.eval_hutch = fixed_probe_hutch;
    den.eval_div = NULL; /* d = 4: only eval_hutch is needed */
    const double aT = s.ops->alpha(&s, s.t_max), sT = s.ops->sigma(&s, s.t_max);
    double spread = 0.0;
    for (size_t p = 0; p < NPAT; p++) {
        fp.pattern = p;
        assert_int_equal(dm_nll_pfode_flow(&den, &s, x, N, 1e-5, 1e-5, 1e-5, 0, z, delta, NULL, err), DM_OK);
        for (size_t i = 0; i < N; i++) {
            const double xi[HD] = { x[i * HD], x[i * HD + 1], x[i * HD + 2], x[i * HD + 3] };
            single[i] = dm_gmm_log_density(&mx.g, aT, sT, z + i * HD) + delta[i]
                        - dm_gmm_log_density(&mx.g, 1.0, 0.0, xi);
            avg[i] += single[i] / NPAT;
            spread += single[i] * single[i];
        }
    }
    double worst = 0.0, mean_abs = 0.0;
    for (size_t i = 0; i < N; i++) {
        worst = fmax(worst, fabs(avg[i]));
        mean_abs += fabs(avg[i]) / N;
    }
    printf("hutch nll d=%d, mean over the %d sign patterns vs exact log p_0: worst |err| %.2e, mean %.2e nats; "
           "rms error of one pattern %.3f nats\n", HD, NPAT, worst, mean_abs, sqrt(spread / (N * NPAT)));
    assert_true(worst < 1e-3);
    assert_true(mean_abs < 1e-4);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* With one Rademacher probe per point the per-point error has a std of about 1.4 nats on this
 * mixture (measured: mean |err| 0.80, std 1.40 at n = 400), so the mean of 400 points has a
 * standard error of 0.07 nats; measured mean errors -0.098 and -0.049 for two seeds. The tolerance
 * is 5 standard errors. Deliberate bugs measured against it: zᵀJz scaled by 0.9 gives +2.4 nats,
 * the d term by 0.9 -4.9, zᵀJz's sign flipped +50, the d term dropped -48. */
#define N_HUTCH 400
#define HUTCH_TOL 0.35

/* The estimator as used: random Rademacher probes, one per point. Its mean over many points
 * against the exact mixture log-density; determinism, max_batch invariance, the seed's effect. */
static void test_hutch_nll_4d(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture4 mx;
    mixture4_init(&mx);
    dm_schedule s;
    sched_init(&s, S_VP);
    const size_t n = N_HUTCH;
    dm_gmm_denoiser g1, g2;
    dm_denoiser d1, d2;
    dm_gmm_denoiser_init(&g1, &d1, &mx.g, &s, 1024);
    dm_gmm_denoiser_init(&g2, &d2, &mx.g, &s, 7);
    float *x = malloc(sizeof(float) * n * HD);
    double *logp = malloc(sizeof(double) * n), *logp2 = malloc(sizeof(double) * n);
    double *logp3 = malloc(sizeof(double) * n), *logp4 = malloc(sizeof(double) * n);
    double *delta = malloc(sizeof(double) * n), *z = malloc(sizeof(double) * n * HD);
    assert_true(x && logp && logp2 && logp3 && logp4 && delta && z);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 2025, err), DM_OK);
    gmm_draw(&mx.g, &rng, n, x);
    const uint64_t seed = dm_seed_derive(7, "eval.hutchinson");
    int64_t nfe = 0, nfe2 = 0;
    const double t0 = now();
    assert_int_equal(dm_nll_pfode(&d1, &s, x, n, 1e-5, 1e-5, 1e-5, seed, logp, &nfe, err), DM_OK);
    const double dt = now() - t0;
    assert_int_equal(dm_nll_pfode_flow(&d1, &s, x, n, 1e-5, 1e-5, 1e-5, seed, z, delta, &nfe2, err), DM_OK);
    assert_int_equal(nfe, nfe2);
    /* Deterministic, and the same bits in chunks of 7 rows. */
    assert_int_equal(dm_nll_pfode(&d1, &s, x, n, 1e-5, 1e-5, 1e-5, seed, logp2, NULL, err), DM_OK);
    assert_memory_equal(logp, logp2, sizeof(double) * n);
    assert_int_equal(dm_nll_pfode(&d2, &s, x, n, 1e-5, 1e-5, 1e-5, seed, logp3, &nfe2, err), DM_OK);
    assert_memory_equal(logp, logp3, sizeof(double) * n);
    assert_int_equal(nfe, nfe2);
    /* Another seed: other probes, other per-point values. */
    assert_int_equal(dm_nll_pfode(&d1, &s, x, n, 1e-5, 1e-5, 1e-5, seed + 1, logp4, NULL, err), DM_OK);
    size_t ndiff = 0;
    for (size_t i = 0; i < n; i++)
        ndiff += fabs(logp4[i] - logp[i]) > 1e-3;
    assert_true(ndiff > n / 2);

    const double aT = s.ops->alpha(&s, s.t_max), sT = s.ops->sigma(&s, s.t_max);
    double bias = 0.0, bias_exact = 0.0, bias4 = 0.0, abs_exact = 0.0, sq = 0.0, mean_logp = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double xi[HD] = { x[i * HD], x[i * HD + 1], x[i * HD + 2], x[i * HD + 3] };
        const double ref = dm_gmm_log_density(&mx.g, 1.0, 0.0, xi);
        const double exact = dm_gmm_log_density(&mx.g, aT, sT, z + i * HD) + delta[i];
        const double sum = dm_nll_prior_logp(&s, z + i * HD, HD) + delta[i];
        assert_true(fabs(logp[i] - sum) < 1e-12 * (1 + fabs(logp[i])));
        bias += logp[i] - ref;
        bias4 += logp4[i] - ref;
        bias_exact += exact - ref;
        abs_exact += fabs(exact - ref);
        sq += (exact - ref) * (exact - ref);
        mean_logp += ref;
    }
    bias /= (double)n;
    bias4 /= (double)n;
    bias_exact /= (double)n;
    abs_exact /= (double)n;
    mean_logp /= (double)n;
    const double sd = sqrt(sq / (double)n - bias_exact * bias_exact);
    printf("hutch nll d=%d vp n=%zu: mean error %+.2e nats (prior N(0, 1)), %+.2e (exact p_T), %+.2e (other "
           "seed); per point mean |err| %.3f, std %.3f (standard error of the mean %.3f); mean log p %.4f; "
           "nfe %lld; %.3f s\n", HD, n, bias, bias_exact, bias4, abs_exact, sd, sd / sqrt((double)n), mean_logp,
           (long long)nfe, dt);
    assert_true(fabs(bias) < HUTCH_TOL);
    assert_true(fabs(bias_exact) < HUTCH_TOL);
    assert_true(fabs(bias4) < HUTCH_TOL);
    free(x);
    free(logp);
    free(logp2);
    free(logp3);
    free(logp4);
    free(delta);
    free(z);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* ---- a network whose output is zero: a closed form -------------------------------------- */

/* With F = 0 and eps-prediction, eps_hat = 0: the PF-ODE is dx/dt = f x, so z = alpha(T) x and
 * the integral of div v is d log alpha(T); the model's density is N(0, alpha(T)^-2 I) exactly, and
 * on VP the N(0, I) prior is exactly its p_T. This runs the network's eval_div (d = 2) and
 * eval_hutch (d = 4) through the solver; Hutchinson's estimate is exact here, as the Jacobian
 * I / alpha is diagonal and |z|^2 = d. */
static void check_net_nll_closed_form(int dim)
{
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, S_VP);
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, dim, dim, 0, 16, 2, 4, err), DM_OK);
    float *params = calloc(mlp.n_params, sizeof(float));
    assert_non_null(params);
    enum { N = 50 };
    dm_net_denoiser nd;
    dm_denoiser den;
    /* max_batch below n: the solver's chunking */
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &mlp, params, &s, &dm_param_eps, NULL, 1.0, 16, err),
                     DM_OK);
    float x[N * HD];
    double logp[N];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 3, err), DM_OK);
    for (int q = 0; q < N * dim; q++)
        x[q] = (float)(30.0 * dm_rng_normal(&rng));
    int64_t nfe = 0;
    assert_int_equal(dm_nll_pfode(&den, &s, x, N, 1e-5, 1e-6, 1e-6, 5, logp, &nfe, err), DM_OK);
    const double aT = s.ops->alpha(&s, s.t_max), ae = s.ops->alpha(&s, 1e-5);
    double worst = 0.0;
    for (size_t i = 0; i < N; i++) {
        /* From eps: x_eps = x, z = (aT / a_eps) x, delta = d log(aT / a_eps). */
        const double r = aT / ae;
        double q = 0.0;
        for (int j = 0; j < dim; j++)
            q += (double)x[i * dim + j] * x[i * dim + j];
        const double ref = -0.5 * dim * log(2.0 * M_PI) + dim * log(r) - 0.5 * r * r * q;
        worst = fmax(worst, fabs(logp[i] - ref));
    }
    printf("net nll d=%d (F = 0, closed form): worst |err| %.2e nats, nfe %lld\n", dim, worst, (long long)nfe);
    assert_true(worst < 1e-4);
    dm_rng_free(&rng);
    dm_net_denoiser_free(&nd);
    free(params);
    dm_net_free(&mlp);
    dm_schedule_free(&s);
}

static void test_net_nll_closed_form(void **state)
{
    (void)state;
    check_net_nll_closed_form(2);
    check_net_nll_closed_form(HD);
}

/* ---- chunking, and (4) errors -------------------------------------------------------------- */

/* max_batch only splits the denoiser calls: the same bits for any max_batch (test_hutch_nll_4d
 * checks the Hutchinson path). */
static void test_max_batch_invariance(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture mx;
    mixture_init(&mx);
    dm_schedule s;
    sched_init(&s, S_VP);
    enum { N = 40 };
    float x[N * 2];
    double a[N], b[N];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 9, err), DM_OK);
    mixture_draw(&mx, &rng, N, x);
    dm_gmm_denoiser g1, g2;
    dm_denoiser d1, d2;
    dm_gmm_denoiser_init(&g1, &d1, &mx.g, &s, 1000);
    dm_gmm_denoiser_init(&g2, &d2, &mx.g, &s, 7);
    int64_t n1, n2;
    assert_int_equal(dm_nll_pfode(&d1, &s, x, N, 1e-5, 1e-5, 1e-5, 0, a, &n1, err), DM_OK);
    assert_int_equal(dm_nll_pfode(&d2, &s, x, N, 1e-5, 1e-5, 1e-5, 0, b, &n2, err), DM_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, sizeof a);
    /* In 2-D the divergence is exact: the seed has no effect. */
    assert_int_equal(dm_nll_pfode(&d1, &s, x, N, 1e-5, 1e-5, 1e-5, 12345, b, &n2, err), DM_OK);
    assert_memory_equal(a, b, sizeof a);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* A denoiser wrapper that fails (or returns NaN) at its k-th call. */
typedef struct faulty {
    const dm_denoiser *inner;
    int calls, fail_at, nan;
} faulty;

static dm_status faulty_div(void *ctx, size_t n, const float *x, const double *t, float *x0, double *div,
                            char *err)
{
    faulty *f = ctx;
    dm_status st = f->inner->eval_div(f->inner->ctx, n, x, t, x0, div, err);
    if (++f->calls == f->fail_at) {
        if (f->nan)
            x0[0] = NAN;
        else
            return dm_err(err, DM_E_STATE, "faulty: call %d", f->calls);
    }
    return st;
}

static dm_status faulty_hutch(void *ctx, size_t n, const float *x, const double *t, const float *z, float *x0,
                              double *zjz, char *err)
{
    faulty *f = ctx;
    dm_status st = f->inner->eval_hutch(f->inner->ctx, n, x, t, z, x0, zjz, err);
    if (++f->calls == f->fail_at) {
        if (f->nan)
            zjz[0] = NAN;
        else
            return dm_err(err, DM_E_STATE, "faulty: call %d", f->calls);
    }
    return st;
}

/* The Hutchinson path's errors (d = 4): the slot it needs, the denoiser's failures, allocations. */
static void check_hutch_errors(void)
{
    char err[DM_ERR_SIZE];
    mixture4 mx;
    mixture4_init(&mx);
    dm_schedule s;
    sched_init(&s, S_VP);
    dm_gmm_denoiser g;
    dm_denoiser den;
    dm_gmm_denoiser_init(&g, &den, &mx.g, &s, 64);
    float x[2 * HD] = { 0.1f, 0.2f, -1.0f, 0.5f, 1.0f, -0.3f, 0.0f, 2.0f };
    double logp[2];
    int64_t nfe = -1;
    dm_denoiser nohutch = den;
    nohutch.eval_hutch = NULL;
    assert_int_equal(dm_nll_pfode(&nohutch, &s, x, 2, 1e-5, 1e-5, 1e-5, 1, logp, &nfe, err), DM_E_INPUT);
    assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "Hutchinson"));
    dm_denoiser nodiv = den; /* eval_div is not needed above 2-D */
    nodiv.eval_div = NULL;
    assert_int_equal(dm_nll_pfode(&nodiv, &s, x, 2, 1e-5, 1e-5, 1e-5, 1, logp, &nfe, err), DM_OK);

    faulty f = { .inner = &den, .fail_at = 4 };
    dm_denoiser fd = den;
    fd.ctx = &f;
    fd.eval_div = NULL;
    fd.eval_hutch = faulty_hutch;
    assert_int_equal(dm_nll_pfode(&fd, &s, x, 2, 1e-5, 1e-5, 1e-5, 1, logp, &nfe, err), DM_E_STATE);
    assert_string_equal(err, "faulty: call 4");
    assert_int_equal(nfe, 4);
    f = (faulty){ .inner = &den, .fail_at = 3, .nan = 1 };
    assert_int_equal(dm_nll_pfode(&fd, &s, x, 2, 1e-5, 1e-5, 1e-5, 1, logp, &nfe, err), DM_E_NUMERIC);
    assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "not finite"));

    dm_status st = DM_E_NOMEM;
    for (long k = 1; st == DM_E_NOMEM && k < 50; k++) {
        dm_alloc_fail_at(k);
        st = dm_nll_pfode(&den, &s, x, 2, 1e-5, 1e-5, 1e-5, 1, logp, &nfe, err);
        dm_alloc_fail_at(0);
        assert_true(st == DM_OK || st == DM_E_NOMEM);
    }
    assert_int_equal(st, DM_OK);
    dm_schedule_free(&s);
}

static void test_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    mixture mx;
    mixture_init(&mx);
    dm_schedule s, sd;
    sched_init(&s, S_VP);
    sched_init(&sd, S_DDPM);
    dm_gmm_denoiser g;
    dm_denoiser den;
    dm_gmm_denoiser_init(&g, &den, &mx.g, &s, 64);
    float x[4] = { 0.1f, 0.2f, -1.0f, 0.5f };
    double logp[2];
    int64_t nfe = -1;

    dm_denoiser nodiv = den;
    nodiv.eval_div = NULL;
    assert_int_equal(dm_nll_pfode(&nodiv, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
    assert_string_equal(err, "eval.nll: this denoiser has no exact divergence");

    assert_int_equal(dm_nll_pfode(&den, &sd, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
    assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "continuous"));

    const double bad_eps[] = { -1e-3, 1.0, 2.0, 0.0 /* sigma(0) = 0 on VP */, NAN };
    for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
        assert_int_equal(dm_nll_pfode(&den, &s, x, 2, bad_eps[i], 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
        assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "eps"));
    }
    const double bad_tol[][2] = { { -1e-5, 1e-5 }, { 1e-5, -1e-5 }, { 0, 0 }, { NAN, 1e-5 }, { 1e-5, INFINITY } };
    for (size_t i = 0; i < sizeof bad_tol / sizeof bad_tol[0]; i++) {
        assert_int_equal(dm_nll_pfode(&den, &s, x, 2, 1e-5, bad_tol[i][0], bad_tol[i][1], 0, logp, &nfe, err),
                         DM_E_INPUT);
        assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "tolerances"));
    }
    assert_int_equal(dm_nll_pfode(NULL, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
    assert_int_equal(dm_nll_pfode(&den, &s, NULL, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
    assert_int_equal(dm_nll_pfode(&den, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, NULL, &nfe, err), DM_E_INPUT);
    assert_int_equal(dm_nll_pfode_flow(&den, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, NULL, NULL, &nfe, err), DM_E_INPUT);

    /* n = 0: nothing to do */
    assert_int_equal(dm_nll_pfode(&den, &s, NULL, 0, 1e-5, 1e-5, 1e-5, 0, NULL, &nfe, err), DM_OK);
    assert_int_equal(nfe, 0);
    /* EDM from eps = 0 is refused (sigma = 0); VE from 0 is fine (sigma(0) = sigma_min). */
    dm_schedule se, sv;
    sched_init(&se, S_EDM);
    sched_init(&sv, S_VE);
    dm_gmm_denoiser ge, gv;
    dm_denoiser de, dv;
    dm_gmm_denoiser_init(&ge, &de, &mx.g, &se, 64);
    dm_gmm_denoiser_init(&gv, &dv, &mx.g, &sv, 64);
    assert_int_equal(dm_nll_pfode(&de, &se, x, 2, 0.0, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_INPUT);
    assert_int_equal(dm_nll_pfode(&dv, &sv, x, 2, 0.0, 1e-5, 1e-5, 0, logp, &nfe, err), DM_OK);

    /* The denoiser's own error passes through; a NaN is DM_E_NUMERIC. */
    faulty f = { .inner = &den, .fail_at = 5 };
    dm_denoiser fd = den;
    fd.ctx = &f;
    fd.eval_div = faulty_div;
    assert_int_equal(dm_nll_pfode(&fd, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_STATE);
    assert_string_equal(err, "faulty: call 5");
    assert_int_equal(nfe, 5);
    f = (faulty){ .inner = &den, .fail_at = 3, .nan = 1 };
    assert_int_equal(dm_nll_pfode(&fd, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err), DM_E_NUMERIC);
    assert_true(strncmp(err, "eval.nll:", 9) == 0 && strstr(err, "not finite"));

    /* Every allocation failing in turn: DM_E_NOMEM, nothing leaked (under ASan). */
    dm_status st = DM_E_NOMEM;
    for (long k = 1; st == DM_E_NOMEM && k < 50; k++) {
        dm_alloc_fail_at(k);
        st = dm_nll_pfode(&den, &s, x, 2, 1e-5, 1e-5, 1e-5, 0, logp, &nfe, err);
        dm_alloc_fail_at(0);
        assert_true(st == DM_OK || st == DM_E_NOMEM);
    }
    assert_int_equal(st, DM_OK);

    assert_float_equal(dm_nll_bits_per_dim(-2.0 * M_LN2 * 3.5, 2), 3.5, 1e-12);
    check_hutch_errors();
    dm_schedule_free(&s);
    dm_schedule_free(&sd);
    dm_schedule_free(&se);
    dm_schedule_free(&sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gmm_div),
        cmocka_unit_test(test_net_div),
        cmocka_unit_test(test_gmm_hutch),
        cmocka_unit_test(test_net_hutch),
        cmocka_unit_test(test_gmm_nll_vp),
        cmocka_unit_test(test_gmm_nll_others),
        cmocka_unit_test(test_hutch_nll_patterns),
        cmocka_unit_test(test_hutch_nll_4d),
        cmocka_unit_test(test_net_nll_closed_form),
        cmocka_unit_test(test_max_batch_invariance),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
