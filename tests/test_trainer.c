/* The common trainer: same seed same bits on 1 and 2 threads, a different seed differs, a
 * checkpoint restored into a fresh trainer continues bit-identically, and the network denoiser
 * turns the eps output into the matching x0 estimate. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cblas.h>

#include "core/alloc.h"
#include "diffusion/denoiser_net.h"
#include "io/spec.h"
#include "train/schema.h"
#include "train/trainer.h"

static const char spec_text[] =
    "name: t\n"
    "data: {type: moons}\n"
    "model: {type: mlp, width: 32, depth: 2, nfreq: 8}\n"
    "diffusion: {schedule: {type: ddpm_linear, T: 100}}\n"
    "train: {batch: 64, n_data: 500, steps: 30, grad_clip: 1.0, warmup: 5, optimizer: adamw, weight_decay: 0.01}\n"
    "eval: {n_samples: 50, n_ref: 50, batch: 16}\n";

static dm_spec *load_over(int n_over, const char *const *over)
{
    char err[DM_ERR_SIZE];
    dm_spec *spec = NULL;
    dm_status st = dm_spec_load_text(&dm_spec_schema, spec_text, "<test>", n_over, over, &spec, err);
    if (st)
        print_error("%s\n", err);
    assert_int_equal(st, DM_OK);
    if ((st = dm_trainer_check(spec, err)))
        print_error("%s\n", err);
    assert_int_equal(st, DM_OK);
    return spec;
}

static dm_spec *load(const char *seed_override)
{
    const char *over[1] = { seed_override };
    return load_over(seed_override ? 1 : 0, over);
}

static void train(dm_trainer *tr, int steps)
{
    char err[DM_ERR_SIZE];
    double loss, gn;
    for (int i = 0; i < steps; i++) {
        assert_int_equal(dm_trainer_step(tr, &loss, &gn, err), DM_OK);
        assert_true(isfinite(loss) && isfinite(gn));
    }
}

static void final_sha(const char *seed_override, int threads, char hex[65])
{
    char err[DM_ERR_SIZE];
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    dm_spec *spec = load(seed_override);
    dm_trainer tr;
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    train(&tr, 30);
    dm_trainer_params_sha256(&tr, hex);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
}

static void test_deterministic_across_threads(void **state)
{
    (void)state;
    char a[65], b[65], c[65];
    final_sha(NULL, 1, a);
    final_sha(NULL, 2, b);
    assert_string_equal(a, b);
    final_sha("seed=1", 2, c);
    assert_string_not_equal(a, c);
}

/* Train 30 steps straight, and 30 steps as k + restore + (30 - k): same bits. */
static void resume_case(int n_over, const char *const *over, int k)
{
    char err[DM_ERR_SIZE];
    dm_spec *spec = load_over(n_over, over);
    dm_trainer full, part, resumed;
    assert_int_equal(dm_trainer_init(&full, spec, NULL, err), DM_OK);
    train(&full, 30);

    assert_int_equal(dm_trainer_init(&part, spec, NULL, err), DM_OK);
    train(&part, k);
    dm_ckpt_entry entries[DM_TRAIN_CKPT_ENTRIES];
    dm_ckpt c = { .entries = entries };
    unsigned char rng_buf[3 * 8192];
    assert_true(3 * dm_rng_state_size(&part.streams[0]) <= sizeof rng_buf);
    assert_int_equal(dm_trainer_ckpt_entries(&part, &c, rng_buf, err), DM_OK);
    assert_int_equal(c.step, k);

    assert_int_equal(dm_trainer_init(&resumed, spec, NULL, err), DM_OK);
    assert_int_equal(dm_trainer_restore(&resumed, &c, err), DM_OK);
    train(&resumed, 30 - k);
    assert_int_equal(resumed.step, 30);
    assert_memory_equal(full.params, resumed.params, sizeof(float) * full.net.n_params);
    assert_memory_equal(full.ema, resumed.ema, sizeof(float) * full.net.n_params);

    /* A checkpoint of another shape is refused with its name. */
    entries[0].count -= 1;
    assert_int_equal(dm_trainer_restore(&resumed, &c, err), DM_E_IO);
    assert_non_null(strstr(err, "params"));
    entries[0].count += 1;
    if (full.target) {
        /* The consistency target network is part of the state too (the last entry). */
        c.n -= 1;
        assert_int_equal(dm_trainer_restore(&resumed, &c, err), DM_E_IO);
        assert_non_null(strstr(err, "cm/target"));
        c.n += 1;
    }
    if (full.importance_t) {
        /* The t-sampler's history is part of the state: without it the run would diverge. */
        c.n -= 2;
        assert_int_equal(dm_trainer_restore(&resumed, &c, err), DM_E_IO);
        assert_non_null(strstr(err, "t-sampler"));
    }
    dm_trainer_free(&full);
    dm_trainer_free(&part);
    dm_trainer_free(&resumed);
    dm_spec_free(spec);
}

static void test_checkpoint_resume_bit_identical(void **state)
{
    (void)state;
    resume_case(0, NULL, 12);
}

/* The vlb loss with a learned variance (2 d outputs) and importance-sampled t: its history is
 * checkpointed. Cosine, T = 20 at batch 64: warm (10 losses at every t) after a few steps, so a checkpoint
 * at step 2 falls in the uniform warm-up and one at step 12 in the importance phase. */
static void test_checkpoint_resume_importance_t(void **state)
{
    (void)state;
    const char *over[] = { "diffusion.schedule={type: cosine, T: 20}", "diffusion.loss={type: vlb, variance: learned}" };
    char err[DM_ERR_SIZE];
    dm_spec *spec = load_over(2, over);
    dm_trainer tr;
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    assert_int_equal(tr.net.cfg.out_dim, 4);
    assert_true(tr.importance_t);
    train(&tr, 2);
    assert_false(dm_tsampler_warm(&tr.tsampler));
    train(&tr, 10);
    assert_true(dm_tsampler_warm(&tr.tsampler));
    dm_trainer_free(&tr);
    dm_spec_free(spec);
    resume_case(2, over, 2);
    resume_case(2, over, 12);
}

/* CT keeps a target network (an EMA with the curriculum's rate) in the checkpoint; CD from the
 * analytic teacher draws its teacher steps from the same streams. Both resume bit-identically, and
 * the trained consistency function is the identity at sigma_min, bit for bit. */
static const char *const ct_over[] = {
    "diffusion={schedule: {type: edm, time_input: cm}, param: {type: consistency, sigma_data: 0.5}, "
    "loss: {type: ct, s0: 2, s1: 20}}",
    "sampler={type: cm}", "data={type: eight_gaussians}" };
static const char *const cd_over[] = {
    "diffusion={schedule: {type: edm, time_input: cm}, param: consistency, loss: {type: cd, n: 10, mu: 0.5}}",
    "sampler={type: cm, steps: 2}", "data={type: eight_gaussians}", "distill.teacher=analytic" };

static void test_consistency_resume_and_boundary(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    resume_case(3, ct_over, 12);
    resume_case(4, cd_over, 7);

    dm_spec *spec = load_over(3, ct_over);
    dm_trainer tr;
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    assert_non_null(tr.target);
    train(&tr, 5);
    /* The target has moved towards the parameters, but is not them (mu < 1, > 0). */
    assert_memory_not_equal(tr.target, tr.params, sizeof(float) * tr.net.n_params);
    dm_net_denoiser nd;
    dm_denoiser den;
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &tr.net, tr.params, &tr.sched, tr.param, tr.param_opts,
                                          tr.sigma_data, 8, err), DM_OK);
    float x[16], x0[16];
    double t[8];
    for (int i = 0; i < 16; i++)
        x[i] = 37.0f * (float)(i - 7) + 0.1f * (float)i;
    for (int i = 0; i < 8; i++)
        t[i] = tr.sched.t_min;
    assert_int_equal(den.eval(den.ctx, 8, x, t, NULL, x0, NULL, err), DM_OK);
    assert_memory_equal(x, x0, sizeof x);
    t[3] = 0.5;
    assert_int_equal(den.eval(den.ctx, 8, x, t, NULL, x0, NULL, err), DM_OK);
    assert_memory_not_equal(x + 6, x0 + 6, 2 * sizeof(float));
    dm_net_denoiser_free(&nd);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
}

static void test_net_denoiser_consistent(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_spec *spec = load(NULL);
    dm_trainer tr;
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    dm_net_denoiser nd;
    dm_denoiser den;
    assert_int_equal(dm_net_denoiser_init(&nd, &den, &tr.net, tr.params, &tr.sched, tr.param, tr.param_opts,
                                          tr.sigma_data, 8, err), DM_OK);
    float x[16], x0[16], eps[16];
    double t[8];
    for (int i = 0; i < 16; i++)
        x[i] = 0.1f * (float)(i - 7);
    for (int i = 0; i < 8; i++)
        t[i] = 10.0 * i + 3;
    assert_int_equal(den.eval(den.ctx, 8, x, t, NULL, x0, eps, err), DM_OK);
    for (int i = 0; i < 8; i++) {
        const double a = tr.sched.ops->alpha(&tr.sched, t[i]), s = tr.sched.ops->sigma(&tr.sched, t[i]);
        for (int j = 0; j < 2; j++)
            assert_true(fabs(x0[2 * i + j] - (x[2 * i + j] - s * eps[2 * i + j]) / a) < 1e-4);
    }
    /* The same rows in a batch of one give the same outputs (no cross-row effects). */
    float e1[2];
    assert_int_equal(den.eval(den.ctx, 1, x + 6, t + 3, NULL, NULL, e1, err), DM_OK);
    assert_true(fabsf(e1[0] - eps[6]) < 1e-6f && fabsf(e1[1] - eps[7]) < 1e-6f);
    dm_net_denoiser_free(&nd);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
}

static void test_divergence_reported(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_spec *spec = load(NULL);
    dm_trainer tr;
    assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
    tr.params[0] = NAN;   /* a poisoned weight makes the loss NaN on the next step */
    double loss, gn;
    assert_int_equal(dm_trainer_step(&tr, &loss, &gn, err), DM_E_NUMERIC);
    assert_non_null(strstr(err, "NaN at step 1"));
    dm_trainer_free(&tr);
    dm_spec_free(spec);
}

/* eval.nll_sigma: the likelihood of the data blurred by sigma/alpha, whatever the schedule. With the
 * exact score, VP and sub-VP share one PF-ODE in sigma/alpha (alpha and the end sigma/alpha are
 * the same), so their NLLs from sigma/alpha = 0.05 agree to the solver's tolerance, although the
 * two reach that level at different times t and with different alpha(t); without the rescaling to
 * x_t / alpha they differ by about d |log alpha_VP - log alpha_subVP| = 2.4e-3 nats. */
static void test_nll_from_a_noise_level(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double nll[2];
    const char *scheds[2] = { "diffusion.schedule={type: vp}", "diffusion.schedule={type: subvp}" };
    for (int k = 0; k < 2; k++) {
        const char *over[] = { "data=eight_gaussians", "model=analytic", scheds[k], "diffusion.param=eps",
                               "sampler=euler", "eval.nll=true", "eval.nll_n=40", "eval.nll_sigma=0.05" };
        dm_spec *spec = load_over(8, over);
        dm_trainer tr;
        assert_int_equal(dm_trainer_init(&tr, spec, NULL, err), DM_OK);
        double eps;
        assert_int_equal(dm_trainer_nll_start(&tr, &eps, err), DM_OK);
        const double r = tr.sched.ops->sigma(&tr.sched, eps) / tr.sched.ops->alpha(&tr.sched, eps);
        assert_true(fabs(r - 0.05) < 1e-12);
        int64_t nfe;
        assert_int_equal(dm_trainer_nll(&tr, &nll[k], &nfe, err), DM_OK);
        dm_trainer_free(&tr);
        dm_spec_free(spec);
    }
    assert_true(fabs(nll[0] - nll[1]) < 2e-4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_across_threads),
        cmocka_unit_test(test_checkpoint_resume_bit_identical),
        cmocka_unit_test(test_checkpoint_resume_importance_t),
        cmocka_unit_test(test_consistency_resume_and_boundary),
        cmocka_unit_test(test_net_denoiser_consistent),
        cmocka_unit_test(test_divergence_reported),
        cmocka_unit_test(test_nll_from_a_noise_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
