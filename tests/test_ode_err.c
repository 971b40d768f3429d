/* eval.ode_err against exact answers: the arithmetic of the metric (closed forms), each sampler's
 * span and the refusals of samplers with no reference, and on the analytic 8-Gaussian denoiser
 * (EDM schedule, Karras grid, rho = 7) the reference's convergence in its tolerance (1e-7 vs
 * 1e-9), Euler's first order (slope of log ode_err against log NFE over 32-256 in [-1.2, -0.8])
 * and Heun's second; the reference's bits independent of the denoiser's batch size; and through
 * train/record.c: the reference stored once as a sample set, found after a round trip through
 * run.h5 and reused by the next sampler (a planted change to it shows in the next ode_err), one per
 * model (EMA or training weights),
 * and the spec check refusing stochastic samplers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "diffusion/denoiser_gmm.h"
#include "diffusion/ode_ref.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"
#include "eval/ode_err.h"
#include "io/runlog.h"
#include "io/runrec.h"
#include "io/spec.h"
#include "train/record.h"
#include "train/schema.h"
#include "train/trainer.h"

static const dm_edm_schedule_opts edm_o = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7, .p_mean = -1.2,
                                            .p_std = 1.2 };
static const dm_vp_schedule_opts vp_o = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };
static const dm_ddpm_linear_opts ddpm_o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };

/* The 8-Gaussians mixture: means on the circle of radius 2, std 0.1, equal weights. Its std per
 * coordinate: sqrt(E[mu_j^2] + s^2) = sqrt(2 + 0.01). */
typedef struct mixture {
    dm_gmm g;
    double w[8], mu[16], s[8];
} mixture;

static void mixture_init(mixture *m)
{
    for (size_t c = 0; c < 8; c++) {
        m->w[c] = 1.0 / 8.0;
        m->mu[2 * c] = 2.0 * cos(2.0 * M_PI * (double)c / 8.0);
        m->mu[2 * c + 1] = 2.0 * sin(2.0 * M_PI * (double)c / 8.0);
        m->s[c] = 0.1;
    }
    m->g = (dm_gmm){ .k = 8, .dim = 2, .w = m->w, .mu = m->mu, .s = m->s };
}

/* cmocka's assert_double_equal is newer than the library here. */
#define assert_double_equal(a, b, tol) assert_near(a, b, tol, #a, __LINE__)
static void assert_near(double got, double want, double tol, const char *what, int line)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("line %d: %s = %.17g, want %.17g (tol %g)", line, what, got, want, tol);
}

static const double data_std = 1.4177446878757824; /* sqrt(2.01) */

/* n samples of `ops` on the mixture's exact denoiser, streams dm_seed_index(seed, i). */
static float *run(const dm_sampler_ops *ops, const void *opts, const dm_schedule *s, const dm_gmm *g, size_t n,
                  size_t max_batch, int64_t *nfe)
{
    char err[DM_ERR_SIZE];
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, g, s, max_batch);
    dm_rng *rngs = NULL;
    assert_int_equal(dm_rng_streams_new(1234, n, &rngs, err), DM_OK);
    if (ops->check(opts, s, err))
        fail_msg("%s: %s", ops->info.name, err);
    float *x = malloc(sizeof(float) * n * 2);
    assert_non_null(x);
    if (dm_sampler_sample(ops, opts, &den, s, n, rngs, x, nfe, err))
        fail_msg("%s: %s", ops->info.name, err);
    dm_rng_streams_free(rngs, n);
    return x;
}

static double mean_err(const float *x, const float *ref, size_t n, double *max)
{
    char err[DM_ERR_SIZE];
    dm_ode_err_result r;
    if (dm_ode_err(x, ref, n, 2, data_std, NULL, &r, err))
        fail_msg("%s", err);
    if (max)
        *max = r.max;
    return r.mean;
}

/* ---- the metric's arithmetic ------------------------------------------------------------- */

static void test_arithmetic(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    /* Differences (3, 4), (0, 0), (1, 1), (6, 8) per sample: RMS over the 2 dimensions
     * sqrt(12.5), 0, 1, sqrt(50); over std 2. */
    const float ref[8] = { 0, 0, 1, 1, -1, 2, 0, 0 };
    const float x[8] = { 3, 4, 1, 1, 0, 3, 6, 8 };
    const double e_want[4] = { sqrt(12.5) / 2, 0, 0.5, sqrt(50.0) / 2 };
    double e[4];
    dm_ode_err_result r;
    assert_int_equal(dm_ode_err(x, ref, 4, 2, 2.0, e, &r, err), DM_OK);
    for (int i = 0; i < 4; i++)
        assert_double_equal(e[i], e_want[i], 1e-12);
    assert_double_equal(r.mean, (e_want[0] + e_want[1] + e_want[2] + e_want[3]) / 4, 1e-12);
    assert_double_equal(r.median, (e_want[2] + e_want[0]) / 2, 1e-12); /* sorted: 0, 0.5, 1.77, 3.54 */
    assert_double_equal(r.max, e_want[3], 1e-12);
    /* Odd n: the middle value. */
    assert_int_equal(dm_ode_err(x, ref, 3, 2, 2.0, NULL, &r, err), DM_OK);
    assert_double_equal(r.median, e_want[2], 1e-12);
    /* Bad input. */
    assert_int_equal(dm_ode_err(x, ref, 0, 2, 2.0, NULL, &r, err), DM_E_INPUT);
    assert_int_equal(dm_ode_err(x, ref, 4, 2, 0.0, NULL, &r, err), DM_E_INPUT);
    assert_non_null(strstr(err, "std"));
    const float bad[2] = { NAN, 0 };
    assert_int_equal(dm_ode_err(bad, ref, 1, 2, 1.0, NULL, &r, err), DM_E_NUMERIC);
}

/* ---- spans and refusals ------------------------------------------------------------------ */

static void test_spans(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule edm, vp, ddpm;
    assert_int_equal(dm_schedule_init(&edm, &dm_schedule_edm, &edm_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&ddpm, &dm_schedule_ddpm_linear, &ddpm_o, err), DM_OK);
    dm_sampler_span sp;
    /* EDM's grid ends at sigma = 0: the last Euler step is x0_hat at sigma_min. */
    const dm_euler_sampler_opts eu = { .steps = 32, .denoise = false };
    assert_int_equal(dm_sampler_euler.span(&eu, &edm, &sp, err), DM_OK);
    assert_double_equal(sp.t_first, 80, 0);
    assert_double_equal(sp.t_last, 0.002, 0);
    assert_true(sp.final_denoise);
    /* rk45 integrates the same stretch. */
    const dm_rk45_sampler_opts rk = { .method = DM_RK45_RKF45, .rtol = 1e-5, .atol = 1e-5, .denoise = false };
    assert_int_equal(dm_sampler_rk45.span(&rk, &edm, &sp, err), DM_OK);
    assert_double_equal(sp.t_first, 80, 0);
    assert_double_equal(sp.t_last, 0.002, 0);
    assert_true(sp.final_denoise);
    /* One step on EDM is one jump from sigma_max to 0: nothing to integrate, x0_hat at 80. */
    const dm_heun_sampler_opts h1 = { .steps = 1, .s_max = 1e30, .s_noise = 1, .denoise = true };
    assert_int_equal(dm_sampler_heun.span(&h1, &edm, &sp, err), DM_OK);
    assert_double_equal(sp.t_last, 80, 0);
    /* VP stops at t_end = 1e-3; the final denoise is the option. */
    const dm_dpmpp2m_sampler_opts dp = { .steps = 20, .lower_order_final = true, .denoise = false };
    assert_int_equal(dm_sampler_dpmpp2m.span(&dp, &vp, &sp, err), DM_OK);
    assert_double_equal(sp.t_first, 1, 0);
    assert_double_equal(sp.t_last, 1e-3, 0);
    assert_false(sp.final_denoise);
    /* A discrete grid: from step T-1 to step 0, then x0_hat (the step onto -1). */
    const dm_ddim_sampler_opts dd = { .steps = 50, .eta = 0, .denoise = true };
    assert_int_equal(dm_sampler_ddim.span(&dd, &ddpm, &sp, err), DM_OK);
    assert_double_equal(sp.t_first, 999, 0);
    assert_double_equal(sp.t_last, 0, 0);
    assert_true(sp.final_denoise);
    dm_schedule_free(&edm);
    dm_schedule_free(&vp);
    dm_schedule_free(&ddpm);
}

static void expect_refused(const dm_sampler_ops *ops, const void *opts, const dm_schedule *s, const char *why)
{
    char err[DM_ERR_SIZE] = "";
    assert_int_equal(dm_ode_ref_check(ops, opts, s, err), DM_E_INPUT);
    char name[64];
    snprintf(name, sizeof name, "sampler '%s'", ops->info.name);
    if (!strstr(err, "eval.ode_err") || !strstr(err, why) || !strstr(err, name))
        fail_msg("%s: the refusal does not say '%s': %s", ops->info.name, why, err);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule edm, vp, ddpm;
    assert_int_equal(dm_schedule_init(&edm, &dm_schedule_edm, &edm_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_o, err), DM_OK);
    assert_int_equal(dm_schedule_init(&ddpm, &dm_schedule_ddpm_linear, &ddpm_o, err), DM_OK);
    /* Stochastic samplers, each named with its reason. */
    const dm_ddpm_sampler_opts ddpm_s = { .steps = 100, .variance = DM_VAR_BETA };
    expect_refused(&dm_sampler_ddpm, &ddpm_s, &ddpm, "sampler 'ddpm' is stochastic");
    const dm_em_sampler_opts em = { .steps = 100, .denoise = true };
    expect_refused(&dm_sampler_em, &em, &vp, "sampler 'em' is stochastic");
    const dm_pc_sampler_opts pc = { .steps = 100, .snr = 0.16, .corrector_steps = 1, .denoise = true };
    expect_refused(&dm_sampler_pc, &pc, &vp, "sampler 'pc' is stochastic");
    const dm_ddim_sampler_opts ddim_eta = { .steps = 50, .eta = 0.5, .denoise = true };
    expect_refused(&dm_sampler_ddim, &ddim_eta, &vp, "sampler 'ddim' is stochastic with eta > 0");
    const dm_heun_sampler_opts churn = { .steps = 18, .s_churn = 40, .s_max = 1e30, .s_noise = 1.003 };
    expect_refused(&dm_sampler_heun, &churn, &edm, "sampler 'heun' leaves the PF-ODE with s_churn > 0");
    /* cm, even one-step (deterministic, but no ODE solver). */
    const dm_cm_sampler_opts cm = { .steps = 1 };
    expect_refused(&dm_sampler_cm, &cm, &edm, "sampler 'cm' solves no ODE");
    /* Deterministic DDIM on a discrete schedule: no continuous-time reference. */
    const dm_ddim_sampler_opts ddim0 = { .steps = 50, .eta = 0, .denoise = true };
    expect_refused(&dm_sampler_ddim, &ddim0, &ddpm, "no reference on 'ddpm_linear': it is a discrete schedule");
    /* The deterministic PF-ODE samplers pass. */
    const dm_euler_sampler_opts eu = { .steps = 32, .denoise = true };
    const dm_heun_sampler_opts heun = { .steps = 18, .s_max = 1e30, .s_noise = 1, .denoise = true };
    const dm_dpmpp2m_sampler_opts dp = { .steps = 20, .lower_order_final = true, .denoise = true };
    const dm_rk45_sampler_opts rk = { .method = DM_RK45_RKF45, .rtol = 1e-5, .atol = 1e-5, .denoise = true };
    assert_int_equal(dm_ode_ref_check(&dm_sampler_euler, &eu, &edm, err), DM_OK);
    assert_int_equal(dm_ode_ref_check(&dm_sampler_heun, &heun, &edm, err), DM_OK);
    assert_int_equal(dm_ode_ref_check(&dm_sampler_ddim, &ddim0, &vp, err), DM_OK);
    assert_int_equal(dm_ode_ref_check(&dm_sampler_dpmpp2m, &dp, &vp, err), DM_OK);
    assert_int_equal(dm_ode_ref_check(&dm_sampler_rk45, &rk, &edm, err), DM_OK);
    dm_schedule_free(&edm);
    dm_schedule_free(&vp);
    dm_schedule_free(&ddpm);
}

/* ---- convergence on the exact denoiser --------------------------------------------------- */

/* Least-squares slope of log y against log x. */
static double loglog_slope(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        mx += log(x[i]) / n;
        my += log(y[i]) / n;
    }
    for (int i = 0; i < n; i++) {
        sxy += (log(x[i]) - mx) * (log(y[i]) - my);
        sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
    }
    return sxy / sxx;
}

static void test_convergence(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 500, K = 4 };
    dm_schedule edm;
    assert_int_equal(dm_schedule_init(&edm, &dm_schedule_edm, &edm_o, err), DM_OK);
    mixture m;
    mixture_init(&m);
    /* One reference serves every NFE: on EDM all grids of >= 2 steps span 80 -> 0.002, then x0_hat. */
    const dm_euler_sampler_opts eu0 = { .steps = 32, .denoise = true };
    dm_ode_ref_opts r9, r7;
    assert_int_equal(dm_ode_ref_opts_for(&dm_sampler_euler, &eu0, &edm, DM_ODE_REF_TOL, 0, &r9, err), DM_OK);
    assert_int_equal(dm_ode_ref_opts_for(&dm_sampler_euler, &eu0, &edm, 1e-7, 0, &r7, err), DM_OK);
    int64_t nfe9, nfe7;
    float *ref9 = run(&dm_ode_ref_sampler, &r9, &edm, &m.g, N, N, &nfe9);
    float *ref7 = run(&dm_ode_ref_sampler, &r7, &edm, &m.g, N, N, &nfe7);

    const int nfes[K] = { 32, 64, 128, 256 };
    double x[K], eul[K], heu[K], smallest = INFINITY;
    for (int k = 0; k < K; k++) {
        int64_t nfe;
        const dm_euler_sampler_opts eo = { .steps = nfes[k], .denoise = true };
        float *xe = run(&dm_sampler_euler, &eo, &edm, &m.g, N, N, &nfe);
        assert_int_equal(nfe, nfes[k]);
        /* Heun at the same NFE: 2N - 1 = NFE + 1 (one more evaluation than Euler). */
        const dm_heun_sampler_opts ho = { .steps = nfes[k] / 2 + 1, .s_max = 1e30, .s_noise = 1, .denoise = true };
        float *xh = run(&dm_sampler_heun, &ho, &edm, &m.g, N, N, &nfe);
        x[k] = nfes[k];
        eul[k] = mean_err(xe, ref9, N, NULL);
        heu[k] = mean_err(xh, ref9, N, NULL);
        smallest = fmin(smallest, fmin(eul[k], heu[k]));
        printf("    NFE %3d: euler ode_err %.4e, heun (NFE %lld) %.4e\n", nfes[k], eul[k], (long long)nfe, heu[k]);
        free(xe);
        free(xh);
    }
    double dmax;
    const double d79 = mean_err(ref7, ref9, N, &dmax);
    const double se = loglog_slope(x, eul, K), sh = loglog_slope(x, heu, K);
    printf("    reference NFE %lld (1e-9), %lld (1e-7); |ref 1e-7 - ref 1e-9|: mean %.3e, max %.3e; smallest "
           "ode_err %.3e\n    slopes: euler %.3f, heun %.3f\n",
           (long long)nfe9, (long long)nfe7, d79, dmax, smallest, se, sh);
    /* The reference has converged: tightening it 100-fold moves it by < 1% of the smallest error
     * it is used to measure (each sample, not only on average). */
    assert_true(dmax < 0.01 * smallest);
    /* Euler is first order, Heun second (its error falls 4x per doubling from 64 NFE on). */
    assert_true(se >= -1.2 && se <= -0.8);
    assert_true(loglog_slope(x + 1, heu + 1, K - 1) <= -1.7);
    free(ref9);
    free(ref7);
    dm_schedule_free(&edm);
}

/* The reference does not depend on the denoiser's batch size (and rows past n are left alone). */
static void test_batching(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule vp;
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_o, err), DM_OK);
    mixture m;
    mixture_init(&m);
    const dm_ddim_sampler_opts dd = { .steps = 50, .eta = 0, .denoise = true };
    dm_ode_ref_opts ro;
    assert_int_equal(dm_ode_ref_opts_for(&dm_sampler_ddim, &dd, &vp, 1e-8, 64, &ro, err), DM_OK);
    int64_t n1, n2;
    float *a = run(&dm_ode_ref_sampler, &ro, &vp, &m.g, 100, 100, &n1);
    float *b = run(&dm_ode_ref_sampler, &ro, &vp, &m.g, 100, 7, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, sizeof(float) * 64 * 2);
    /* Rows 64..99 are the initial noise, N(0, 1) on VP: far from the data's circle of radius 2. */
    double ss = 0;
    for (size_t q = 64 * 2; q < 100 * 2; q++)
        ss += (double)a[q] * a[q];
    assert_true(ss / 72 < 2.0);
    /* DDIM's own error against it is small at 50 steps and shrinks with more. */
    int64_t nfe;
    float *x50 = run(&dm_sampler_ddim, &dd, &vp, &m.g, 64, 64, &nfe);
    const dm_ddim_sampler_opts dd2 = { .steps = 200, .eta = 0, .denoise = true };
    float *x200 = run(&dm_sampler_ddim, &dd2, &vp, &m.g, 64, 64, &nfe);
    const double e50 = mean_err(x50, a, 64, NULL), e200 = mean_err(x200, a, 64, NULL);
    printf("    ddim on vp: ode_err %.3e at 50 steps, %.3e at 200\n", e50, e200);
    assert_true(e50 < 0.05 && e200 < e50 / 2.5);
    free(a);
    free(b);
    free(x50);
    free(x200);
    dm_schedule_free(&vp);
}

/* ---- recorded through train/record.c ------------------------------------------------------ */

static const char spec_text[] =
    "name: t\n"
    "data: {type: eight_gaussians}\n"
    "model: analytic\n"
    "diffusion: {schedule: {type: edm}, param: {type: edm, sigma_data: 0.5}, loss: {type: mse, target: x0, "
    "weighting: edm}}\n"
    "sampler: {type: euler, steps: 16}\n"
    "train: {n_data: 2000, steps: 20, batch: 64}\n"
    "eval: {n_samples: 300, n_ref: 300, ode_err: true, ode_err_n: 200}\n";

static dm_status load(int n_over, const char *const *over, dm_spec **spec, char *err)
{
    dm_status st = dm_spec_load_text(&dm_spec_schema, spec_text, "<test>", n_over, over, spec, err);
    return st ? st : dm_trainer_check(*spec, err);
}

static const dm_eval *find_eval(const dm_runrec *rec, const char *metric, const char *sampler)
{
    for (size_t i = 0; i < rec->n_evals; i++)
        if (strcmp(rec->evals[i].metric, metric) == 0 && strcmp(rec->evals[i].sampler, sampler) == 0)
            return &rec->evals[i];
    fail_msg("no eval %s of %s", metric, sampler);
    return NULL;
}

static size_t count_refs(const dm_runrec *rec, dm_sample_set **last)
{
    size_t k = 0;
    for (size_t i = 0; i < rec->n_samples; i++)
        if (strcmp(rec->samples[i].sampler, "ode_ref") == 0) {
            k++;
            *last = &rec->samples[i];
        }
    return k;
}

static void record(dm_trainer *tr, const dm_sampler_ops *ops, const void *opts, dm_runrec *rec)
{
    char err[DM_ERR_SIZE];
    dm_eval_result res;
    int64_t nfe;
    if (dm_sample_record(tr, ops, opts, rec, 0, NULL, &res, &nfe, NULL, err))
        fail_msg("%s", err);
}

static void test_record_reuse(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_spec *spec = NULL;
    dm_trainer tr;
    dm_runrec rec;
    dm_runrec_init(&rec);
    assert_int_equal(load(0, NULL, &spec, err), DM_OK);
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    record(&tr, tr.sampler, tr.sampler_opts, &rec);
    dm_sample_set *ref = NULL;
    assert_int_equal(count_refs(&rec, &ref), 1);
    assert_int_equal(ref->n, 200);
    assert_non_null(strstr(ref->settings_json, "\"t_first\":8e+01,\"t_last\":0.002,\"denoise\":true"));
    assert_non_null(strstr(ref->settings_json, "\"rtol\":1e-09,\"atol\":1e-09,\"n\":200,\"model\":\"analytic\""));
    const dm_eval *e = find_eval(&rec, "ode_err", "euler");
    const double e_euler = e->value;
    assert_int_equal(e->n_samples, 200);
    assert_true(e_euler > 0.005 && e_euler < 0.05);
    assert_true(find_eval(&rec, "ode_err_median", "euler")->value < e_euler);
    /* Through run.h5 and back (as `difflab sample` finds it): the settings must match to the byte. */
    char dir[512], path[600];
    const char *base = getenv("DIFFLAB_TEST_TMP");
    mkdir(base && *base ? base : "/tmp", 0777);
    snprintf(dir, sizeof dir, "%s/ode_err.XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run.h5", dir);
    if (dm_runlog_write(path, &rec, err))
        fail_msg("%s", err);
    dm_runrec_free(&rec);
    dm_runrec_init(&rec);
    if (dm_runlog_read(path, &rec, err))
        fail_msg("%s", err);
    remove(path);
    rmdir(dir);
    assert_int_equal(count_refs(&rec, &ref), 1);
    /* Plant a change in the stored reference: a later sampler must measure against it. A shift of
     * 1 in the first coordinate is an RMS of 1/sqrt(2), about 0.5 data stds. */
    for (int64_t i = 0; i < ref->n; i++)
        ref->x[2 * i] += 1.0f;
    const dm_heun_sampler_opts heun = { .steps = 9, .s_max = 1e30, .s_noise = 1, .denoise = true };
    record(&tr, &dm_sampler_heun, &heun, &rec);
    assert_int_equal(count_refs(&rec, &ref), 1);
    const double e_heun = find_eval(&rec, "ode_err", "heun")->value;
    printf("    euler 16 steps: ode_err %.4f; heun 9 steps against the planted reference: %.4f\n", e_euler, e_heun);
    assert_true(e_heun > 0.4 && e_heun < 0.6);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
    dm_runrec_free(&rec);

    /* A network: one reference per set of weights (EMA or training weights) in one record. */
    const char *net[2][2] = { { "model={type: mlp, width: 16, depth: 2}", "eval.use_ema=true" },
                              { "model={type: mlp, width: 16, depth: 2}", "eval.use_ema=false" } };
    const char *want[2] = { "\"model\":\"ema\"", "\"model\":\"weights\"" };
    dm_runrec_init(&rec);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(load(2, net[k], &spec, err), DM_OK);
        assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
        double loss, gn;
        for (int i = 0; i < 20; i++)
            assert_int_equal(dm_trainer_step(&tr, &loss, &gn, err), DM_OK);
        record(&tr, tr.sampler, tr.sampler_opts, &rec);
        assert_int_equal(count_refs(&rec, &ref), (size_t)k + 1);
        assert_non_null(strstr(ref->settings_json, want[k]));
        const double e_net = find_eval(&rec, "ode_err", "euler")->value;
        assert_true(isfinite(e_net) && e_net > 0);
        dm_trainer_free(&tr);
        dm_spec_free(spec);
    }
    dm_runrec_free(&rec);
}

/* The spec check (before anything is written) refuses samplers with no reference. */
static void test_spec_refusal(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_spec *spec = NULL;
    const struct { const char *over[2]; const char *want; } cases[] = {
        { { "sampler={type: heun, s_churn: 40}", NULL }, "sampler 'heun' leaves the PF-ODE with s_churn > 0" },
        { { "sampler={type: cm}", NULL }, "sampler 'cm' solves no ODE" },
        { { "sampler={type: em}", "diffusion.schedule=vp" }, "sampler 'em' is stochastic" },
        { { "sampler={type: ddim}", "diffusion.schedule=cosine" }, "no reference on 'cosine'" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int n = cases[k].over[1] ? 2 : 1;
        const dm_status st = load(n, cases[k].over, &spec, err);
        dm_spec_free(spec);
        spec = NULL;
        if (st != DM_E_INPUT || !strstr(err, cases[k].want) || !strstr(err, "eval.ode_err"))
            fail_msg("%s: status %d, message: %s", cases[k].over[0], st, err);
    }
    /* eval.ode_err off: the same samplers are fine. */
    const char *off[] = { "sampler={type: cm}", "eval.ode_err=false" };
    assert_int_equal(load(2, off, &spec, err), DM_OK);
    dm_spec_free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_convergence),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_record_reuse),
        cmocka_unit_test(test_spec_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
