/* Parameterizations (eps, x0, v, score, edm): the round trip x0, eps -> x_t -> F -> x0_hat, eps_hat;
 * the conversions eps <-> x0 <-> v <-> score of FORMULAS.md; EDM's scalings against their closed
 * forms (NVlabs/edm EDMPrecond); v's schedule check. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "diffusion/params.h"
#include "diffusion/schedules.h"

enum { D = 5 };

static const double X0[D] = { 1.0, -0.5, 0.25, 2.0, -1.75 };
static const double EPS[D] = { 0.3, -1.2, 0.8, -0.05, 1.9 };

typedef struct pair {
    double a, s;
} pair;

/* VP pairs (alpha^2 + sigma^2 = 1), EDM-like (alpha = 1) and general ones. */
#define N_VP 5
#define N_PAIRS 11
static pair pairs(int k)
{
    static const double th[N_VP] = { 0.01, 0.3, 0.7853981633974483, 1.2, 1.55 };
    if (k < N_VP)
        return (pair){ cos(th[k]), sin(th[k]) };
    static const pair rest[N_PAIRS - N_VP] = { { 1.0, 0.002 }, { 1.0, 0.5 }, { 1.0, 3.0 },
                                               { 1.0, 80.0 }, { 0.7, 2.5 },  { 0.05, 0.3 } };
    return rest[k - N_VP];
}

static const dm_param_ops *const all_params[] = { &dm_param_eps, &dm_param_x0, &dm_param_v,
                                                  &dm_param_score, &dm_param_edm };
enum { N_PARAMS = 5, P_EPS = 0, P_X0 = 1, P_V = 2, P_SCORE = 3, P_EDM = 4 };

static int close_rel(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fmax(1.0, fabs(want));
}

/* The quantity each parameterization's network is trained to output, for these exact x0, eps. */
static double expected_F(int p, double a, double s, double sd, double x0, double eps)
{
    switch (p) {
    case P_EPS:
        return eps;
    case P_X0:
        return x0;
    case P_V:
        return a * eps - s * x0;   /* Salimans & Ho 2022; FORMULAS.md notation */
    case P_SCORE:
        return -eps / s;           /* grad log q(x_t | x0) */
    default: {
        /* EDM: F_target = (x0 - c_skip x~)/c_out, x~ = x/a = x0 + (s/a) eps (Karras et al. 2022, Table 1). */
        const double st = s / a, cs = sd * sd / (st * st + sd * sd), co = st * sd / sqrt(st * st + sd * sd);
        return (x0 - cs * (x0 + st * eps)) / co;
    }
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    const double sd = 0.5;
    for (int p = 0; p < N_PARAMS; p++) {
        for (int k = 0; k < N_PAIRS; k++) {
            const pair q = pairs(k);
            if (p == P_V && k >= N_VP)
                continue; /* v is defined for alpha^2 + sigma^2 = 1 only */
            dm_param_coef c;
            all_params[p]->coef(NULL, q.a, q.s, sd, &c);
            for (int j = 0; j < D; j++) {
                const double x = q.a * X0[j] + q.s * EPS[j];
                /* Invert the linear map for F through x0, and again through eps. */
                const double F = (X0[j] - c.x_x0 * x) / c.f_x0;
                const double F2 = (EPS[j] - c.x_eps * x) / c.f_eps;
                const double x0h = c.x_x0 * x + c.f_x0 * F, epsh = c.x_eps * x + c.f_eps * F;
                if (!close_rel(x0h, X0[j], 1e-12) || !close_rel(epsh, EPS[j], 1e-12) ||
                    !close_rel(F2, F, 1e-12))
                    fail_msg("%s at (alpha %g, sigma %g), j %d: x0 %.17g vs %.17g, eps %.17g vs %.17g, "
                             "F %.17g vs %.17g", all_params[p]->info.name, q.a, q.s, j, x0h, X0[j],
                             epsh, EPS[j], F2, F);
                /* The F is the named quantity (eps, x0, v, score, EDM's effective target). */
                const double want = expected_F(p, q.a, q.s, sd, X0[j], EPS[j]);
                if (!close_rel(F, want, 1e-12))
                    fail_msg("%s at (alpha %g, sigma %g): F %.17g, expected %.17g",
                             all_params[p]->info.name, q.a, q.s, F, want);
            }
        }
    }
}

static void test_conversions(void **state)
{
    (void)state;
    /* For any network output F: x0_hat = (x - sigma eps_hat)/alpha (the notation of FORMULAS.md),
     * and v_hat = alpha eps_hat - sigma x0_hat, score_hat = -eps_hat/sigma recover F for the v and
     * score parameterizations. */
    const double Fs[3] = { -0.7, 0.0, 1.3 }, xs[3] = { 0.4, -2.0, 5.0 };
    for (int p = 0; p < N_PARAMS; p++) {
        for (int k = 0; k < N_PAIRS; k++) {
            const pair q = pairs(k);
            if (p == P_V && k >= N_VP)
                continue;
            dm_param_coef c;
            all_params[p]->coef(NULL, q.a, q.s, 0.7, &c);
            for (int u = 0; u < 3; u++) {
                const double x = xs[u], F = Fs[u];
                const double x0h = c.x_x0 * x + c.f_x0 * F, epsh = c.x_eps * x + c.f_eps * F;
                const double scale = fabs(x0h) + fabs(x / q.a) + fabs(q.s * epsh / q.a);
                assert_true(fabs(x0h - (x - q.s * epsh) / q.a) <= 1e-12 * fmax(1.0, scale));
                if (p == P_V)
                    assert_true(close_rel(q.a * epsh - q.s * x0h, F, 1e-12));
                if (p == P_SCORE)
                    assert_true(close_rel(-epsh / q.s, F, 1e-12));
                if (p == P_EPS)
                    assert_true(epsh == F);
                if (p == P_X0)
                    assert_true(x0h == F);
            }
            /* The network input scale: 1 except for EDM. */
            if (p != P_EDM)
                assert_true(c.c_in == 1.0);
        }
    }
    /* Hand values at alpha = 0.6, sigma = 0.8. */
    dm_param_coef c;
    dm_param_v.coef(NULL, 0.6, 0.8, 1.0, &c);
    assert_true(c.x_x0 == 0.6 && c.f_x0 == -0.8 && c.x_eps == 0.8 && c.f_eps == 0.6);
    dm_param_score.coef(NULL, 0.6, 0.8, 1.0, &c);
    assert_true(close_rel(c.x_x0, 1.0 / 0.6, 1e-15) && close_rel(c.f_x0, 0.64 / 0.6, 1e-15));
    assert_true(c.x_eps == 0.0 && c.f_eps == -0.8);
    dm_param_x0.coef(NULL, 0.6, 0.8, 1.0, &c);
    assert_true(c.x_x0 == 0.0 && c.f_x0 == 1.0 && c.x_eps == 1.25 && close_rel(c.f_eps, -0.75, 1e-15));
}

static void test_edm_coefficients(void **state)
{
    (void)state;
    const double sigmas[] = { 0.002, 0.1, 0.5, 1.0, 7.0, 80.0 };
    for (size_t k = 0; k < sizeof sigmas / sizeof *sigmas; k++) {
        const double s = sigmas[k], sd = 0.5;
        const double c_skip = sd * sd / (s * s + sd * sd), c_out = s * sd / sqrt(s * s + sd * sd);
        const double c_in = 1.0 / sqrt(sd * sd + s * s);
        dm_param_coef c;
        /* alpha = 1: exactly EDMPrecond. */
        dm_param_edm.coef(NULL, 1.0, s, sd, &c);
        assert_true(close_rel(c.x_x0, c_skip, 1e-14));
        assert_true(close_rel(c.f_x0, c_out, 1e-14));
        assert_true(close_rel(c.c_in, c_in, 1e-14));
        /* eps_hat = (x - D)/sigma. */
        assert_true(close_rel(c.x_eps, (1.0 - c_skip) / s, 1e-12));
        assert_true(close_rel(c.f_eps, -c_out / s, 1e-12));

        /* Any alpha: the same scalings on x/alpha at sigma/alpha. */
        const double a = 0.8, st = s / a;
        const double cs2 = sd * sd / (st * st + sd * sd), co2 = st * sd / sqrt(st * st + sd * sd);
        dm_param_edm.coef(NULL, a, s, sd, &c);
        assert_true(close_rel(c.x_x0, cs2 / a, 1e-14));
        assert_true(close_rel(c.f_x0, co2, 1e-14));
        assert_true(close_rel(c.c_in, 1.0 / sqrt(sd * sd + st * st) / a, 1e-14));
        /* Unit variance of the network input and of its effective target for data of std sd
         * (Karras et al. 2022, appendix B): Var(c_in x) = c_in^2 (a^2 sd^2 + s^2) = 1 and
         * Var((x0 - c_skip x~)/c_out) = ((1 - c_skip)^2 sd^2 + c_skip^2 st^2)/c_out^2 = 1. */
        assert_true(close_rel(c.c_in * c.c_in * (a * a * sd * sd + s * s), 1.0, 1e-13));
        assert_true(close_rel(((1 - cs2) * (1 - cs2) * sd * sd + cs2 * cs2 * st * st) / (co2 * co2), 1.0,
                              1e-12));
    }

    /* sigma_data: the option wins when set, else the argument (the dataset's measured std). */
    dm_param_coef c1, c2;
    dm_param_edm_opts o = { .sigma_data = 0.0 };
    dm_param_edm.coef(&o, 1.0, 0.3, 1.7, &c1);
    dm_param_edm.coef(NULL, 1.0, 0.3, 1.7, &c2);
    assert_memory_equal(&c1, &c2, sizeof c1);
    assert_true(close_rel(c1.x_x0, 1.7 * 1.7 / (0.09 + 1.7 * 1.7), 1e-15));
    o.sigma_data = 0.5;
    dm_param_edm.coef(&o, 1.0, 0.3, 1.7, &c1);
    assert_true(close_rel(c1.x_x0, 0.25 / (0.09 + 0.25), 1e-15));

    /* f(x, sigma -> 0) -> x: exactly at sigma = 0, and within O(sigma) near it, for any F. */
    dm_param_edm.coef(NULL, 1.0, 0.0, 0.5, &c1);
    assert_true(c1.x_x0 == 1.0 && c1.f_x0 == 0.0 && c1.x_eps == 0.0 && isfinite(c1.f_eps));
    const double x = 1.234, F = -3.0;
    for (double s = 1e-2; s > 1e-9; s /= 10) {
        dm_param_edm.coef(NULL, 1.0, s, 0.5, &c1);
        assert_true(fabs(c1.x_x0 * x + c1.f_x0 * F - x) <= 5.0 * s);
    }
    assert_string_equal(dm_param_edm.info.name, "edm");
    assert_string_equal(dm_param_edm.info.params[0].name, "sigma_data");
    assert_string_equal(dm_param_edm.info.params[0].def, "0");
    assert_true(dm_param_edm.info.opts_size == sizeof(dm_param_edm_opts));
}

/* Test-only continuous schedules: VE-like (alpha = 1, sigma = t), VP-like (cos, sin) and
 * sub-VP-like (sigma = 1 - alpha^2, not a square root). */
static double one(const dm_schedule *s, double t) { (void)s; (void)t; return 1.0; }
static double ident(const dm_schedule *s, double t) { (void)s; return t; }
static double cos_a(const dm_schedule *s, double t) { (void)s; return cos(M_PI / 2 * t); }
static double sin_s(const dm_schedule *s, double t) { (void)s; return sin(M_PI / 2 * t); }
static double subvp_s(const dm_schedule *s, double t) { (void)s; return 1.0 - pow(cos(M_PI / 2 * t), 2); }

static const dm_schedule_ops ve_ops = { .info = { "test_ve", "alpha 1, sigma t", NULL, 0 },
                                        .alpha = one, .sigma = ident };
static const dm_schedule_ops vp_ops = { .info = { "test_vp", "cos / sin", NULL, 0 },
                                        .alpha = cos_a, .sigma = sin_s };
static const dm_schedule_ops subvp_ops = { .info = { "test_subvp", "sub-VP-like", NULL, 0 },
                                           .alpha = cos_a, .sigma = subvp_s };

static void test_v_check(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const char *prefix = "diffusion.param.type: v-prediction needs alpha^2 + sigma^2 = 1; schedule '";
    dm_schedule ve = { .ops = &ve_ops, .t_min = 0.01, .t_max = 50.0 };
    assert_int_equal(dm_param_v.check(NULL, &ve, err), DM_E_INPUT);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(err, "schedule 'test_ve' is not variance-preserving"));
    /* An EDM-like range starting at sigma = 0 is still caught (alpha^2 + sigma^2 = 1 at t = 0 only). */
    dm_schedule edm = { .ops = &ve_ops, .t_min = 0.0, .t_max = 80.0 };
    assert_int_equal(dm_param_v.check(NULL, &edm, err), DM_E_INPUT);
    dm_schedule subvp = { .ops = &subvp_ops, .t_min = 1e-3, .t_max = 1.0 };
    assert_int_equal(dm_param_v.check(NULL, &subvp, err), DM_E_INPUT);
    assert_non_null(strstr(err, "'test_subvp'"));

    dm_schedule vp = { .ops = &vp_ops, .t_min = 1e-3, .t_max = 1.0 };
    assert_int_equal(dm_param_v.check(NULL, &vp, err), DM_OK);
    double t = -1;
    assert_true(dm_param_vp_defect(&vp, &t) < 1e-12 && t >= 1e-3 && t <= 1.0);

    /* The real DDPM schedule (discrete: step indices) is variance-preserving. */
    dm_ddpm_linear_opts o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule dd;
    assert_int_equal(dm_schedule_init(&dd, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    assert_int_equal(dm_param_v.check(NULL, &dd, err), DM_OK);
    /* The other parameterizations accept any schedule. */
    for (int p = 0; p < N_PARAMS; p++) {
        if (p == P_V)
            continue;
        assert_int_equal(all_params[p]->check(NULL, &ve, err), DM_OK);
        assert_int_equal(all_params[p]->check(NULL, &dd, err), DM_OK);
    }
    dm_schedule_free(&dd);
}

static void test_names(void **state)
{
    (void)state;
    const char *names[N_PARAMS] = { "eps", "x0", "v", "score", "edm" };
    for (int p = 0; p < N_PARAMS; p++) {
        assert_string_equal(all_params[p]->info.name, names[p]);
        assert_non_null(all_params[p]->info.doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_edm_coefficients),
        cmocka_unit_test(test_v_check),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
