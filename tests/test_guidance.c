/* Conditional generation and guidance against exact answers: the classifier's cross-entropy and
 * the classifiers' gradients by finite differences, the mixture's class-conditional denoiser
 * against the sub-mixture of the class, guided sampling with the exact denoiser and classifier
 * (gamma = 1 samples p(x | y): class-conditional MMD^2 within 2x the exact-vs-exact spread;
 * larger gamma: higher class share, less diversity), CFG at w = 0 = plain conditional sampling
 * bit for bit (exact and network denoisers), and CFG at w = classifier guidance at gamma = 1 + w
 * with exact models. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "diffusion/classifier_net.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/denoiser_net.h"
#include "diffusion/guidance.h"
#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"
#include "eval/conditional.h"
#include "nn/net_mlp.h"

static const dm_ddpm_linear_opts ddpm_o = { .T = 1000, .beta_start = 1e-4, .beta_end = 0.02 };

/* Two classes of two components (configs/datasets/two_class_gmm.yaml): one isolated component
 * and one overlapping the other class's per class. */
static double mix_w[4] = { 0.25, 0.25, 0.25, 0.25 };
static double mix_mu[8] = { -2.0, 0.0, 0.0, 0.3, 2.0, 0.0, 0.0, -0.3 };
static double mix_s[4] = { 0.3, 0.3, 0.3, 0.3 };
static int32_t mix_cls[4] = { 0, 0, 1, 1 };
static const dm_gmm mix = { .k = 4, .dim = 2, .w = mix_w, .mu = mix_mu, .s = mix_s, .cls = mix_cls, .n_classes = 2 };

static void sched(dm_schedule *s)
{
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_schedule_init(s, &dm_schedule_ddpm_linear, &ddpm_o, err), DM_OK);
}

/* n exact samples of class y (DM_NULL_CLASS: of the whole mixture) from one stream. */
static void draw(dm_rng *rng, int32_t y, size_t n, float *x, int32_t *lab)
{
    for (size_t i = 0; i < n; i++) {
        size_t k;
        do
            k = (size_t)dm_rng_int(rng, 4);
        while (y != DM_NULL_CLASS && mix_cls[k] != y);
        for (size_t j = 0; j < 2; j++)
            x[i * 2 + j] = (float)(mix_mu[k * 2 + j] + mix_s[k] * dm_rng_normal(rng));
        if (lab)
            lab[i] = mix_cls[k];
    }
}

/* ---- gradients ------------------------------------------------------------------------------ */

static void test_xent_gradient(void **state)
{
    (void)state;
    enum { N = 5, C = 3 };
    float F[N * C], dF[N * C], scratch[N * C];
    const int32_t y[N] = { 0, 2, 1, 1, 0 };
    dm_rng rng = { 0 };
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_rng_init(&rng, 3, err), DM_OK);
    for (size_t q = 0; q < N * C; q++)
        F[q] = (float)(2.0 * dm_rng_normal(&rng));
    const double L = dm_xent_rows(N, C, F, y, dF);
    assert_true(L > 0);
    /* The loss of uniform logits is log C. */
    float Z[N * C] = { 0 };
    assert_true(fabs(dm_xent_rows(N, C, Z, y, scratch) - log((double)C)) < 1e-12);
    for (size_t q = 0; q < N * C; q++) {
        const float keep = F[q], h = 1e-2f;
        F[q] = keep + h;
        const double lp = dm_xent_rows(N, C, F, y, scratch);
        F[q] = keep - h;
        const double lm = dm_xent_rows(N, C, F, y, scratch);
        F[q] = keep;
        const double fd = (lp - lm) / (2.0 * (double)h);
        assert_true(fabs(fd - dF[q]) < 2e-5);
    }
    dm_rng_free(&rng);
}

static void test_gmm_classifier_gradient(void **state)
{
    (void)state;
    dm_schedule s;
    sched(&s);
    const int ts[] = { 0, 100, 400, 900 };
    const double pts[][2] = { { 0.1, 0.05 }, { -1.0, 0.4 }, { 1.5, -0.2 }, { 0.0, 0.0 } };
    for (size_t a = 0; a < 4; a++)
        for (size_t p = 0; p < 4; p++) {
            const double al = s.ops->alpha(&s, ts[a]), sg = s.ops->sigma(&s, ts[a]);
            double g[2], sum = 0.0;
            for (int32_t y = 0; y < 2; y++) {
                double x[2] = { pts[p][0], pts[p][1] };
                const double lp = dm_gmm_class_log_prob(&mix, al, sg, x, y, g);
                sum += exp(lp);
                for (int j = 0; j < 2; j++) {
                    const double h = 1e-5, keep = x[j];
                    x[j] = keep + h;
                    const double up = dm_gmm_class_log_prob(&mix, al, sg, x, y, NULL);
                    x[j] = keep - h;
                    const double dn = dm_gmm_class_log_prob(&mix, al, sg, x, y, NULL);
                    x[j] = keep;
                    assert_true(fabs((up - dn) / (2 * h) - g[j]) < 1e-5 * (1 + fabs(g[j])));
                }
            }
            assert_true(fabs(sum - 1.0) < 1e-12);   /* p(0 | x) + p(1 | x) = 1 */
        }
    dm_schedule_free(&s);
}

/* A small classifier MLP at its initial weights: the gradient of log p(y | x_t) in x against
 * central differences of the float forward. */
static void test_net_classifier_gradient(void **state)
{
    (void)state;
    enum { N = 6 };
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched(&s);
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, 2, 2, 0, 16, 2, 4, err), DM_OK);
    float *params = dm_malloc_aligned(sizeof(float) * mlp.n_params);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    dm_net_init_params(&mlp, params, &rng);
    dm_net_classifier nc;
    dm_classifier clf;
    assert_int_equal(dm_net_classifier_init(&nc, &clf, &mlp, params, &s, &dm_param_eps, NULL, 1.0, N, err), DM_OK);
    float x[2 * N], g[2 * N];
    double t[N], lp[N], up[N], dn[N];
    int32_t y[N];
    for (size_t i = 0; i < N; i++) {
        x[2 * i] = (float)dm_rng_normal(&rng);
        x[2 * i + 1] = (float)dm_rng_normal(&rng);
        t[i] = (double)(150 * i);
        y[i] = (int32_t)(i % 2);
    }
    assert_int_equal(clf.eval(clf.ctx, N, x, t, y, lp, g, err), DM_OK);
    for (size_t q = 0; q < 2 * N; q++) {
        const float keep = x[q], h = 1e-2f;
        x[q] = keep + h;
        assert_int_equal(clf.eval(clf.ctx, N, x, t, y, up, NULL, err), DM_OK);
        x[q] = keep - h;
        assert_int_equal(clf.eval(clf.ctx, N, x, t, y, dn, NULL, err), DM_OK);
        x[q] = keep;
        const double fd = (up[q / 2] - dn[q / 2]) / (2.0 * (double)h);
        assert_true(fabs(fd - g[q]) < 2e-3 * (1 + fabs(g[q])));
    }
    /* A class out of range is an input error. */
    y[0] = 2;
    assert_int_equal(clf.eval(clf.ctx, N, x, t, y, lp, g, err), DM_E_INPUT);
    dm_net_classifier_free(&nc);
    dm_free_aligned(params);
    dm_net_free(&mlp);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* ---- the class-conditional denoiser --------------------------------------------------------- */

static void test_gmm_conditional_denoiser(void **state)
{
    (void)state;
    dm_schedule s;
    sched(&s);
    /* The class-1 sub-mixture, weights renormalized. */
    double w1[2] = { 0.5, 0.5 }, mu1[4] = { 2.0, 0.0, 0.0, -0.3 }, s1[2] = { 0.3, 0.3 };
    const dm_gmm sub = { .k = 2, .dim = 2, .w = w1, .mu = mu1, .s = s1 };
    dm_gmm_denoiser ga, gb;
    dm_denoiser da, db;
    dm_gmm_denoiser_init(&ga, &da, &mix, &s, 4);
    dm_gmm_denoiser_init(&gb, &db, &sub, &s, 4);
    const float x[8] = { 0.1f, 0.2f, -1.5f, 0.3f, 1.0f, -1.0f, 0.0f, 0.0f };
    const double t[4] = { 10, 200, 500, 999 };
    const int32_t y1[4] = { 1, 1, 1, 1 };
    float a0[8], ae[8], b0[8], be[8], u0[8], n0[8];
    char err[DM_ERR_SIZE];
    assert_int_equal(da.eval(da.ctx, 4, x, t, y1, a0, ae, err), DM_OK);
    assert_int_equal(db.eval(db.ctx, 4, x, t, NULL, b0, be, err), DM_OK);
    for (size_t q = 0; q < 8; q++) {
        assert_true(fabsf(a0[q] - b0[q]) <= 1e-6f * (1 + fabsf(b0[q])));
        assert_true(fabsf(ae[q] - be[q]) <= 1e-5f * (1 + fabsf(be[q])));
    }
    /* NULL labels and all-null labels are the unconditional denoiser, bit for bit. */
    const int32_t yn[4] = { DM_NULL_CLASS, DM_NULL_CLASS, DM_NULL_CLASS, DM_NULL_CLASS };
    assert_int_equal(da.eval(da.ctx, 4, x, t, NULL, u0, NULL, err), DM_OK);
    assert_int_equal(da.eval(da.ctx, 4, x, t, yn, n0, NULL, err), DM_OK);
    assert_memory_equal(u0, n0, sizeof u0);
    const int32_t bad[4] = { 0, 2, 0, 0 };
    assert_int_equal(da.eval(da.ctx, 4, x, t, bad, a0, NULL, err), DM_E_INPUT);
    assert_non_null(strstr(err, "class 2"));
    dm_schedule_free(&s);
}

/* A conditional network: no labels = the null class; the label changes the prediction. */
static void test_conditional_network_labels(void **state)
{
    (void)state;
    enum { N = 4 };
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched(&s);
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, 2, 2, 2, 16, 2, 4, err), DM_OK);
    float *params = dm_malloc_aligned(sizeof(float) * mlp.n_params);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 5, err), DM_OK);
    dm_net_init_params(&mlp, params, &rng);
    dm_net_denoiser nd;
    dm_denoiser den;
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &mlp, params, &s, &dm_param_eps, NULL, 1.0, N, err), DM_OK);
    assert_int_equal(den.dim, 2);
    const float x[2 * N] = { 0.5f, -0.5f, 1.0f, 0.0f, -1.0f, 2.0f, 0.0f, 0.1f };
    const double t[N] = { 100, 100, 500, 900 };
    const int32_t yn[N] = { DM_NULL_CLASS, DM_NULL_CLASS, DM_NULL_CLASS, DM_NULL_CLASS };
    const int32_t y0[N] = { 0, 0, 0, 0 }, y1[N] = { 1, 1, 1, 1 };
    float a[2 * N], b[2 * N], c[2 * N], e[2 * N];
    assert_int_equal(den.eval(den.ctx, N, x, t, NULL, a, NULL, err), DM_OK);
    assert_int_equal(den.eval(den.ctx, N, x, t, yn, b, NULL, err), DM_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(den.eval(den.ctx, N, x, t, y0, c, NULL, err), DM_OK);
    assert_int_equal(den.eval(den.ctx, N, x, t, y1, e, NULL, err), DM_OK);
    assert_true(memcmp(c, e, sizeof c) != 0 && memcmp(a, c, sizeof a) != 0);
    dm_net_denoiser_free(&nd);
    dm_free_aligned(params);
    dm_net_free(&mlp);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* ---- guided sampling ------------------------------------------------------------------------ */

enum { NS = 2000 };

/* NS samples of DDIM (50 steps, eta 0) through den with labels i mod 2, noise from base. */
static void sample(const dm_denoiser *den, dm_schedule *s, uint64_t base, float *x)
{
    char err[DM_ERR_SIZE];
    static int32_t lab[NS];
    for (size_t i = 0; i < NS; i++)
        lab[i] = (int32_t)(i % 2);
    dm_denoiser d = *den;
    d.y = lab;
    dm_rng *rngs;
    assert_int_equal(dm_rng_streams_new(base, NS, &rngs, err), DM_OK);
    const dm_ddim_sampler_opts o = { .steps = 50, .eta = 0.0, .denoise = false };
    assert_int_equal(dm_sampler_sample(&dm_sampler_ddim, &o, &d, s, NS, rngs, x, NULL, err), DM_OK);
    dm_rng_streams_free(rngs, NS);
}

static void metrics(const float *x, const float *ref, const int32_t *ref_y, dm_cond_result *r)
{
    char err[DM_ERR_SIZE];
    static int32_t lab[NS];
    for (size_t i = 0; i < NS; i++)
        lab[i] = (int32_t)(i % 2);
    assert_int_equal(dm_cond_metrics(x, lab, NS, ref, ref_y, NS, 2, 2, &mix, 4000, r, err), DM_OK);
}

static void test_classifier_guidance_exact(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched(&s);
    float *ref = dm_malloc(sizeof(float) * NS * 2), *x = dm_malloc(sizeof(float) * NS * 2);
    int32_t *ref_y = dm_malloc(sizeof(int32_t) * NS);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 77, err), DM_OK);
    draw(&rng, DM_NULL_CLASS, NS, ref, ref_y);

    /* The exact-vs-exact spread: RMS of cond_mmd2 over independent exact class-conditional sets. */
    double ms = 0.0;
    dm_cond_result r;
    for (int rep = 0; rep < 6; rep++) {
        for (size_t i = 0; i < NS; i++)
            draw(&rng, (int32_t)(i % 2), 1, x + 2 * i, NULL);
        metrics(x, ref, ref_y, &r);
        ms += r.cond_mmd2 * r.cond_mmd2;
    }
    const double floor_rms = sqrt(ms / 6);

    dm_gmm_denoiser gd, gc;
    dm_denoiser den, gden;
    dm_classifier clf;
    dm_guided_denoiser g;
    dm_gmm_denoiser_init(&gd, &den, &mix, &s, NS);
    dm_gmm_classifier_init(&gc, &clf, &mix, &s, NS);
    const double gammas[] = { 1.0, 2.0, 4.0 };
    double share[3], var[3], ent[3];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dm_guided_denoiser_init(&g, &gden, &den, DM_GUIDE_CLASSIFIER, gammas[k], &clf, &s, err), DM_OK);
        sample(&gden, &s, 1234, x);
        dm_guided_denoiser_free(&g);
        metrics(x, ref, ref_y, &r);
        share[k] = r.class_share;
        var[k] = r.class_var;
        ent[k] = r.class_entropy;
        print_message("gamma %g: cond_mmd2 %.3g (exact-vs-exact rms %.3g) share %.4f var %.4f entropy %.4f\n",
                      gammas[k], r.cond_mmd2, floor_rms, r.class_share, r.class_var, r.class_entropy);
        if (k == 0)
            assert_true(r.cond_mmd2 < 2.0 * floor_rms);
    }
    assert_true(share[1] > share[0] && share[2] > share[1]);
    assert_true(var[1] < var[0] && var[2] < var[1]);
    assert_true(ent[1] < ent[0] && ent[2] < ent[1]);
    /* CFG at w = -1 is the unconditional model: its samples ignore the class asked for. */
    assert_int_equal(dm_guided_denoiser_init(&g, &gden, &den, DM_GUIDE_CFG, -1.0, NULL, &s, err), DM_OK);
    sample(&gden, &s, 1234, x);
    dm_guided_denoiser_free(&g);
    metrics(x, ref, ref_y, &r);
    assert_true(r.class_share < 0.6 && r.cond_mmd2 > 20 * floor_rms);
    dm_free(ref);
    dm_free(x);
    dm_free(ref_y);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

static void test_cfg_zero_is_conditional(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched(&s);
    float *a = dm_malloc(sizeof(float) * NS * 2), *b = dm_malloc(sizeof(float) * NS * 2);
    dm_guided_denoiser g;
    dm_denoiser gden;
    /* The exact conditional denoiser. */
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, &mix, &s, NS);
    assert_int_equal(dm_guided_denoiser_init(&g, &gden, &den, DM_GUIDE_CFG, 0.0, NULL, &s, err), DM_OK);
    sample(&den, &s, 99, a);
    sample(&gden, &s, 99, b);
    assert_memory_equal(a, b, sizeof(float) * NS * 2);
    dm_guided_denoiser_free(&g);
    /* A conditional network (initial weights). */
    dm_net mlp;
    assert_int_equal(dm_net_mlp_new(&mlp, 2, 2, 2, 32, 2, 8, err), DM_OK);
    float *params = dm_malloc_aligned(sizeof(float) * mlp.n_params);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 9, err), DM_OK);
    dm_net_init_params(&mlp, params, &rng);
    dm_net_denoiser nd;
    dm_denoiser nden;
    assert_int_equal(dm_net_denoiser_init(&nd, &nden, &mlp, params, &s, &dm_param_eps, NULL, 1.0, NS, err), DM_OK);
    assert_int_equal(dm_guided_denoiser_init(&g, &gden, &nden, DM_GUIDE_CFG, 0.0, NULL, &s, err), DM_OK);
    sample(&nden, &s, 99, a);
    sample(&gden, &s, 99, b);
    assert_memory_equal(a, b, sizeof(float) * NS * 2);
    dm_guided_denoiser_free(&g);
    /* w != 0 does change the samples. */
    assert_int_equal(dm_guided_denoiser_init(&g, &gden, &nden, DM_GUIDE_CFG, 1.0, NULL, &s, err), DM_OK);
    sample(&gden, &s, 99, b);
    assert_true(memcmp(a, b, sizeof(float) * NS * 2) != 0);
    dm_guided_denoiser_free(&g);
    dm_net_denoiser_free(&nd);
    dm_free_aligned(params);
    dm_net_free(&mlp);
    dm_rng_free(&rng);
    dm_free(a);
    dm_free(b);
    dm_schedule_free(&s);
}

static void test_cfg_equals_classifier_guidance(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched(&s);
    float *a = dm_malloc(sizeof(float) * NS * 2), *b = dm_malloc(sizeof(float) * NS * 2);
    dm_gmm_denoiser gd, gc;
    dm_denoiser den, ga, gb;
    dm_classifier clf;
    dm_guided_denoiser g1, g2;
    dm_gmm_denoiser_init(&gd, &den, &mix, &s, NS);
    dm_gmm_classifier_init(&gc, &clf, &mix, &s, NS);
    const double ws[] = { 0.5, 2.0 };
    for (int k = 0; k < 2; k++) {
        assert_int_equal(dm_guided_denoiser_init(&g1, &ga, &den, DM_GUIDE_CFG, ws[k], NULL, &s, err), DM_OK);
        assert_int_equal(dm_guided_denoiser_init(&g2, &gb, &den, DM_GUIDE_CLASSIFIER, 1.0 + ws[k], &clf, &s, err),
                         DM_OK);
        sample(&ga, &s, 5, a);
        sample(&gb, &s, 5, b);
        double worst = 0.0;
        for (size_t q = 0; q < NS * 2; q++)
            worst = fmax(worst, fabs((double)a[q] - b[q]));
        print_message("w %g: max |cfg - classifier guidance| = %.3g\n", ws[k], worst);
        assert_true(worst < 1e-3);
        dm_guided_denoiser_free(&g1);
        dm_guided_denoiser_free(&g2);
    }
    dm_free(a);
    dm_free(b);
    dm_schedule_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xent_gradient),
        cmocka_unit_test(test_gmm_classifier_gradient),
        cmocka_unit_test(test_net_classifier_gradient),
        cmocka_unit_test(test_gmm_conditional_denoiser),
        cmocka_unit_test(test_conditional_network_labels),
        cmocka_unit_test(test_classifier_guidance_exact),
        cmocka_unit_test(test_cfg_zero_is_conditional),
        cmocka_unit_test(test_cfg_equals_classifier_guidance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
