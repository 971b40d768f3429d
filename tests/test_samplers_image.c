/* Every sampler on image-shaped data: the analytic denoiser of image_mixture (1x8x8 = 64
 * dimensions, 6 templates, std 0.2; data/image_mixture.c), each sampler's MMD^2 against exact
 * draws within 2x the exact-vs-exact floor of the same metric at that dimension, and its spread
 * around the templates within a factor 2 of the exact draws' (issue 16). Samplers see flat rows:
 * nothing here is image-specific but the data. */
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

#include "data/datasets.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"
#include "eval/metrics.h"
#include "sampler_opts.h"

static const dm_ddpm_linear_opts ddpm_o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };
static const dm_vp_schedule_opts vp_o = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };
/* sigma_max above the largest distance between two templates (about 13 here), as Song & Ermon
 * 2020 advise. */
static const dm_ve_schedule_opts ve_o = { .sigma_min = 0.01, .sigma_max = 20, .eps = 1e-5, .t_end = 1e-5 };
static const dm_edm_schedule_opts edm_o = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7,
                                            .p_mean = -1.2, .p_std = 1.2 };
enum { S_DDPM, S_VP, S_VE, S_EDM };

static void sched_init(dm_schedule *s, int kind)
{
    char err[DM_ERR_SIZE];
    const dm_schedule_ops *ops[] = { &dm_schedule_ddpm_linear, &dm_schedule_vp, &dm_schedule_ve, &dm_schedule_edm };
    const void *opts[] = { &ddpm_o, &vp_o, &ve_o, &edm_o };
    assert_int_equal(dm_schedule_init(s, ops[kind], opts[kind], err), DM_OK);
}

/* n exact draws of the mixture. */
static void draw(const dm_gmm *g, dm_rng *rng, size_t n, float *x)
{
    for (size_t i = 0; i < n; i++) {
        const size_t c = (size_t)dm_rng_int(rng, (unsigned long)g->k);
        for (size_t j = 0; j < g->dim; j++)
            x[i * g->dim + j] = (float)(g->mu[c * g->dim + j] + g->s[c] * dm_rng_normal(rng));
    }
}

/* RMS distance per pixel from each image to its nearest template: the std (0.2) for exact draws. */
static double spread(const dm_gmm *g, const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (size_t c = 0; c < g->k; c++) {
            double d2 = 0.0;
            for (size_t j = 0; j < g->dim; j++) {
                const double e = x[i * g->dim + j] - g->mu[c * g->dim + j];
                d2 += e * e;
            }
            best = fmin(best, d2);
        }
        s += best;
    }
    return sqrt(s / ((double)n * (double)g->dim));
}

typedef struct case_t {
    const char *label;
    const dm_sampler_ops *ops;
    int sched;
    const char *variance;
} case_t;

static void test_every_sampler_on_images(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const dm_image_mixture_opts im = { .c = 1, .h = 8, .w = 8, .k = 6, .std = 0.2, .seed = 0 };
    dm_gmm g;
    assert_int_equal(dm_data_gmm(&dm_data_image_mixture, &im, &g, err), DM_OK);
    const size_t d = g.dim;
    assert_true(d >= 64);
    /* The floor: the RMS of MMD^2 over independent exact pairs of n against 2n, as the samplers
     * are measured; a sampler's value is its mean over reps runs, each against fresh exact draws. */
    const size_t n = 500, m = 2 * n, pairs = 24, reps = 3;
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 20261203, err), DM_OK);
    float *a = malloc(sizeof(float) * m * d), *b = malloc(sizeof(float) * n * d), *x = malloc(sizeof(float) * n * d);
    assert_true(a && b && x);
    draw(&g, &rng, m, a);
    const double h = dm_mmd_bandwidth(a, m, d);
    double ms = 0.0;
    for (size_t p = 0; p < pairs; p++) {
        double v;
        draw(&g, &rng, m, a);
        draw(&g, &rng, n, b);
        assert_int_equal(dm_mmd2_unbiased(b, n, a, m, d, h, &v, err), DM_OK);
        ms += v * v;
    }
    const double floor_ = sqrt(ms / (double)pairs), exact_spread = spread(&g, b, n);
    print_message("image_mixture 1x8x8: exact vs exact MMD^2 %.3g (RMS over %zu pairs), bandwidth %.3f, "
                  "spread %.4f\n", floor_, pairs, h, exact_spread);
    const case_t cases[] = {
        { "ddpm(beta)/ddpm_linear", &dm_sampler_ddpm, S_DDPM, "beta" },
        { "ddpm(beta~)/ddpm_linear", &dm_sampler_ddpm, S_DDPM, "beta_tilde" },
        { "ddim/ddpm_linear", &dm_sampler_ddim, S_DDPM, NULL },
        { "ddim/vp", &dm_sampler_ddim, S_VP, NULL },
        { "em/vp", &dm_sampler_em, S_VP, NULL },
        { "pc/vp", &dm_sampler_pc, S_VP, NULL },
        { "pc/ve", &dm_sampler_pc, S_VE, NULL },
        { "euler/vp", &dm_sampler_euler, S_VP, NULL },
        { "rk45/vp", &dm_sampler_rk45, S_VP, NULL },
        { "dpmpp2m/vp", &dm_sampler_dpmpp2m, S_VP, NULL },
        { "dpmpp2m/edm", &dm_sampler_dpmpp2m, S_EDM, NULL },
        { "heun/edm", &dm_sampler_heun, S_EDM, NULL },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dm_schedule s;
        sched_init(&s, cases[c].sched);
        unsigned char opts[256];
        opts_defaults(cases[c].ops, opts);
        if (cases[c].variance)
            set_choice(cases[c].ops, opts, "variance", cases[c].variance);
        assert_int_equal(cases[c].ops->check(opts, &s, err), DM_OK);
        double v = 0.0, sp = 0.0;
        int64_t nfe = 0;
        for (size_t r = 0; r < reps; r++) {
            dm_gmm_denoiser gd;
            dm_denoiser den;
            dm_gmm_denoiser_init(&gd, &den, &g, &s, 256);
            dm_rng *rngs = NULL;
            assert_int_equal(dm_rng_streams_new(1000 * (r + 1) + c, n, &rngs, err), DM_OK);
            if (dm_sampler_sample(cases[c].ops, opts, &den, &s, n, rngs, x, &nfe, err))
                fail_msg("%s: %s", cases[c].label, err);
            dm_rng_streams_free(rngs, n);
            for (size_t q = 0; q < n * d; q++)
                if (!isfinite(x[q]))
                    fail_msg("%s: sample %zu is not finite", cases[c].label, q / d);
            draw(&g, &rng, m, a);
            double vr;
            assert_int_equal(dm_mmd2_unbiased(x, n, a, m, d, h, &vr, err), DM_OK);
            v += vr / (double)reps;
            sp += spread(&g, x, n) / (double)reps;
        }
        print_message("%-24s nfe %5lld  MMD^2 %10.3g = %5.2f x floor  spread %.4f\n", cases[c].label,
                      (long long)nfe, v, v / floor_, sp);
        if (!(v < 2.0 * floor_))
            fail_msg("%s: MMD^2 %.3g is not within 2x the exact floor %.3g", cases[c].label, v, floor_);
        if (!(sp < 2.0 * exact_spread && sp > 0.5 * exact_spread))
            fail_msg("%s: spread around the templates %.4f, exact %.4f", cases[c].label, sp, exact_spread);
        dm_schedule_free(&s);
    }
    /* The prior alone is far off: the test can fail. */
    dm_schedule s;
    sched_init(&s, S_VP);
    dm_rng *rngs = NULL;
    assert_int_equal(dm_rng_streams_new(7, n, &rngs, err), DM_OK);
    dm_sampler_init_noise(&s, n, d, rngs, x);
    dm_rng_streams_free(rngs, n);
    draw(&g, &rng, m, a);
    double v;
    assert_int_equal(dm_mmd2_unbiased(x, n, a, m, d, h, &v, err), DM_OK);
    print_message("the prior: MMD^2 %.3g = %.1f x floor\n", v, v / floor_);
    assert_true(v > 20.0 * floor_);
    dm_schedule_free(&s);
    dm_rng_free(&rng);
    dm_gmm_free(&g);
    free(a);
    free(b);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sampler_on_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
