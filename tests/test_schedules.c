/* The cosine, VP, sub-VP, VE and EDM schedules: closed forms against independently written
 * expressions, derivatives against central differences, SDE coefficients against sde_lib's
 * formulas and the identity g^2 = 2 sigma sigma' - 2 f sigma^2, grids, training-time draws and
 * init errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "diffusion/schedules.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const dm_cosine_schedule_opts cosine_defaults = { .T = 1000, .s = 0.008 };
static const dm_vp_schedule_opts vp_defaults = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5,
                                                 .t_end = 1e-3 };
static const dm_ve_schedule_opts ve_defaults = { .sigma_min = 0.01, .sigma_max = 50, .eps = 1e-5,
                                                 .t_end = 1e-5 };
static const dm_edm_schedule_opts edm_defaults = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7,
                                                   .p_mean = -1.2, .p_std = 1.2 };

static const double ts_unit[] = { 1e-3, 0.05, 0.3, 0.5, 0.77, 1.0 };
#define N_TS_UNIT (sizeof ts_unit / sizeof ts_unit[0])

static int close_rel(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

static void init_ok(dm_schedule *s, const dm_schedule_ops *ops, const void *o)
{
    char err[DM_ERR_SIZE];
    dm_status st = dm_schedule_init(s, ops, o, err);
    if (st)
        fail_msg("init of %s: %s", ops->info.name, err);
}

/* ---------------------------------------------------------------- cosine */

/* improved-diffusion's alpha_bar lambda, written out again. */
static double cos_f(double u, double off)
{
    return pow(cos((u + off) / (1 + off) * M_PI / 2), 2);
}

static void test_cosine(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const double offs[] = { 0.008, 0.1 };
    for (int k = 0; k < 2; k++) {
        dm_cosine_schedule_opts o = cosine_defaults;
        o.s = offs[k];
        dm_schedule s;
        init_ok(&s, &dm_schedule_cosine, &o);
        assert_int_equal(s.discrete, 1);
        assert_int_equal(s.T, 1000);
        assert_true(s.t_min == 0 && s.t_max == 999 && s.prior_std == 1.0);
        assert_null(s.ops->dalpha);
        assert_null(s.ops->dsigma);
        assert_null(s.ops->f);
        assert_null(s.ops->g2);
        /* Unclipped betas and where the clip first bites. */
        int first_clip = -1;
        for (int i = 0; i < 1000 && first_clip < 0; i++)
            if (1 - cos_f((i + 1) / 1000.0, o.s) / cos_f(i / 1000.0, o.s) > 0.999)
                first_clip = i;
        assert_true(first_clip > 990);
        /* Before it: abar_i = f((i+1)/T) / f(0), the paper's eq. 17 at DDPM step i+1. */
        for (int i = 0; i < first_clip; i++) {
            const double want = cos_f((i + 1) / 1000.0, o.s) / cos_f(0, o.s);
            assert_true(close_rel(s.abar[i], want, 1e-10));
            const double a = s.ops->alpha(&s, i), sg = s.ops->sigma(&s, i);
            assert_true(fabs(a * a + sg * sg - 1) < 1e-14);
            assert_true(close_rel(a, sqrt(want), 1e-10));
        }
        /* Every beta <= 0.999, and the last one is exactly the clip. */
        for (int i = 0; i < 1000; i++) {
            const double beta = 1 - s.abar[i] / dm_schedule_abar(&s, i - 1);
            assert_true(beta > 0 && beta <= 0.999 + 1e-12);
        }
        assert_true(fabs(1 - s.abar[999] / s.abar[998] - 0.999) < 1e-9);
        dm_schedule_free(&s);
    }

    /* Paper's point: at s = 0.008 and T = 1000, beta_1 is small (about 4e-5) and abar decays slowly. */
    dm_schedule s;
    init_ok(&s, &dm_schedule_cosine, &cosine_defaults);
    assert_true(1 - s.abar[0] > 3e-5 && 1 - s.abar[0] < 5e-5);
    assert_true(fabs(s.abar[499] - 0.5) < 0.02); /* cos^2 is ~ 1/2 at the middle */
    assert_true(s.ops->c_noise(&s, 17) == 17.0);
    double ts[11];
    assert_int_equal(s.ops->grid(&s, 10, ts, err), DM_OK);
    assert_true(ts[0] == 999 && ts[9] == 0 && ts[10] == -1);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 7, err), DM_OK);
    for (int i = 0; i < 10000; i++) {
        const double t = s.ops->sample_t(&s, &rng);
        assert_true(t >= 0 && t <= 999 && t == floor(t));
    }
    dm_rng_free(&rng);
    dm_schedule_free(&s);

    /* T = 1: one step, beta clipped to 0.999. */
    dm_cosine_schedule_opts o1 = { .T = 1, .s = 0.008 };
    init_ok(&s, &dm_schedule_cosine, &o1);
    assert_true(fabs(s.abar[0] - 0.001) < 1e-12);
    dm_schedule_free(&s);

    /* Allocation failure. */
    dm_alloc_fail_at(1);
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_cosine, &cosine_defaults, err), DM_E_NOMEM);
    dm_alloc_fail_at(0);
    dm_schedule_free(&s);
}

/* ---------------------------------------------------------------- closed forms */

/* VP log alpha as -1/2 int_0^t beta(u) du by Simpson's rule (exact for a linear beta). */
static double vp_log_alpha_quad(double bmin, double bmax, double t)
{
    const int n = 64;
    const double h = t / n;
    double acc = 0;
    for (int i = 0; i <= n; i++) {
        const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        acc += w * (bmin + (i * h) * (bmax - bmin));
    }
    return -0.5 * acc * h / 3;
}

static void test_closed_forms(void **state)
{
    (void)state;
    dm_schedule vp, svp, ve, edm;
    const dm_vp_schedule_opts vo = { .beta_min = 0.3, .beta_max = 12, .eps = 1e-5, .t_end = 1e-3 };
    init_ok(&vp, &dm_schedule_vp, &vo);
    init_ok(&svp, &dm_schedule_subvp, &vo);
    init_ok(&ve, &dm_schedule_ve, &ve_defaults);
    init_ok(&edm, &dm_schedule_edm, &edm_defaults);
    for (size_t k = 0; k < N_TS_UNIT; k++) {
        const double t = ts_unit[k];
        const double la = vp_log_alpha_quad(vo.beta_min, vo.beta_max, t), a = exp(la);
        assert_true(close_rel(vp.ops->alpha(&vp, t), a, 1e-12));
        assert_true(close_rel(vp.ops->sigma(&vp, t), sqrt(1 - a * a), 1e-10));
        assert_true(close_rel(svp.ops->alpha(&svp, t), a, 1e-12));
        assert_true(close_rel(svp.ops->sigma(&svp, t), 1 - a * a, 1e-10));
        /* sub-VP's std is below VP's: (1 - a^2) <= sqrt(1 - a^2). */
        assert_true(svp.ops->sigma(&svp, t) <= vp.ops->sigma(&vp, t));

        assert_true(ve.ops->alpha(&ve, t) == 1.0);
        assert_true(close_rel(ve.ops->sigma(&ve, t), 0.01 * pow(50 / 0.01, t), 1e-12));
        assert_true(close_rel(ve.ops->c_noise(&ve, t), log(0.01 * pow(5000.0, t)), 1e-12));

        assert_true(close_rel(vp.ops->c_noise(&vp, t), 999 * t, 1e-15));
        assert_true(close_rel(svp.ops->c_noise(&svp, t), 999 * t, 1e-15));
    }
    assert_true(close_rel(ve.ops->sigma(&ve, 0), 0.01, 1e-15));
    assert_true(close_rel(ve.ops->sigma(&ve, 1), 50, 1e-12));
    /* At small t, sigma_VP^2 ~ beta_min t: no cancellation in 1 - alpha^2. */
    assert_true(close_rel(pow(vp.ops->sigma(&vp, 1e-12), 2), 0.3e-12, 1e-6));

    const double sig[] = { 0.002, 0.1, 1, 17.5, 80 };
    for (int k = 0; k < 5; k++) {
        assert_true(edm.ops->alpha(&edm, sig[k]) == 1.0);
        assert_true(edm.ops->sigma(&edm, sig[k]) == sig[k]);
        assert_true(close_rel(edm.ops->c_noise(&edm, sig[k]), log(sig[k]) / 4, 1e-15));
    }

    assert_true(vp.discrete == 0 && vp.t_min == 1e-5 && vp.t_max == 1 && vp.prior_std == 1);
    assert_true(svp.discrete == 0 && svp.t_min == 1e-5 && svp.t_max == 1 && svp.prior_std == 1);
    assert_true(ve.discrete == 0 && ve.t_min == 1e-5 && ve.t_max == 1 && ve.prior_std == 50);
    assert_true(edm.discrete == 0 && edm.t_min == 0.002 && edm.t_max == 80 && edm.prior_std == 80);
    assert_null(vp.abar);
    dm_schedule_free(&vp);
    dm_schedule_free(&svp);
    dm_schedule_free(&ve);
    dm_schedule_free(&edm);
}

/* ---------------------------------------------------------------- derivatives and SDE */

typedef double (*tfun)(const dm_schedule *, double);

static void check_derivative(const dm_schedule *s, tfun fn, tfun dfn, double t, const char *what)
{
    const double h = 1e-4 * t;
    const double num = (fn(s, t + h) - fn(s, t - h)) / (2 * h), ana = dfn(s, t);
    if (!(fabs(num - ana) <= 1e-6 * fmax(fabs(num), fabs(ana))))
        fail_msg("%s %s at t = %g: analytic %.17g, central difference %.17g", s->ops->info.name, what, t,
                 ana, num);
}

static void check_continuous(const dm_schedule *s, const double *ts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const double t = ts[k];
        check_derivative(s, s->ops->alpha, s->ops->dalpha, t, "dalpha");
        check_derivative(s, s->ops->sigma, s->ops->dsigma, t, "dsigma");
        /* f = alpha'/alpha and g^2 = 2 sigma sigma' - 2 f sigma^2: the SDE whose marginals are
         * N(alpha x0, sigma^2). */
        const double a = s->ops->alpha(s, t), da = s->ops->dalpha(s, t);
        const double sg = s->ops->sigma(s, t), dsg = s->ops->dsigma(s, t);
        const double f = s->ops->f(s, t), g2 = s->ops->g2(s, t);
        assert_true(close_rel(f, da / a, 1e-12) || (f == 0 && da == 0));
        const double g2_id = 2 * sg * dsg - 2 * f * sg * sg;
        if (!close_rel(g2, g2_id, 1e-10))
            fail_msg("%s g2 at t = %g: %.17g, identity gives %.17g", s->ops->info.name, t, g2, g2_id);
    }
}

static void test_derivatives_and_sde(void **state)
{
    (void)state;
    dm_schedule vp, svp, ve, edm;
    init_ok(&vp, &dm_schedule_vp, &vp_defaults);
    init_ok(&svp, &dm_schedule_subvp, &vp_defaults);
    init_ok(&ve, &dm_schedule_ve, &ve_defaults);
    init_ok(&edm, &dm_schedule_edm, &edm_defaults);
    /* Open interval (central differences need t +- h), with the endpoints approached. */
    const double tu[] = { 1e-3, 0.05, 0.3, 0.5, 0.77, 0.999 };
    check_continuous(&vp, tu, 6);
    check_continuous(&svp, tu, 6);
    check_continuous(&ve, tu, 6);
    const double sig[] = { 0.002, 0.1, 1, 17.5, 80 };
    check_continuous(&edm, sig, 5);

    /* f and g^2 against sde_lib.py (VPSDE.sde, subVPSDE.sde, VESDE.sde) and EDM's d sigma^2/dt. */
    for (size_t k = 0; k < N_TS_UNIT; k++) {
        const double t = ts_unit[k], beta = 0.1 + t * (20 - 0.1);
        assert_true(close_rel(vp.ops->f(&vp, t), -0.5 * beta, 1e-14));
        assert_true(close_rel(vp.ops->g2(&vp, t), pow(sqrt(beta), 2), 1e-14));
        assert_true(close_rel(svp.ops->f(&svp, t), -0.5 * beta, 1e-14));
        const double discount = 1 - exp(-2 * 0.1 * t - (20 - 0.1) * t * t);
        assert_true(close_rel(svp.ops->g2(&svp, t), beta * discount, 1e-12));
        assert_true(ve.ops->f(&ve, t) == 0);
        const double ve_g = 0.01 * pow(5000.0, t) * sqrt(2 * (log(50.0) - log(0.01)));
        assert_true(close_rel(ve.ops->g2(&ve, t), ve_g * ve_g, 1e-12));
    }
    for (int k = 0; k < 5; k++) {
        assert_true(edm.ops->f(&edm, sig[k]) == 0);
        assert_true(edm.ops->g2(&edm, sig[k]) == 2 * sig[k]);
        assert_true(edm.ops->dsigma(&edm, sig[k]) == 1 && edm.ops->dalpha(&edm, sig[k]) == 0);
    }
    dm_schedule_free(&vp);
    dm_schedule_free(&svp);
    dm_schedule_free(&ve);
    dm_schedule_free(&edm);
}

/* ---------------------------------------------------------------- grids */

static void check_decreasing(const double *ts, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(ts[i] > ts[i + 1]);
}

static void test_edm_grid(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    init_ok(&s, &dm_schedule_edm, &edm_defaults);
    double ts[65];
    ts[19] = 12345; /* sentinel: nothing written past n_steps */
    assert_int_equal(s.ops->grid(&s, 18, ts, err), DM_OK);
    assert_true(ts[0] == 80 && ts[17] == 0.002 && ts[18] == 0 && ts[19] == 12345);
    check_decreasing(ts, 18);
    for (int i = 0; i < 18; i++) {
        const double want = pow(pow(80, 1 / 7.0) + i / 17.0 * (pow(0.002, 1 / 7.0) - pow(80, 1 / 7.0)), 7);
        assert_true(close_rel(ts[i], want, 1e-13));
    }
    /* Known value: the second of EDM's 18-step CIFAR grid, about 57.58. */
    assert_true(fabs(ts[1] - 57.5855) < 1e-3);
    /* Step sizes shrink toward sigma_min (rho = 7 concentrates steps at small sigma). */
    for (int i = 0; i + 2 < 18; i++)
        assert_true(ts[i] - ts[i + 1] > ts[i + 1] - ts[i + 2]);

    for (int n = 1; n <= 64; n *= 2) {
        assert_int_equal(s.ops->grid(&s, n, ts, err), DM_OK);
        assert_true(ts[0] == 80 && ts[n] == 0);
        if (n > 1)
            assert_true(ts[n - 1] == 0.002);
        check_decreasing(ts, n);
    }
    assert_int_equal(s.ops->grid(&s, 1, ts, err), DM_OK);
    assert_true(ts[0] == 80 && ts[1] == 0);
    assert_int_equal(s.ops->grid(&s, 0, ts, err), DM_E_INPUT);
    dm_schedule_free(&s);

    /* rho = 1: linear in sigma. */
    dm_edm_schedule_opts o = edm_defaults;
    o.rho = 1;
    init_ok(&s, &dm_schedule_edm, &o);
    assert_int_equal(s.ops->grid(&s, 10, ts, err), DM_OK);
    for (int i = 0; i < 10; i++)
        assert_true(fabs(ts[i] - (80 + i / 9.0 * (0.002 - 80))) < 1e-12);
    assert_true(ts[10] == 0);
    dm_schedule_free(&s);
}

static void check_linspace(const dm_schedule *s, double t_end)
{
    char err[DM_ERR_SIZE];
    double ts[101];
    const int ns[] = { 1, 2, 7, 100 };
    for (int k = 0; k < 4; k++) {
        const int n = ns[k];
        assert_int_equal(s->ops->grid(s, n, ts, err), DM_OK);
        assert_true(ts[0] == 1.0 && ts[n] == t_end);
        check_decreasing(ts, n);
        for (int i = 0; i <= n; i++)
            assert_true(fabs(ts[i] - (1 + (t_end - 1) * i / (double)n)) < 1e-15);
    }
    assert_int_equal(s->ops->grid(s, 0, ts, err), DM_E_INPUT);
    assert_int_equal(s->ops->grid(s, -3, ts, err), DM_E_INPUT);
}

static void test_sde_grids(void **state)
{
    (void)state;
    dm_schedule s;
    init_ok(&s, &dm_schedule_vp, &vp_defaults);
    check_linspace(&s, 1e-3);
    dm_schedule_free(&s);
    init_ok(&s, &dm_schedule_subvp, &vp_defaults);
    check_linspace(&s, 1e-3);
    dm_schedule_free(&s);
    init_ok(&s, &dm_schedule_ve, &ve_defaults);
    check_linspace(&s, 1e-5);
    dm_schedule_free(&s);
}

/* ---------------------------------------------------------------- training times */

static void test_sample_t(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 2024, err), DM_OK);
    const int n = 100000;

    /* U(eps, 1) for vp, subvp and ve (a large eps makes the lower end visible). */
    const dm_schedule_ops *uni[] = { &dm_schedule_vp, &dm_schedule_subvp, &dm_schedule_ve };
    dm_vp_schedule_opts vo = vp_defaults;
    vo.eps = 0.2;
    dm_ve_schedule_opts veo = ve_defaults;
    veo.eps = 0.2;
    const void *uo[] = { &vo, &vo, &veo };
    for (int k = 0; k < 3; k++) {
        dm_schedule s;
        init_ok(&s, uni[k], uo[k]);
        double sum = 0, lo = 1, hi = 0;
        for (int i = 0; i < n; i++) {
            const double t = s.ops->sample_t(&s, &rng);
            assert_true(t >= s.t_min && t <= s.t_max);
            sum += t;
            lo = fmin(lo, t);
            hi = fmax(hi, t);
        }
        assert_true(fabs(sum / n - 0.6) < 0.005);
        assert_true(lo < 0.201 && hi > 0.999);
        dm_schedule_free(&s);
    }

    /* EDM: ln sigma ~ N(p_mean, p_std^2). */
    dm_edm_schedule_opts eo = edm_defaults;
    const double means[] = { -1.2, 0.5 }, stds[] = { 1.2, 0.3 };
    for (int k = 0; k < 2; k++) {
        eo.p_mean = means[k];
        eo.p_std = stds[k];
        dm_schedule s;
        init_ok(&s, &dm_schedule_edm, &eo);
        double m = 0, m2 = 0;
        for (int i = 0; i < n; i++) {
            const double sg = s.ops->sample_t(&s, &rng);
            assert_true(sg > 0 && isfinite(sg));
            const double l = log(sg);
            m += l;
            m2 += l * l;
        }
        m /= n;
        const double sd = sqrt(m2 / n - m * m);
        /* standard errors: p_std / sqrt(n) ~ 0.004 for the mean, ~ 0.003 for the std */
        assert_true(fabs(m - means[k]) < 0.02);
        assert_true(fabs(sd - stds[k]) < 0.015);
        dm_schedule_free(&s);
    }
    dm_rng_free(&rng);
}

/* ---------------------------------------------------------------- init errors, tables */

static void expect_error(const dm_schedule_ops *ops, const void *o, const char *msg)
{
    char err[DM_ERR_SIZE] = "";
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, ops, o, err), DM_E_INPUT);
    if (strcmp(err, msg) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", ops->info.name, err, msg);
    dm_schedule_free(&s);
}

static void test_init_errors(void **state)
{
    (void)state;
    dm_vp_schedule_opts vo = vp_defaults;
    vo.beta_min = 25;
    expect_error(&dm_schedule_vp, &vo, "diffusion.schedule.beta_max: 20 is below beta_min (25)");
    expect_error(&dm_schedule_subvp, &vo, "diffusion.schedule.beta_max: 20 is below beta_min (25)");
    vo = vp_defaults;
    vo.eps = 1;
    expect_error(&dm_schedule_vp, &vo, "diffusion.schedule.eps: 1 must be below 1 (training t ~ U(eps, 1))");
    vo = vp_defaults;
    vo.t_end = 1;
    expect_error(&dm_schedule_subvp, &vo,
                 "diffusion.schedule.t_end: 1 must be below 1 (sampling runs from t = 1 down to t_end)");
    /* Constant beta (Ornstein-Uhlenbeck) is allowed. */
    vo = vp_defaults;
    vo.beta_min = vo.beta_max = 2;
    dm_schedule s;
    init_ok(&s, &dm_schedule_vp, &vo);
    assert_true(close_rel(s.ops->alpha(&s, 0.5), exp(-0.5), 1e-15));
    dm_schedule_free(&s);

    dm_ve_schedule_opts veo = ve_defaults;
    veo.sigma_max = 0.01;
    veo.sigma_min = 0.05;
    expect_error(&dm_schedule_ve, &veo, "diffusion.schedule.sigma_max: 0.01 must exceed sigma_min (0.05)");
    veo.sigma_max = 0.05;
    expect_error(&dm_schedule_ve, &veo, "diffusion.schedule.sigma_max: 0.05 must exceed sigma_min (0.05)");
    veo = ve_defaults;
    veo.eps = 1;
    expect_error(&dm_schedule_ve, &veo, "diffusion.schedule.eps: 1 must be below 1 (training t ~ U(eps, 1))");
    veo = ve_defaults;
    veo.t_end = 1;
    expect_error(&dm_schedule_ve, &veo,
                 "diffusion.schedule.t_end: 1 must be below 1 (sampling runs from t = 1 down to t_end)");

    dm_edm_schedule_opts eo = edm_defaults;
    eo.sigma_min = 100;
    expect_error(&dm_schedule_edm, &eo, "diffusion.schedule.sigma_max: 80 must exceed sigma_min (100)");

    dm_cosine_schedule_opts co = { .T = 0, .s = 0.008 };
    expect_error(&dm_schedule_cosine, &co, "diffusion.schedule.T: 0 must be at least 1");
}

/* Names, sizes, and option tables whose defaults are the values above and within their bounds. */
static void check_table(const dm_schedule_ops *ops, const char *name, size_t size, const void *defaults)
{
    assert_string_equal(ops->info.name, name);
    assert_int_equal(ops->info.opts_size, size);
    assert_non_null(ops->info.doc);
    assert_non_null(ops->init);
    assert_non_null(ops->alpha);
    assert_non_null(ops->sigma);
    assert_non_null(ops->c_noise);
    assert_non_null(ops->sample_t);
    assert_non_null(ops->grid);
    for (const dm_param_desc *p = ops->info.params; p->name; p++) {
        assert_non_null(p->doc);
        assert_true(p->offset < size);
        if (p->type == DM_OPT_CHOICE) {   /* the default is one of the choices, at its index */
            int k = 0, idx;
            while (p->choices[k] && strcmp(p->choices[k], p->def) != 0)
                k++;
            assert_non_null(p->choices[k]);
            memcpy(&idx, (const char *)defaults + p->offset, sizeof idx);
            assert_int_equal(idx, k);
            continue;
        }
        char *end;
        const double v = strtod(p->def, &end);
        assert_true(*end == 0);
        assert_true(v >= p->min && v <= p->max);
        const char *base = (const char *)defaults + p->offset;
        double have;
        if (p->type == DM_OPT_INT) {
            int64_t iv;
            memcpy(&iv, base, sizeof iv);
            have = (double)iv;
        } else {
            assert_int_equal(p->type, DM_OPT_REAL);
            memcpy(&have, base, sizeof have);
        }
        if (have != v)
            fail_msg("%s.%s: default %s, test defaults %g", name, p->name, p->def, have);
    }
}

/* dm_schedule_t_at_ratio against closed forms: VP's sigma/alpha = sqrt(exp(B(t)) - 1) with
 * B(t) = beta_min t + (beta_max - beta_min) t^2 / 2, so B(t) = ln(1 + r^2); sub-VP's =
 * (1 - alpha^2)/alpha, so alpha = (sqrt(r^2 + 4) - r)/2; VE's t = ln(r/sigma_min)/ln(sigma_max/sigma_min);
 * EDM's t = r. A discrete schedule and a ratio the schedule does not reach are refused. */
static void test_t_at_ratio(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule vp, svp, ve, edm, cos;
    const dm_vp_schedule_opts vo = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };
    init_ok(&vp, &dm_schedule_vp, &vo);
    init_ok(&svp, &dm_schedule_subvp, &vo);
    init_ok(&ve, &dm_schedule_ve, &ve_defaults);
    init_ok(&edm, &dm_schedule_edm, &edm_defaults);
    init_ok(&cos, &dm_schedule_cosine, &cosine_defaults);
    const double rs[] = { 1e-3, 0.02, 0.5, 3.0, 40.0 };
    for (size_t k = 0; k < sizeof rs / sizeof rs[0]; k++) {
        const double r = rs[k], bmin = vo.beta_min, db = vo.beta_max - vo.beta_min;
        double t;
        /* VP: solve bmin t + db t^2 / 2 = ln(1 + r^2). */
        const double B = log1p(r * r), t_vp = (-bmin + sqrt(bmin * bmin + 2 * db * B)) / db;
        if (t_vp <= 1) {
            assert_int_equal(dm_schedule_t_at_ratio(&vp, r, "k", &t, err), DM_OK);
            assert_true(close_rel(t, t_vp, 1e-12));
        }
        const double a = (sqrt(r * r + 4) - r) / 2, Bs = -2 * log(a);
        const double t_svp = (-bmin + sqrt(bmin * bmin + 2 * db * Bs)) / db;
        if (t_svp <= 1) {
            assert_int_equal(dm_schedule_t_at_ratio(&svp, r, "k", &t, err), DM_OK);
            assert_true(close_rel(t, t_svp, 1e-10));
        }
        if (r > 0.01) {
            assert_int_equal(dm_schedule_t_at_ratio(&ve, r, "k", &t, err), DM_OK);
            assert_true(close_rel(t, log(r / 0.01) / log(50 / 0.01), 1e-12));
        }
        assert_int_equal(dm_schedule_t_at_ratio(&edm, r, "k", &t, err), DM_OK);
        assert_true(close_rel(t, r, 1e-14));
    }
    double t;
    assert_int_equal(dm_schedule_t_at_ratio(&ve, 0.005, "eval.nll_sigma", &t, err), DM_E_INPUT);
    assert_non_null(strstr(err, "eval.nll_sigma: sigma/alpha = 0.005 is outside the schedule 've'"));
    assert_int_equal(dm_schedule_t_at_ratio(&edm, 81, "eval.nll_sigma", &t, err), DM_E_INPUT);
    assert_int_equal(dm_schedule_t_at_ratio(&cos, 0.5, "eval.nll_sigma", &t, err), DM_E_INPUT);
    assert_non_null(strstr(err, "discrete"));
    dm_schedule_free(&vp);
    dm_schedule_free(&svp);
    dm_schedule_free(&ve);
    dm_schedule_free(&edm);
    dm_schedule_free(&cos);
}

static void test_tables(void **state)
{
    (void)state;
    check_table(&dm_schedule_cosine, "cosine", sizeof(dm_cosine_schedule_opts), &cosine_defaults);
    check_table(&dm_schedule_vp, "vp", sizeof(dm_vp_schedule_opts), &vp_defaults);
    check_table(&dm_schedule_subvp, "subvp", sizeof(dm_vp_schedule_opts), &vp_defaults);
    check_table(&dm_schedule_ve, "ve", sizeof(dm_ve_schedule_opts), &ve_defaults);
    check_table(&dm_schedule_edm, "edm", sizeof(dm_edm_schedule_opts), &edm_defaults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_closed_forms),
        cmocka_unit_test(test_derivatives_and_sde),
        cmocka_unit_test(test_edm_grid),
        cmocka_unit_test(test_sde_grids),
        cmocka_unit_test(test_sample_t),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_t_at_ratio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
