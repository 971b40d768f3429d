/* test_mixture_metrics.c — the metrics of issue 14 against exact answers:
 *   - model_err (eval/model_err.h): D* against itself is 0; D* + delta on every coordinate is
 *     delta^2 per dimension; the time of a level sigma/alpha on EDM, VP and DDPM; levels off the
 *     schedule refused;
 *   - exact-density metrics (eval/mixture_metrics.h): the exact sampler's draws match a large
 *     Monte Carlo of the same mixture drawn by the data plug-in (an independent code path) within
 *     5 standard errors, on 8 Gaussians and on an unequal, overlapping mixture in 8 dimensions;
 *     a collapsed set (every draw from one component) has recall 1/K and X^2 = 7 n;
 *   - mmd2_ms (eval/mmd_scale.h): the multi-bandwidth MMD equals the one-bandwidth MMD bit for bit
 *     and a direct O(n^2) sum; the kernel of 8 Gaussians (bandwidths, and kappa in closed form
 *     against pairs of exact draws) and of other data; within-mode blur (std x 1.5) stands out of
 *     the exact-vs-exact spread far more under mmd2_ms than under mmd2;
 *   - the exact sampler (diffusion/sampler_exact.c): refuses a denoiser that is not its mixture
 *     carrier, sample i independent of n and of the thread count, class-conditional rows drawn
 *     from their class. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "data/datasets.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"
#include "eval/metrics.h"
#include "eval/mixture_metrics.h"
#include "eval/mmd_scale.h"
#include "eval/model_err.h"

static const dm_ddpm_linear_opts ddpm_o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };
static const dm_vp_schedule_opts vp_o = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };
static const dm_edm_schedule_opts edm_o = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7, .p_mean = -1.2,
                                            .p_std = 1.2 };

/* 8 Gaussians as the eight_gaussians data plug-in defines it (radius 2, std 0.1). */
static const dm_eight_gaussians_opts eg_o = { .radius = 2.0, .std = 0.1 };

static void eight(dm_gmm *g)
{
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_data_gmm(&dm_data_eight_gaussians, &eg_o, g, err), DM_OK);
}

/* n exact draws with per-sample streams of `seed` (labels y may be NULL), as the trainer runs them. */
static void exact_draw(const dm_gmm *g, const int32_t *y, size_t n, uint64_t seed, float *x)
{
    char err[DM_ERR_SIZE];
    dm_rng *rngs;
    dm_denoiser den;
    int64_t nfe = -1;
    assert_int_equal(dm_rng_streams_new(seed, n, &rngs, err), DM_OK);
    dm_sampler_exact_denoiser(&den, g);
    den.y = y;
    dm_status st = dm_sampler_sample(&dm_sampler_exact, NULL, &den, NULL, n, rngs, x, &nfe, err);
    if (st)
        print_error("exact sampler: %s\n", err);
    assert_int_equal(st, DM_OK);
    assert_int_equal(nfe, 0);
    dm_rng_streams_free(rngs, n);
}

/* ---- model_err ------------------------------------------------------------------------------ */

/* D* + delta: the exact denoiser with a constant planted on every coordinate of x0_hat. */
typedef struct shifted {
    dm_denoiser inner;
    float delta;
} shifted;

static dm_status shifted_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                              float *eps, char *err)
{
    const shifted *s = ctx;
    dm_status st = s->inner.eval(s->inner.ctx, n, x, t, y, x0, eps, err);
    for (size_t q = 0; !st && x0 && q < n * s->inner.dim; q++)
        x0[q] += s->delta;
    return st;
}

static void test_model_err_planted(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 3000 };
    dm_gmm g;
    eight(&g);
    dm_schedule sched;
    assert_int_equal(dm_schedule_init(&sched, &dm_schedule_edm, &edm_o, err), DM_OK);
    dm_gmm_denoiser gd, gd2;
    dm_denoiser exact, inner;
    dm_gmm_denoiser_init(&gd, &exact, &g, &sched, 700);   /* chunks of 700 and 256: batching is free */
    dm_gmm_denoiser_init(&gd2, &inner, &g, &sched, 256);
    shifted sh = { .inner = inner, .delta = 0.0f };
    dm_denoiser model = { .ctx = &sh, .dim = 2, .max_batch = 256, .eval = shifted_eval };
    float *x0 = dm_malloc(sizeof(float) * N * 2), *eps = dm_malloc(sizeof(float) * N * 2);
    int32_t *y = dm_malloc(sizeof(int32_t) * N);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 7, err), DM_OK);
    for (size_t q = 0; q < N * 2; q++)
        eps[q] = (float)dm_rng_normal(&rng);
    dm_data_eight_gaussians.generate(&eg_o, DM_DATA_TRAIN, N, &rng, x0, y, err);
    const double deltas[] = { 0.0, 1e-3, 0.05, 0.7 }, levels[] = { 0.02, 0.3, 2.0, 50.0 };
    for (size_t l = 0; l < 4; l++) {
        double t, lv;
        assert_int_equal(dm_model_err_time(&sched, levels[l], "k", &t, &lv, err), DM_OK);
        for (size_t k = 0; k < 4; k++) {
            sh.delta = (float)deltas[k];
            const double dl = (double)sh.delta;   /* the planted offset as the model adds it */
            double v = -1;
            assert_int_equal(dm_model_err(&model, &exact, &sched, t, x0, eps, NULL, N, &v, err), DM_OK);
            /* |D + delta - D|^2 / d = delta^2, up to the float rounding of D + delta (|D| <= 2.5:
             * an error of at most 2^-22 per coordinate). */
            if (!(fabs(v - dl * dl) <= 2.0 * dl * 3e-7 + 1e-13)) {
                print_error("level %g delta %g: model_err %.17g, want %.17g\n", levels[l], dl, v, dl * dl);
                fail();
            }
            if (k == 0)
                assert_true(v == 0.0);
            /* Class-conditional: the same offset through D*(x, t, y). */
            assert_int_equal(dm_model_err(&model, &exact, &sched, t, x0, eps, y, N, &v, err), DM_OK);
            assert_true(fabs(v - dl * dl) <= 2.0 * dl * 3e-7 + 1e-13);
        }
    }
    dm_rng_free(&rng);
    dm_free(x0);
    dm_free(eps);
    dm_free(y);
    dm_schedule_free(&sched);
    dm_gmm_free(&g);
}

static void test_model_err_time(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule edm, vp, ddpm;
    assert_int_equal(dm_schedule_init(&edm, &dm_schedule_edm, &edm_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&ddpm, &dm_schedule_ddpm_linear, &ddpm_o, err), DM_OK);
    const double levels[] = { 0.002, 0.02, 0.1, 1.0, 5.0, 10.0, 80.0 };
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        double t, a;
        /* EDM: sigma = t, alpha = 1: the level itself, to the bit. */
        assert_int_equal(dm_model_err_time(&edm, levels[l], "k", &t, &a, err), DM_OK);
        assert_true(t == levels[l] && a == levels[l]);
        if (levels[l] < 0.01 || levels[l] > 80)
            continue;
        /* VP: sigma/alpha at the time found is the level to rounding. */
        assert_int_equal(dm_model_err_time(&vp, levels[l], "k", &t, &a, err), DM_OK);
        assert_true(fabs(vp.ops->sigma(&vp, t) / vp.ops->alpha(&vp, t) / levels[l] - 1) < 1e-13 && a == levels[l]);
        /* DDPM: the nearest integer step in log sigma/alpha. */
        assert_int_equal(dm_model_err_time(&ddpm, levels[l], "k", &t, &a, err), DM_OK);
        assert_true(t == floor(t) && t >= 0 && t < 1000);
        assert_true(fabs(a - ddpm.ops->sigma(&ddpm, t) / ddpm.ops->alpha(&ddpm, t)) < 1e-15 * a);
        for (int k = -1; k <= 1; k += 2)
            if (t + k >= 0 && t + k < 1000) {
                const double o = ddpm.ops->sigma(&ddpm, t + k) / ddpm.ops->alpha(&ddpm, t + k);
                assert_true(fabs(log(o / levels[l])) >= fabs(log(a / levels[l])));
            }
    }
    double t, a;
    assert_int_equal(dm_model_err_time(&edm, 100.0, "eval.model_err_levels", &t, &a, err), DM_E_INPUT);
    assert_non_null(strstr(err, "eval.model_err_levels: sigma/alpha = 100 is outside"));
    /* VP from t_min = 1e-5: sigma/alpha = sqrt(e^(beta_min t_min) - 1), about 0.001. */
    assert_int_equal(dm_model_err_time(&vp, 2e-3, "k", &t, &a, err), DM_OK);
    assert_int_equal(dm_model_err_time(&vp, 5e-4, "k", &t, &a, err), DM_E_INPUT);
    assert_int_equal(dm_model_err_time(&ddpm, 1e-3, "k", &t, &a, err), DM_E_INPUT);
    assert_non_null(strstr(err, "within a factor 2"));
    assert_int_equal(dm_model_err_time(&ddpm, -1.0, "k", &t, &a, err), DM_E_INPUT);
    dm_schedule_free(&edm);
    dm_schedule_free(&vp);
    dm_schedule_free(&ddpm);
}

/* ---- exact-density metrics ------------------------------------------------------------------ */

static dm_mix_result metrics(const dm_gmm *g, const float *x, const int32_t *y, size_t n)
{
    char err[DM_ERR_SIZE];
    dm_mix_result r;
    dm_status st = dm_mixture_metrics(g, x, y, n, &r, err);
    if (st)
        print_error("dm_mixture_metrics: %s\n", err);
    assert_int_equal(st, DM_OK);
    return r;
}

typedef struct moments {
    double s[4], q[4];
    size_t n;
} moments;

static void add(moments *m, const dm_mix_result *r)
{
    const double v[4] = { r->data_nll, r->in_mode99, r->mode_recall, r->mode_chi2 };
    for (int k = 0; k < 4; k++) {
        m->s[k] += v[k];
        m->q[k] += v[k] * v[k];
    }
    m->n++;
}

static double mean(const moments *m, int k) { return m->s[k] / (double)m->n; }
static double var(const moments *m, int k)
{
    const double mu = mean(m, k);
    return fmax(0.0, (m->q[k] - (double)m->n * mu * mu) / (double)(m->n - 1));
}

/* R sets of n exact draws (the sampler) against M sets drawn by the data plug-in `data` (its own
 * draw code): each metric's means agree within 5 standard errors of their difference. */
static void exact_vs_monte_carlo(const dm_gmm *g, const dm_data_ops *data, const void *opts, size_t n, size_t R,
                                 size_t M, moments *ex, moments *mc)
{
    char err[DM_ERR_SIZE];
    float *x = dm_malloc(sizeof(float) * n * g->dim);
    for (size_t r = 0; r < R; r++) {
        exact_draw(g, NULL, n, 1000 + r, x);
        dm_mix_result m = metrics(g, x, NULL, n);
        add(ex, &m);
    }
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 99, err), DM_OK);
    for (size_t r = 0; r < M; r++) {
        assert_int_equal(data->generate(opts, DM_DATA_TRAIN, n, &rng, x, NULL, err), DM_OK);
        dm_mix_result m = metrics(g, x, NULL, n);
        add(mc, &m);
    }
    const char *names[4] = { "data_nll", "in_mode99", "mode_recall", "mode_chi2" };
    for (int k = 0; k < 4; k++) {
        const double se = sqrt(var(ex, k) / (double)R + var(mc, k) / (double)M);
        const double diff = mean(ex, k) - mean(mc, k);
        print_message("%-11s exact %.5g, Monte Carlo %.5g, se of the difference %.2g\n", names[k], mean(ex, k),
                      mean(mc, k), se);
        if (!(fabs(diff) <= 5.0 * se + 1e-12)) {
            print_error("%s: exact %.6g vs Monte Carlo %.6g, difference %.3g > 5 se = %.3g\n", names[k], mean(ex, k),
                        mean(mc, k), diff, 5.0 * se);
            fail();
        }
    }
    dm_rng_free(&rng);
    dm_free(x);
}

static void test_exact_matches_monte_carlo(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    /* 8 Gaussians: also the closed forms of well-separated components: -log p has mean
     * log 8 + log(2 pi e s^2) (the entropy; the other components add < 1e-80), in_mode99 0.99,
     * X^2 of a multinomial has mean K - 1 = 7. */
    dm_gmm g;
    eight(&g);
    moments ex = { 0 }, mc = { 0 };
    exact_vs_monte_carlo(&g, &dm_data_eight_gaussians, &eg_o, 500, 40, 400, &ex, &mc);
    const double H = log(8.0) + log(2.0 * M_PI * M_E * 0.01);
    const double want[4] = { H, 0.99, 1.0, 7.0 };
    for (int k = 0; k < 4; k++)
        assert_true(fabs(mean(&mc, k) - want[k]) <= 5.0 * sqrt(var(&mc, k) / 400.0) + 1e-12);
    dm_gmm_free(&g);

    /* Unequal weights, unequal stds, overlapping components, 8 dimensions (the gmm plug-in). */
    enum { K = 3, D = 8 };
    double w[K] = { 0.5, 0.3, 0.2 }, s[K] = { 0.5, 1.0, 0.3 }, mu[K * D] = { 0 };
    mu[D] = 1.5;               /* component 1 overlaps component 0 */
    mu[2 * D + 3] = 4.0;       /* component 2 apart */
    const dm_gmm_opts go = { .weights = { w, K, 0 }, .means = { mu, K * D, K }, .stds = { s, K, 0 } };
    assert_int_equal(dm_data_gmm(&dm_data_gmm_ops, &go, &g, err), DM_OK);
    moments ex2 = { 0 }, mc2 = { 0 };
    exact_vs_monte_carlo(&g, &dm_data_gmm_ops, &go, 400, 40, 400, &ex2, &mc2);
    assert_true(mean(&mc2, 1) > 0.985 && mean(&mc2, 1) < 1.0);   /* 0.99 and a little from the overlap */
    dm_gmm_free(&g);
}

static void test_collapse_and_labels(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 4000 };
    dm_gmm g;
    eight(&g);
    float *x = dm_malloc(sizeof(float) * N * 2);
    int32_t *y = dm_malloc(sizeof(int32_t) * N);
    /* Collapse: every sample from component 3 (class 3). Counts (0, 0, 0, N, 0, ...) against
     * N/8 each: recall 1/8 and X^2 = (N - N/8)^2 / (N/8) + 7 N/8 = 7 N. */
    for (size_t i = 0; i < N; i++)
        y[i] = 3;
    exact_draw(&g, y, N, 5, x);
    dm_mix_result r = metrics(&g, x, NULL, N);
    assert_true(r.mode_recall == 1.0 / 8.0);
    assert_true(fabs(r.mode_chi2 - 7.0 * N) < 1e-9 * N);
    /* ... which data_nll and in_mode99 reward: the same as full coverage (equal weights). */
    assert_true(r.in_mode99 > 0.98);
    /* Measured as the class-3 set it was asked to be, it is perfect: w' puts all weight on 3. */
    r = metrics(&g, x, y, N);
    assert_true(r.mode_recall == 1.0 && r.mode_chi2 == 0.0);
    /* Balanced classes i mod 8: sample i lands in component i mod 8 (4000 draws, 20 stds apart). */
    for (size_t i = 0; i < N; i++)
        y[i] = (int32_t)(i % 8);
    exact_draw(&g, y, N, 6, x);
    for (size_t i = 0; i < N; i++) {
        double best = INFINITY;
        size_t arg = 0;
        for (size_t k = 0; k < 8; k++) {
            const double dx = x[2 * i] - g.mu[2 * k], dy = x[2 * i + 1] - g.mu[2 * k + 1];
            if (dx * dx + dy * dy < best) {
                best = dx * dx + dy * dy;
                arg = k;
            }
        }
        assert_int_equal(arg, i % 8);
    }
    r = metrics(&g, x, y, N);
    assert_true(r.mode_recall == 1.0 && r.mode_chi2 == 0.0);
    /* Bad input. */
    y[5] = 8;
    assert_int_equal(dm_mixture_metrics(&g, x, y, N, &r, err), DM_E_INPUT);
    x[3] = NAN;
    assert_int_equal(dm_mixture_metrics(&g, x, NULL, N, &r, err), DM_E_NUMERIC);
    dm_free(x);
    dm_free(y);
    dm_gmm_free(&g);
}

/* ---- the exact sampler ------------------------------------------------------------------------ */

static void test_exact_sampler(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 600 };
    dm_gmm g;
    eight(&g);
    float *a = dm_malloc(sizeof(float) * N * 2), *b = dm_malloc(sizeof(float) * N * 2);
    /* Sample i from its own stream: the first 200 of 600 are the 200 of a set of 200, with 1 or 2
     * threads. */
    omp_set_num_threads(1);
    exact_draw(&g, NULL, N, 42, a);
    omp_set_num_threads(2);
    exact_draw(&g, NULL, 200, 42, b);
    assert_memory_equal(a, b, sizeof(float) * 200 * 2);
    exact_draw(&g, NULL, N, 42, b);
    assert_memory_equal(a, b, sizeof(float) * N * 2);
    /* Any denoiser but the carrier is refused, with the key named. */
    dm_schedule sched;
    assert_int_equal(dm_schedule_init(&sched, &dm_schedule_edm, &edm_o, err), DM_OK);
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, &g, &sched, 64);
    dm_rng *rngs;
    assert_int_equal(dm_rng_streams_new(1, N, &rngs, err), DM_OK);
    assert_int_equal(dm_sampler_sample(&dm_sampler_exact, NULL, &den, &sched, N, rngs, a, NULL, err), DM_E_INPUT);
    assert_non_null(strstr(err, "sampler.type: exact"));
    /* The carrier evaluates nothing. */
    dm_denoiser carrier;
    dm_sampler_exact_denoiser(&carrier, &g);
    double t = 1.0;
    assert_int_not_equal(carrier.eval(carrier.ctx, 1, a, &t, NULL, b, NULL, err), DM_OK);
    /* A class outside the mixture. */
    int32_t y[N];
    for (size_t i = 0; i < N; i++)
        y[i] = (int32_t)(i % 9);
    carrier.y = y;
    assert_int_equal(dm_sampler_sample(&dm_sampler_exact, NULL, &carrier, &sched, N, rngs, a, NULL, err), DM_E_INPUT);
    assert_int_equal(dm_sampler_exact.nfe(NULL, &sched), 0);
    dm_rng_streams_free(rngs, N);
    dm_schedule_free(&sched);
    dm_free(a);
    dm_free(b);
    dm_gmm_free(&g);
}

/* ---- mmd2_ms ---------------------------------------------------------------------------------- */

static void test_mmd_multi_exact(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { NA = 37, NB = 29, D = 3, NH = 4 };
    float a[NA * D], b[NB * D];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 3, err), DM_OK);
    for (size_t q = 0; q < NA * D; q++)
        a[q] = (float)dm_rng_normal(&rng);
    for (size_t q = 0; q < NB * D; q++)
        b[q] = (float)(0.5 + 1.3 * dm_rng_normal(&rng));
    dm_rng_free(&rng);
    const double h[NH] = { 0.05, 0.4, 1.7, 9.0 };
    double multi[NH];
    assert_int_equal(dm_mmd2_unbiased_multi(a, NA, b, NB, D, h, NH, multi, err), DM_OK);
    for (int q = 0; q < NH; q++) {
        /* The one-bandwidth MMD, bit for bit. */
        double one;
        assert_int_equal(dm_mmd2_unbiased(a, NA, b, NB, D, h[q], &one, err), DM_OK);
        assert_memory_equal(&one, &multi[q], sizeof one);
        /* A direct O(n^2) sum with libm's exp (Gretton et al. 2012, eq. 3). */
        double saa = 0, sbb = 0, sab = 0;
        for (size_t i = 0; i < NA; i++)
            for (size_t j = 0; j < NA; j++)
                if (i != j) {
                    double r = 0;
                    for (int k = 0; k < D; k++)
                        r += ((double)a[i * D + k] - a[j * D + k]) * ((double)a[i * D + k] - a[j * D + k]);
                    saa += exp(-r / (2 * h[q] * h[q]));
                }
        for (size_t i = 0; i < NB; i++)
            for (size_t j = 0; j < NB; j++)
                if (i != j) {
                    double r = 0;
                    for (int k = 0; k < D; k++)
                        r += ((double)b[i * D + k] - b[j * D + k]) * ((double)b[i * D + k] - b[j * D + k]);
                    sbb += exp(-r / (2 * h[q] * h[q]));
                }
        for (size_t i = 0; i < NA; i++)
            for (size_t j = 0; j < NB; j++) {
                double r = 0;
                for (int k = 0; k < D; k++)
                    r += ((double)a[i * D + k] - b[j * D + k]) * ((double)a[i * D + k] - b[j * D + k]);
                sab += exp(-r / (2 * h[q] * h[q]));
            }
        const double want = saa / (NA * (NA - 1.0)) + sbb / (NB * (NB - 1.0)) - 2 * sab / ((double)NA * NB);
        assert_true(fabs(multi[q] - want) <= 1e-13 * (1 + fabs(want)));
    }
    /* mmd2_ms is the mean over its DM_MMD_SCALES bandwidths of MMD^2 / kappa. */
    const dm_mmd_kernel kern = { { 0.1, 0.3, 0.5, 1.0, 2.0 }, { 0.5, 0.25, 2.0, 1.0, 0.125 } };
    double ms, per[DM_MMD_SCALES];
    assert_int_equal(dm_mmd2_ms(a, NA, b, NB, D, &kern, &ms, err), DM_OK);
    assert_int_equal(dm_mmd2_unbiased_multi(a, NA, b, NB, D, kern.h, DM_MMD_SCALES, per, err), DM_OK);
    assert_true(fabs(ms - (per[0] / 0.5 + per[1] / 0.25 + per[2] / 2 + per[3] + per[4] / 0.125) / 5) <
                1e-15 * fabs(ms));
    const double bad[2] = { 1.0, 0.0 };
    assert_int_equal(dm_mmd2_unbiased_multi(a, NA, b, NB, D, bad, 2, per, err), DM_E_INPUT);
}

/* The mean kernel value over pairs of m points (m, d) at bandwidth h, directly. */
static double pair_mean(const float *x, size_t m, size_t d, double h)
{
    double s = 0.0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) {
            double q = 0.0;
            for (size_t k = 0; k < d; k++)
                q += ((double)x[i * d + k] - x[j * d + k]) * ((double)x[i * d + k] - x[j * d + k]);
            s += exp(-q / (2 * h * h));
        }
    return s / (0.5 * (double)m * (double)(m - 1));
}

static void test_mmd_kernel(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_gmm g;
    eight(&g);
    /* 8 Gaussians: sqrt(d/2) s = 0.1 to sqrt(2 (4 + 2 s^2)) = 2.8355, geometric, 3 digits; kappa
     * in closed form, against the mean kernel value over pairs of 3000 exact draws (its standard
     * error below 1%). */
    dm_mmd_kernel k;
    assert_int_equal(dm_mmd_kernel_of(&g, NULL, 0, 2, &k, err), DM_OK);
    const double want[DM_MMD_SCALES] = { 0.1, 0.231, 0.532, 1.23, 2.84 };
    enum { M = 3000 };
    float *x = dm_malloc(sizeof(float) * 20000 * 2);
    exact_draw(&g, NULL, M, 8, x);
    for (int b = 0; b < DM_MMD_SCALES; b++) {
        assert_true(k.h[b] == want[b]);
        const double mc = pair_mean(x, M, 2, k.h[b]);
        if (!(fabs(k.kappa[b] / mc - 1) < 0.03)) {
            print_error("kappa at h = %g: %g, pairs of exact draws %g\n", k.h[b], k.kappa[b], mc);
            fail();
        }
    }
    /* At the smallest bandwidth only pairs within a component count: (1/8) h^2 / (h^2 + 2 s^2) = 1/24. */
    assert_true(fabs(k.kappa[0] - 0.0417) < 1e-12);
    /* Other data: sqrt(2 tr Cov) of the reference set and 1/16 of it: N(0, 4 I) in 2-D gives
     * sqrt(16) = 4, so about 0.25, 0.5, 1, 2, 4, and kappa = h^2 / (h^2 + 8) from pairs. */
    enum { N = 20000 };
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    for (size_t q = 0; q < N * 2; q++)
        x[q] = (float)(2.0 * dm_rng_normal(&rng));
    assert_int_equal(dm_mmd_kernel_of(NULL, x, N, 2, &k, err), DM_OK);
    for (int b = 0; b < DM_MMD_SCALES; b++) {
        assert_true(fabs(k.h[b] / (0.25 * pow(2.0, b)) - 1) < 0.02);
        assert_true(fabs(k.kappa[b] / (k.h[b] * k.h[b] / (k.h[b] * k.h[b] + 8)) - 1) < 0.1);
        /* the pairs of the first 1000 reference points, rounded to 3 digits */
        assert_true(fabs(k.kappa[b] - pair_mean(x, 1000, 2, k.h[b])) <= 5e-3 * k.kappa[b]);
    }
    dm_rng_free(&rng);
    dm_free(x);
    dm_gmm_free(&g);
}

/* Within-mode blur: each component's std x 1.5. The ratio of the blurred set's value to the
 * spread of exact-vs-exact values (over independent reference sets) is far larger for mmd2_ms
 * than for the median-heuristic mmd2. */
static void test_mmd_ms_sees_blur(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 1000, REPS = 12 };
    dm_gmm g, blur;
    eight(&g);
    const dm_eight_gaussians_opts wide = { .radius = 2.0, .std = 0.15 };
    assert_int_equal(dm_data_gmm(&dm_data_eight_gaussians, &wide, &blur, err), DM_OK);
    float *ref = dm_malloc(sizeof(float) * N * 2), *ex = dm_malloc(sizeof(float) * N * 2),
          *bl = dm_malloc(sizeof(float) * N * 2);
    dm_mmd_kernel hs;
    assert_int_equal(dm_mmd_kernel_of(&g, NULL, 0, 2, &hs, err), DM_OK);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 17, err), DM_OK);
    double s_old[2] = { 0 }, q_old = 0, s_ms[2] = { 0 }, q_ms = 0;
    for (int r = 0; r < REPS; r++) {
        assert_int_equal(dm_data_eight_gaussians.generate(&eg_o, DM_DATA_TRAIN, N, &rng, ref, NULL, err), DM_OK);
        exact_draw(&g, NULL, N, 300 + (uint64_t)r, ex);
        exact_draw(&blur, NULL, N, 300 + (uint64_t)r, bl);   /* the same draws, 1.5x from the means */
        const double h = dm_mmd_bandwidth(ref, N, 2);
        double v;
        assert_int_equal(dm_mmd2_unbiased(ex, N, ref, N, 2, h, &v, err), DM_OK);
        q_old += v * v;
        assert_int_equal(dm_mmd2_unbiased(bl, N, ref, N, 2, h, &v, err), DM_OK);
        s_old[1] += v;
        assert_int_equal(dm_mmd2_ms(ex, N, ref, N, 2, &hs, &v, err), DM_OK);
        q_ms += v * v;
        assert_int_equal(dm_mmd2_ms(bl, N, ref, N, 2, &hs, &v, err), DM_OK);
        s_ms[1] += v;
    }
    /* The spread: the RMS of exact-vs-exact values (their expectation is 0: unbiased). */
    const double spread_old = sqrt(q_old / REPS), spread_ms = sqrt(q_ms / REPS);
    const double ratio_old = s_old[1] / REPS / spread_old, ratio_ms = s_ms[1] / REPS / spread_ms;
    print_message("blur x1.5: mmd2 %.3g (spread %.3g, ratio %.1f); mmd2_ms %.3g (spread %.3g, ratio %.1f)\n",
                  s_old[1] / REPS, spread_old, ratio_old, s_ms[1] / REPS, spread_ms, ratio_ms);
    /* measured: mmd2 ratio 0.5, mmd2_ms 5.1 */
    assert_true(ratio_ms > 5.0 * ratio_old);
    assert_true(ratio_ms > 3.0);
    dm_rng_free(&rng);
    dm_free(ref);
    dm_free(ex);
    dm_free(bl);
    dm_gmm_free(&g);
    dm_gmm_free(&blur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_err_planted),
        cmocka_unit_test(test_model_err_time),
        cmocka_unit_test(test_exact_matches_monte_carlo),
        cmocka_unit_test(test_collapse_and_labels),
        cmocka_unit_test(test_exact_sampler),
        cmocka_unit_test(test_mmd_multi_exact),
        cmocka_unit_test(test_mmd_kernel),
        cmocka_unit_test(test_mmd_ms_sees_blur),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
