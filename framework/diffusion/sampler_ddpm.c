/* DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) on any grid of a discrete schedule.
 *
 * Between consecutive grid points t > t' (t' = -1 is clean data), beta = 1 - abar_t / abar_t'
 * (for the full grid this is the schedule's beta_t; for a respaced grid it is the respaced beta,
 * as improved-diffusion's SpacedDiffusion), and
 *   x_t' = (x_t - beta / sqrt(1 - abar_t) * eps_hat) / sqrt(1 - beta) + sigma z,
 * the mean of the posterior q(x_t' | x_t, x0) with x0 replaced by the network's estimate, written
 * in eps form (FORMULAS.md, "DDPM posterior"). sigma^2 is beta ("beta"), the posterior variance
 * beta_tilde = (1 - abar_t') / (1 - abar_t) beta ("beta_tilde"), or per coordinate the model's
 * learned interpolation exp(v log beta + (1 - v) log beta_tilde) ("learned", improved DDPM; on a
 * respaced grid between the respaced beta and beta_tilde, as improved-diffusion). No noise is added
 * on the last step. The step itself is dm_ddpm_ancestral_row (diffusion/ddpm_step.h), which
 * tests/test_ddpm_step.c checks draw by draw. */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/samplers.h"

static int n_steps(const dm_ddpm_sampler_opts *o, const dm_schedule *s)
{
    return o->steps > 0 ? (int)o->steps : s->T;
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    const dm_ddpm_sampler_opts *o = opts;
    if (!s->discrete)
        return dm_err(err, DM_E_INPUT,
                      "sampler.type: ddpm (ancestral) needs a discrete schedule; '%s' is continuous",
                      s->ops->info.name);
    if (o->steps > s->T)
        return dm_err(err, DM_E_INPUT, "sampler.steps: %lld exceeds the schedule's T = %d",
                      (long long)o->steps, s->T);
    return DM_OK;
}

static int64_t nfe(const void *opts, const dm_schedule *s) { return n_steps(opts, s); }

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_ddpm_sampler_opts *o = opts;
    const size_t d = den->dim;
    const int steps = n_steps(o, s);
    dm_status st = DM_OK;
    double *ts = dm_malloc(sizeof(double) * (size_t)(steps + 1));
    double *tbuf = dm_malloc(sizeof(double) * den->max_batch);
    float *eps = dm_malloc_aligned(sizeof(float) * n * d);
    float *v = o->variance == DM_VAR_LEARNED ? dm_malloc_aligned(sizeof(float) * n * d) : NULL;
    if (!ts || !tbuf || !eps || (o->variance == DM_VAR_LEARNED && !v)) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    if ((st = s->ops->grid(s, steps, ts, err)))
        goto out;

    dm_sampler_init_noise(s, n, d, rngs, x);

    for (int k = 0; k < steps; k++) {
        const int t = (int)ts[k];
        dm_ddpm_ancestral a;
        dm_ddpm_ancestral_at(s, t, (int)ts[k + 1], k > 0 ? (int)ts[k - 1] : -1, o->variance, &a);
        if (v)
            st = dm_denoise_all_var(den, n, x, t, tbuf, eps, v, err);
        else
            st = dm_denoise_all(den, n, x, t, tbuf, NULL, eps, err);
        if (st)
            goto out;
        /* Each row draws from its own stream: the result is independent of the thread count. */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            dm_ddpm_ancestral_row(&a, d, x + i * d, eps + i * d, v ? v + i * d : NULL, &rngs[i]);
    }
out:
    dm_free(ts);
    dm_free(tbuf);
    dm_free_aligned(eps);
    dm_free_aligned(v);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    if (why)
        *why = "is stochastic: ancestral sampling adds fresh noise at every step but the last";
    return 0;
}

static const dm_param_desc ddpm_params[] = {
    { "steps", DM_OPT_INT, "0", 0, 100000, NULL, 0, offsetof(dm_ddpm_sampler_opts, steps),
      "number of reverse steps on an evenly respaced grid; 0 = every step of the schedule" },
    { "variance", DM_OPT_CHOICE, "beta", 0, 0, dm_var_names, 0, offsetof(dm_ddpm_sampler_opts, variance),
      "reverse-step variance: beta (sigma^2 = beta_t), beta_tilde (the posterior variance) or learned "
      "(the model's interpolation; diffusion.loss hybrid or vlb with variance: learned)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_ddpm = {
    .info = { "ddpm", "DDPM ancestral sampling (Ho et al. 2020, Algorithm 2)", ddpm_params,
              sizeof(dm_ddpm_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
};
