/* The mse loss: dL/dF of every (parameterization x target x weighting) by central differences,
 * each weighting's lambda on a hand-computed row, the equivalences between spaces (losses.h), the
 * unweighted eps loss bit-for-bit equal to the previous L_simple, and check(). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/schedules.h"

/* A test-only continuous VP schedule: alpha = cos(pi t/2), sigma = sin(pi t/2); its SDE
 * (schedule.h: f = alpha'/alpha, g^2 = 2 sigma sigma' - 2 f sigma^2) has g^2 = pi sigma/alpha. */
static double vp_a(const dm_schedule *s, double t) { (void)s; return cos(M_PI / 2 * t); }
static double vp_s(const dm_schedule *s, double t) { (void)s; return sin(M_PI / 2 * t); }
static double vp_g2(const dm_schedule *s, double t) { (void)s; return M_PI * tan(M_PI / 2 * t); }
static double one(const dm_schedule *s, double t) { (void)s; (void)t; return 1.0; }
static double ident(const dm_schedule *s, double t) { (void)s; return t; }

static const dm_schedule_ops vp_ops = { .info = { "test_vp", "cos / sin", NULL, 0 },
                                        .alpha = vp_a, .sigma = vp_s, .g2 = vp_g2 };
static const dm_schedule_ops ve_ops = { .info = { "test_ve", "alpha 1, sigma t", NULL, 0 },
                                        .alpha = one, .sigma = ident };

static const dm_param_ops *const all_params[] = { &dm_param_eps, &dm_param_x0, &dm_param_v,
                                                  &dm_param_score, &dm_param_edm };
enum { N_PARAMS = 5, N_TARGETS = 4, N_WEIGHTINGS = 6 };

/* A batch of N rows on the test VP schedule; F values are multiples of 1/16 so that F +- 1/64 is
 * exact in float and the central difference of the (quadratic) loss is exact up to rounding. */
enum { N = 4, D = 3 };
typedef struct fixture {
    dm_schedule sched;
    float xt[N * D], F[N * D], x0[N * D], eps[N * D];
    double t[N], al[N], sg[N];
    dm_param_coef c[N];
    dm_loss_batch b;
} fixture;

static void fixture_init(fixture *fx, const dm_param_ops *p, double sigma_data)
{
    static const float x0[N * D] = { 1, 0, -0.5f, 0.25f, 1, 0.75f, -1, -0.25f, 0.5f, 2, -1.5f, 0.125f };
    static const float eps[N * D] = { 0.25f, -0.125f, 0.75f,  0.375f, -0.5f,  0.875f,
                                      -1.25f, 0.625f, 0.0625f, 1.125f, -0.75f, 0.5f };
    static const double t[N] = { 0.2, 0.45, 0.7, 0.9 };
    memset(fx, 0, sizeof *fx);
    fx->sched = (dm_schedule){ .ops = &vp_ops, .t_min = 1e-3, .t_max = 1.0 };
    memcpy(fx->x0, x0, sizeof x0);
    memcpy(fx->eps, eps, sizeof eps);
    for (int i = 0; i < N; i++) {
        fx->t[i] = t[i];
        fx->al[i] = vp_a(NULL, t[i]);
        fx->sg[i] = vp_s(NULL, t[i]);
        p->coef(NULL, fx->al[i], fx->sg[i], sigma_data, &fx->c[i]);
        for (int j = 0; j < D; j++) {
            const int k = i * D + j;
            fx->xt[k] = (float)(fx->al[i] * x0[k] + fx->sg[i] * eps[k]);
            fx->F[k] = (float)((k * 37 % 23) - 11) / 16.0f;   /* in [-11/16, 11/16] */
        }
    }
    fx->b = (dm_loss_batch){ .n = N, .d = D, .x_t = fx->xt, .F = fx->F, .x0 = fx->x0, .eps = fx->eps,
                             .t = fx->t, .alpha = fx->al, .sigma = fx->sg, .coef = fx->c,
                             .sched = &fx->sched, .sigma_data = sigma_data };
}

/* Dyadic alpha, sigma (not VP: the conversions between spaces hold for any alpha, sigma), so that
 * x_t = alpha x0 + sigma eps is exact in float and the spaces' errors are exactly proportional. */
static void fixture_dyadic(fixture *fx, const dm_param_ops *p, double sigma_data)
{
    static const double al[N] = { 0.875, 0.75, 0.5, 0.25 }, sg[N] = { 0.25, 0.5, 0.75, 1.5 };
    fixture_init(fx, p, sigma_data);
    for (int i = 0; i < N; i++) {
        fx->al[i] = al[i];
        fx->sg[i] = sg[i];
        p->coef(NULL, al[i], sg[i], sigma_data, &fx->c[i]);
        for (int j = 0; j < D; j++) {
            const int k = i * D + j;
            const double x = al[i] * fx->x0[k] + sg[i] * fx->eps[k];
            fx->xt[k] = (float)x;
            assert_true(fx->xt[k] == x);
        }
    }
}

static void test_gradient_all_combinations(void **state)
{
    (void)state;
    static fixture fx;
    int n_checked = 0;
    for (int p = 0; p < N_PARAMS; p++) {
        fixture_init(&fx, all_params[p], 0.5);
        for (int target = 0; target < N_TARGETS; target++) {
            for (int w = 0; w < N_WEIGHTINGS; w++) {
                const dm_mse_opts o = { .target = target, .weighting = w, .gamma = 1.5 };
                float dF[N * D], scratch[N * D];
                const double L = dm_loss_mse.eval(&o, &fx.b, dF);
                assert_true(isfinite(L) && L > 0);
                for (int k = 0; k < N * D; k++) {
                    const float h = 1.0f / 64.0f, keep = fx.F[k];
                    fx.F[k] = keep + h;
                    const double lp = dm_loss_mse.eval(&o, &fx.b, scratch);
                    fx.F[k] = keep - h;
                    const double lm = dm_loss_mse.eval(&o, &fx.b, scratch);
                    fx.F[k] = keep;
                    const double fd = (lp - lm) / (2.0 * h);
                    /* dF is stored in float: relative 1e-6 covers its rounding (6e-8). */
                    if (!(fabs(fd - dF[k]) <= 1e-6 * fabs(fd) + 1e-12 * L))
                        fail_msg("param %s target %d weighting %d k %d: fd %.10g dF %.10g",
                                 all_params[p]->info.name, target, w, k, fd, (double)dF[k]);
                    n_checked++;
                }
            }
        }
    }
    assert_int_equal(n_checked, N_PARAMS * N_TARGETS * N_WEIGHTINGS * N * D);
}

/* lambda = L(weighting) / L(none) for a one-row batch. */
static double lambda_of(const dm_loss_batch *b, int target, int weighting, double gamma)
{
    const dm_mse_opts o0 = { .target = target, .weighting = DM_MSE_W_NONE };
    const dm_mse_opts o = { .target = target, .weighting = weighting, .gamma = gamma };
    float dF[8];
    return dm_loss_mse.eval(&o, b, dF) / dm_loss_mse.eval(&o0, b, dF);
}

static void test_weights_hand_row(void **state)
{
    (void)state;
    /* One row at alpha = 0.6, sigma = 0.8 (SNR = 0.5625) on the test VP schedule, where
     * tan(pi t/2) = 4/3 so g^2 = 4 pi/3. */
    dm_schedule sched = { .ops = &vp_ops, .t_min = 1e-3, .t_max = 1.0 };
    double t = 2.0 / M_PI * atan(4.0 / 3.0), al = 0.6, sg = 0.8;
    float x0[2] = { 1.0f, -0.5f }, eps[2] = { 0.3f, 0.9f }, xt[2], F[2] = { 0.25f, -0.125f };
    for (int j = 0; j < 2; j++)
        xt[j] = (float)(al * x0[j] + sg * eps[j]);
    dm_param_coef c;
    dm_param_eps.coef(NULL, al, sg, 1.0, &c);
    const dm_loss_batch b = { .n = 1, .d = 2, .x_t = xt, .F = F, .x0 = x0, .eps = eps, .t = &t,
                              .alpha = &al, .sigma = &sg, .coef = &c, .sched = &sched, .sigma_data = 0.5 };
    const double tol = 1e-12;
    for (int target = 0; target < N_TARGETS; target++) {
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_NONE, 5) - 1.0) < tol);
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_SIGMA2, 5) - 0.64) < tol);
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_G2, 5) - 4.0 * M_PI / 3.0) < tol);
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_SNR, 5) - 0.5625) < tol);
    }
    /* min_snr, gamma 5 (SNR below gamma, not clipped): x0 min(SNR, 5) = 0.5625; eps
     * min(SNR, 5)/SNR = 1; v min(SNR, 5)/(SNR + 1) = 0.36; score 0.5625 * sigma^4/alpha^2 = 0.64. */
    const double ms5[N_TARGETS] = { 1.0, 0.5625, 0.36, 0.64 };
    /* gamma 0.25 (clipped): x0 0.25; eps 0.25/0.5625; v 0.25/1.5625 = 0.16; score 0.25 * 0.4096/0.36. */
    const double ms025[N_TARGETS] = { 0.25 / 0.5625, 0.25, 0.16, 0.25 * 0.4096 / 0.36 };
    /* edm, sd 0.5: s~ = 4/3, w0 = (16/9 + 1/4)/((16/9)(1/4)) = 73/16 in x0 space; eps: w0 s~^2 =
     * 73/9; v: w0 sigma^2 = 2.92; score: w0 sigma^4/alpha^2 = 73 * 0.64/9. */
    const double edm[N_TARGETS] = { 73.0 / 9.0, 73.0 / 16.0, 2.92, 73.0 * 0.64 / 9.0 };
    for (int target = 0; target < N_TARGETS; target++) {
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_MIN_SNR, 5) - ms5[target]) < tol);
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_MIN_SNR, 0.25) - ms025[target]) < tol);
        /* sigma_data from the batch: the run's one sigma_data. */
        assert_true(fabs(lambda_of(&b, target, DM_MSE_W_EDM, 5) - edm[target]) < 1e-11);
    }
    dm_loss_batch b2 = b;
    b2.sigma_data = 3.0;   /* another sigma_data, another weight: (16/9 + 9)/((16/9) 9) */
    assert_true(fabs(lambda_of(&b2, DM_MSE_X0, DM_MSE_W_EDM, 5) - (16.0 / 9 + 9) / (16.0 / 9 * 9)) < 1e-11);

    /* EDMLoss at alpha = 1: lambda(sigma) = (sigma^2 + sd^2)/(sigma sd)^2 = 8 at sigma = sd = 0.5. */
    double a1 = 1.0, s1 = 0.5;
    b2 = b;
    b2.sigma_data = 0.5;
    b2.alpha = &a1;
    b2.sigma = &s1;
    assert_true(fabs(lambda_of(&b2, DM_MSE_X0, DM_MSE_W_EDM, 5) - 8.0) < 1e-12);
}

static void test_space_equivalences(void **state)
{
    (void)state;
    static fixture fx;
    float dF[N * D];
    for (int p = 0; p < N_PARAMS; p++) {
        if (all_params[p] == &dm_param_v)
            continue; /* its coefficients are consistent only where alpha^2 + sigma^2 = 1 */
        fixture_dyadic(&fx, all_params[p], 0.7);
        /* x0-space weightings: the same loss whatever the target. */
        for (int w = DM_MSE_W_MIN_SNR; w <= DM_MSE_W_EDM; w++) {
            const dm_mse_opts ox = { .target = DM_MSE_X0, .weighting = w, .gamma = 1.5 };
            const double Lx = dm_loss_mse.eval(&ox, &fx.b, dF);
            for (int target = 0; target < N_TARGETS; target++) {
                const dm_mse_opts o = { .target = target, .weighting = w, .gamma = 1.5 };
                assert_true(fabs(dm_loss_mse.eval(&o, &fx.b, dF) - Lx) <= 1e-12 * Lx);
            }
        }
        /* x0 + snr = eps + none (|eps_hat - eps|^2 = SNR |x0_hat - x0|^2); score + sigma2 = eps + none
         * (score_sde's default DSM weighting). */
        const dm_mse_opts x0_snr = { .target = DM_MSE_X0, .weighting = DM_MSE_W_SNR };
        const dm_mse_opts score_s2 = { .target = DM_MSE_SCORE, .weighting = DM_MSE_W_SIGMA2 };
        const dm_mse_opts eps_none = { .target = DM_MSE_EPS, .weighting = DM_MSE_W_NONE };
        const double e = dm_loss_mse.eval(&eps_none, &fx.b, dF);
        assert_true(fabs(dm_loss_mse.eval(&x0_snr, &fx.b, dF) - e) <= 1e-12 * e);
        assert_true(fabs(dm_loss_mse.eval(&score_s2, &fx.b, dF) - e) <= 1e-12 * e);
    }

    /* EDM parameterization + edm weighting (alpha = 1): the network regresses its effective target
     * (x0 - c_skip x)/c_out with unit weight (Karras et al. 2022, Table 1: lambda = 1/c_out^2). */
    fixture_init(&fx, &dm_param_edm, 0.5);
    for (int i = 0; i < N; i++) {
        fx.al[i] = 1.0;
        fx.sg[i] = 0.3 + i;
        dm_param_edm.coef(NULL, 1.0, fx.sg[i], 0.5, &fx.c[i]);
        for (int j = 0; j < D; j++)
            fx.xt[i * D + j] = (float)(fx.x0[i * D + j] + fx.sg[i] * fx.eps[i * D + j]);
    }
    double want = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            const int k = i * D + j;
            const double r = fx.F[k] - (fx.x0[k] - fx.c[i].x_x0 * fx.xt[k]) / fx.c[i].f_x0;
            want += r * r;
        }
    want /= N * D;
    const dm_mse_opts oe = { .target = DM_MSE_X0, .weighting = DM_MSE_W_EDM };
    assert_true(fabs(dm_loss_mse.eval(&oe, &fx.b, dF) - want) <= 1e-12 * want);
}

/* The mse loss before weightings and the v / score targets (commit 0c3d5f0), verbatim in
 * arithmetic: the unweighted eps and x0 losses must not change by a bit. */
static double old_mse(int target, const dm_loss_batch *b, float *dF)
{
    const size_t d = b->d;
    const double scale = 1.0 / ((double)b->n * (double)d);
    double total = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        const dm_param_coef *c = &b->coef[i];
        const double xc = target == DM_MSE_EPS ? c->x_eps : c->x_x0;
        const double fc = target == DM_MSE_EPS ? c->f_eps : c->f_x0;
        const float *tgt = target == DM_MSE_EPS ? b->eps : b->x0;
        double row = 0.0;
        for (size_t j = 0; j < d; j++) {
            const size_t k = i * d + j;
            const double r = xc * b->x_t[k] + fc * b->F[k] - tgt[k];
            row += r * r;
            dF[k] = (float)(2.0 * scale * fc * r);
        }
        total += row;
    }
    return total * scale;
}

static void test_unweighted_equals_l_simple(void **state)
{
    (void)state;
    static fixture fx;
    for (int p = 0; p < N_PARAMS; p++) {
        fixture_init(&fx, all_params[p], 0.5);
        for (int target = DM_MSE_EPS; target <= DM_MSE_X0; target++) {
            float dF[N * D], dF_old[N * D];
            const dm_mse_opts o = { .target = target };   /* weighting none */
            const double L = dm_loss_mse.eval(&o, &fx.b, dF), L_old = old_mse(target, &fx.b, dF_old);
            assert_memory_equal(&L, &L_old, sizeof L);
            assert_memory_equal(dF, dF_old, sizeof dF);
        }
    }
    /* And L_simple by hand with the eps parameterization: mean (F - eps)^2. */
    fixture_init(&fx, &dm_param_eps, 0.5);
    double want = 0.0;
    for (int k = 0; k < N * D; k++)
        want += ((double)fx.F[k] - fx.eps[k]) * ((double)fx.F[k] - fx.eps[k]);
    want /= N * D;
    float dF[N * D];
    const dm_mse_opts o = { .target = DM_MSE_EPS, .weighting = DM_MSE_W_NONE };
    assert_true(fabs(dm_loss_mse.eval(&o, &fx.b, dF) - want) <= 1e-15 * want);
}

static void test_check(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule ve = { .ops = &ve_ops, .t_min = 1e-5, .t_max = 1.0 };
    dm_schedule vp = { .ops = &vp_ops, .t_min = 1e-3, .t_max = 1.0 };
    dm_ddpm_linear_opts lo = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule dd;
    assert_int_equal(dm_schedule_init(&dd, &dm_schedule_ddpm_linear, &lo, err), DM_OK);

    dm_mse_opts o = { .target = DM_MSE_V, .weighting = DM_MSE_W_NONE, .gamma = 5 };
    assert_int_equal(dm_loss_mse.check(&o, &ve, &dm_param_eps, err), DM_E_INPUT);
    const char *pv = "diffusion.loss.target: v needs alpha^2 + sigma^2 = 1; schedule 'test_ve' is not "
                     "variance-preserving";
    assert_true(strncmp(err, pv, strlen(pv)) == 0);
    assert_int_equal(dm_loss_mse.check(&o, &vp, &dm_param_eps, err), DM_OK);
    assert_int_equal(dm_loss_mse.check(&o, &dd, &dm_param_eps, err), DM_OK);

    o = (dm_mse_opts){ .target = DM_MSE_SCORE, .weighting = DM_MSE_W_G2, .gamma = 5 };
    assert_int_equal(dm_loss_mse.check(&o, &dd, &dm_param_eps, err), DM_E_INPUT);
    const char *pg = "diffusion.loss.weighting: g2 needs a continuous schedule with an SDE";
    assert_true(strncmp(err, pg, strlen(pg)) == 0);
    assert_non_null(strstr(err, "schedule 'ddpm_linear' is discrete"));
    assert_int_equal(dm_loss_mse.check(&o, &ve, &dm_param_eps, err), DM_E_INPUT); /* no g2 slot */
    assert_int_equal(dm_loss_mse.check(&o, &vp, &dm_param_eps, err), DM_OK);

    /* Everything else goes with any schedule. */
    for (int target = 0; target < N_TARGETS; target++)
        for (int w = 0; w < N_WEIGHTINGS; w++) {
            if (target == DM_MSE_V || w == DM_MSE_W_G2)
                continue;
            o = (dm_mse_opts){ .target = target, .weighting = w, .gamma = 5 };
            assert_int_equal(dm_loss_mse.check(&o, &ve, &dm_param_edm, err), DM_OK);
            assert_int_equal(dm_loss_mse.check(&o, &dd, &dm_param_x0, err), DM_OK);
        }
    dm_schedule_free(&dd);
}

static void test_option_table(void **state)
{
    (void)state;
    const dm_param_desc *p = dm_loss_mse.info.params;
    assert_string_equal(dm_loss_mse.info.name, "mse");
    assert_true(dm_loss_mse.info.opts_size == sizeof(dm_mse_opts));
    assert_string_equal(p[0].name, "target");
    assert_string_equal(p[0].def, "eps");
    /* Choice indices are the enums. */
    assert_string_equal(p[0].choices[DM_MSE_EPS], "eps");
    assert_string_equal(p[0].choices[DM_MSE_X0], "x0");
    assert_string_equal(p[0].choices[DM_MSE_V], "v");
    assert_string_equal(p[0].choices[DM_MSE_SCORE], "score");
    assert_string_equal(p[0].choices[DM_MSE_MU], "mu");
    assert_null(p[0].choices[5]);
    assert_string_equal(p[1].name, "weighting");
    assert_string_equal(p[1].def, "none");
    const char *w[N_WEIGHTINGS] = { "none", "sigma2", "g2", "snr", "min_snr", "edm" };
    for (int k = 0; k < N_WEIGHTINGS; k++)
        assert_string_equal(p[1].choices[k], w[k]);
    assert_null(p[1].choices[N_WEIGHTINGS]);
    assert_string_equal(p[2].name, "gamma");
    assert_string_equal(p[2].def, "5");
    assert_true(p[2].min > 0);
    assert_null(p[3].name);   /* sigma_data is the parameterization's (param.h), not the loss's */
    for (int k = 0; k < 3; k++)
        assert_non_null(p[k].doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_all_combinations),
        cmocka_unit_test(test_weights_hand_row),
        cmocka_unit_test(test_space_equivalences),
        cmocka_unit_test(test_unweighted_equals_l_simple),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_option_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
