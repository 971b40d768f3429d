/* DDPM schedule (closed form) and ancestral sampler over the whole chain (data N(0, I), where
 * sigma^2 = beta is exact, and a single point, where the last step lands on it), loss gradient by
 * central differences. Each reverse step: test_ddpm_step.c. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"

static void test_linear_closed_form(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_ddpm_linear_opts o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    /* abar_t = prod (1 - beta_s), beta linear: check three points against a direct product. */
    const int idx[] = { 0, 499, 999 };
    for (int k = 0; k < 3; k++) {
        double prod = 1.0;
        for (int u = 0; u <= idx[k]; u++)
            prod *= 1.0 - (1e-4 + (0.02 - 1e-4) * u / 999.0);
        assert_true(fabs(s.abar[idx[k]] - prod) < 1e-15);
        double a = s.ops->alpha(&s, idx[k]), sg = s.ops->sigma(&s, idx[k]);
        assert_true(fabs(a * a + sg * sg - 1.0) < 1e-12);
    }
    assert_true(fabs(s.abar[0] - (1.0 - 1e-4)) < 1e-15);
    /* Known value of DDPM's abar_T (about 4.04e-5). */
    assert_true(s.abar[999] > 4.0e-5 && s.abar[999] < 4.1e-5);
    assert_true(s.ops->c_noise(&s, 17) == 17.0);
    double ts[11];
    assert_int_equal(s.ops->grid(&s, 10, ts, err), DM_OK);
    assert_true(ts[0] == 999 && ts[9] == 0 && ts[10] == -1);
    for (int k = 0; k < 10; k++)
        assert_true(ts[k] > ts[k + 1]);
    assert_int_equal(s.ops->grid(&s, 1001, ts, err), DM_E_INPUT);
    dm_schedule_free(&s);

    /* T = 100 scales the betas by 1000/T, as improved-diffusion. */
    o.T = 100;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    assert_true(fabs(s.abar[0] - (1.0 - 1e-3)) < 1e-15);
    dm_schedule_free(&s);
    o.beta_start = 0.03;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_E_INPUT);
    dm_schedule_free(&s);
}

/* Analytic denoisers on the discrete schedule. */
typedef struct analytic {
    const dm_schedule *s;
    int kind;          /* 0: data N(0, I); 1: data a single point mu */
    double mu[2];
} analytic;

static dm_status analytic_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                               float *eps, char *err)
{
    (void)err;
    (void)y;
    const analytic *a = ctx;
    for (size_t i = 0; i < n; i++) {
        const double al = a->s->ops->alpha(a->s, t[i]), sg = a->s->ops->sigma(a->s, t[i]);
        for (size_t j = 0; j < 2; j++) {
            const double xv = x[i * 2 + j];
            /* N(0, I): E[x0 | x_t] = alpha x_t, E[eps | x_t] = sigma x_t (alpha^2 + sigma^2 = 1). */
            const double m0 = a->kind == 0 ? al * xv : a->mu[j];
            const double e = a->kind == 0 ? sg * xv : (xv - al * a->mu[j]) / sg;
            if (x0)
                x0[i * 2 + j] = (float)m0;
            if (eps)
                eps[i * 2 + j] = (float)e;
        }
    }
    return DM_OK;
}

static float *run_sampler(const dm_schedule *s, analytic *a, int variance, size_t n, size_t batch)
{
    char err[DM_ERR_SIZE];
    dm_rng *rngs = calloc(n, sizeof *rngs);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(dm_rng_init_small(&rngs[i], dm_seed_index(42, i), err), DM_OK);
    dm_denoiser den = { .ctx = a, .dim = 2, .max_batch = batch, .eval = analytic_eval };
    dm_ddpm_sampler_opts o = { .steps = 0, .variance = variance };
    assert_int_equal(dm_sampler_ddpm.check(&o, s, err), DM_OK);
    assert_int_equal(dm_sampler_ddpm.nfe(&o, s), s->T);
    float *x = malloc(sizeof(float) * n * 2);
    assert_int_equal(dm_sampler_ddpm.sample(&o, &den, s, n, rngs, x, err), DM_OK);
    for (size_t i = 0; i < n; i++)
        dm_rng_free(&rngs[i]);
    free(rngs);
    return x;
}

static void moments(const float *x, size_t n, int j, double *mean, double *var)
{
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += x[i * 2 + j];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        v += (x[i * 2 + j] - m) * (x[i * 2 + j] - m);
    *mean = m;
    *var = v / (double)(n - 1);
}

static void test_ancestral_standard_normal(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_ddpm_linear_opts o = { .T = 200, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    analytic a = { .s = &s, .kind = 0 };
    const size_t n = 40000;
    /* Data N(0, I): with sigma^2 = beta the reverse kernel N(sqrt(1-beta) x, beta) is exact, so the
     * samples are N(0, (1 - beta_1) I) (the last step adds no noise). */
    float *x = run_sampler(&s, &a, DM_VAR_BETA, n, 4096);
    const double beta1 = 1.0 - s.abar[0];
    for (int j = 0; j < 2; j++) {
        double m, v;
        moments(x, n, j, &m, &v);
        const double target = 1.0 - beta1;
        assert_true(fabs(m) < 4.0 * sqrt(1.0 / n));
        assert_true(fabs(v - target) < 4.0 * target * sqrt(2.0 / (n - 1)));
    }
    /* The posterior variance beta_tilde is not exact here: it shrinks the samples measurably. */
    float *y = run_sampler(&s, &a, DM_VAR_BETA_TILDE, n, 4096);
    double m, v;
    moments(y, n, 0, &m, &v);
    assert_true(v < 0.95);
    free(x);
    free(y);
    dm_schedule_free(&s);
}

static void test_ancestral_single_point(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_ddpm_linear_opts o = { .T = 100, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    analytic a = { .s = &s, .kind = 1, .mu = { 0.7, -1.3 } };
    /* Data a single point: the final step (c_x0 = 1, c_xt = 0, no noise) returns x0_hat = mu
     * whatever the chain did before it, so this checks only that the chain stays finite and that
     * last step; the steps themselves are checked draw by draw in test_ddpm_step.c. */
    for (int var = 0; var < 2; var++) {
        float *x = run_sampler(&s, &a, var, 500, 128);
        for (size_t i = 0; i < 500; i++) {
            assert_true(fabs(x[2 * i] - 0.7) < 1e-4);
            assert_true(fabs(x[2 * i + 1] + 1.3) < 1e-4);
        }
        free(x);
    }
    dm_schedule_free(&s);
}

static void test_sampler_deterministic_any_batch_and_threads(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_ddpm_linear_opts o = { .T = 50, .beta_start = 1e-4, .beta_end = 0.02 };
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_ddpm_linear, &o, err), DM_OK);
    analytic a = { .s = &s, .kind = 0 };
    omp_set_num_threads(1);
    float *x1 = run_sampler(&s, &a, DM_VAR_BETA, 1000, 1000);
    omp_set_num_threads(2);
    float *x2 = run_sampler(&s, &a, DM_VAR_BETA, 1000, 77);
    assert_memory_equal(x1, x2, sizeof(float) * 2000);
    /* Sample i's noise is its own: the first 10 samples of a run of 10 equal those of 1000. */
    float *x3 = run_sampler(&s, &a, DM_VAR_BETA, 10, 3);
    assert_memory_equal(x1, x3, sizeof(float) * 20);
    free(x1);
    free(x2);
    free(x3);
    dm_schedule_free(&s);
}

static void test_mse_gradient(void **state)
{
    (void)state;
    /* dL/dF of the eps- and x0-space MSE against central differences of the loss itself. */
    enum { N = 3, D = 2 };
    float xt[N * D] = { 0.3f, -0.2f, 1.1f, 0.4f, -0.9f, 0.05f };
    float F[N * D] = { 0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f };
    float x0[N * D] = { 1, 0, 0, 1, -1, 0 };
    float eps[N * D] = { 0.2f, -0.1f, 0.7f, 0.3f, -0.4f, 0.9f };
    double t[N] = { 1, 2, 3 }, al[N] = { 0.9, 0.6, 0.3 }, sg[N];
    dm_param_coef c[N];
    for (int i = 0; i < N; i++) {
        sg[i] = sqrt(1 - al[i] * al[i]);
        dm_param_eps.coef(NULL, al[i], sg[i], 1.0, &c[i]);
    }
    for (int target = 0; target < 2; target++) {
        dm_mse_opts o = { .target = target };
        dm_loss_batch b = { N, D, xt, F, x0, eps, t, al, sg, c, NULL, 1.0, D, NULL, NULL, NULL, 0 };
        float dF[N * D], scratch[N * D];
        dm_loss_mse.eval(&o, &b, dF);
        for (int k = 0; k < N * D; k++) {
            const float h = 1e-2f, keep = F[k];
            F[k] = keep + h;
            double lp = dm_loss_mse.eval(&o, &b, scratch);
            F[k] = keep - h;
            double lm = dm_loss_mse.eval(&o, &b, scratch);
            F[k] = keep;
            /* the loss is quadratic in F: the central difference is exact up to rounding */
            assert_true(fabs((lp - lm) / (2 * h) - dF[k]) < 1e-4 * (1 + fabs(dF[k])));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_closed_form),
        cmocka_unit_test(test_ancestral_standard_normal),
        cmocka_unit_test(test_ancestral_single_point),
        cmocka_unit_test(test_sampler_deterministic_any_batch_and_threads),
        cmocka_unit_test(test_mse_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
