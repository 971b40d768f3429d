/* DDIM (Song et al. 2021a, eq. 12; openai/improved-diffusion gaussian_diffusion.py ddim_sample) on
 * any schedule: a discrete one's respaced grid (ending at -1 = clean) or a continuous one's grid.
 *
 * From time t to the next grid time s, with x0_hat and eps_hat of the denoiser at t:
 *   x_s = alpha_s x0_hat + sqrt(sigma_s^2 - sig^2) eps_hat + sig z,
 *   sig^2 = eta^2 (sigma_s^2 / sigma_t^2) (sigma_t^2 - a^2 sigma_s^2),  a = alpha_t / alpha_s.
 * (sigma_t^2 - a^2 sigma_s^2) is the variance of the forward kernel x_t | x_s, so sig^2 (eta = 1)
 * is the variance of the posterior q(x_s | x_t, x0). With alpha^2 + sigma^2 = 1 it is
 * improved-diffusion's eta^2 (1 - abar_prev)/(1 - abar) (1 - abar/abar_prev) (FORMULAS.md's
 * sigma-tilde); written this way it also holds for VE and EDM (alpha = 1), where FORMULAS.md's
 * form would give 0. No noise is drawn where sig = 0 (eta = 0, or the step onto sigma = 0). */
#include <math.h>
#include <stddef.h>

#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static int n_steps(const dm_ddim_sampler_opts *o, const dm_schedule *s)
{
    return o->steps > 0 ? (int)o->steps : s->T;
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    const dm_ddim_sampler_opts *o = opts;
    if (s->discrete) {
        if (o->steps > s->T)
            return dm_err(err, DM_E_INPUT, "sampler.steps: %lld exceeds the schedule's T = %d",
                          (long long)o->steps, s->T);
        return DM_OK;
    }
    if (o->steps < 1)
        return dm_err(err, DM_E_INPUT,
                      "sampler.steps: 0 (every step) needs a discrete schedule; '%s' is continuous",
                      s->ops->info.name);
    return DM_OK;
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_ddim_sampler_opts *o = opts;
    const int steps = n_steps(o, s), clean = dm_ode_grid_clean(s, steps);
    if (clean < 0)
        return -1;
    return steps + (o->denoise && !clean);
}

/* One DDIM step from t to (alpha_s, sigma_s), the denoiser's outputs at t in w. */
static void ddim_step(dm_ode_work *w, dm_rng *rngs, double eta, double at, double st, double as,
                      double ss)
{
    double var = 0.0;
    if (ss > 0.0) {
        const double a = at / as;
        var = eta * eta * (ss * ss / (st * st)) * (st * st - a * a * ss * ss);
        if (var < 0.0)
            var = 0.0;
    }
    const double sig = sqrt(var), c_eps = ss > 0.0 ? sqrt(fmax(ss * ss - var, 0.0)) : 0.0;
    const size_t d = w->d;
    /* Each row draws from its own stream: the result is independent of the thread count. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < w->n; i++) {
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            double v = as * w->x0[q] + c_eps * w->eps[q];
            if (sig > 0.0)
                v += sig * dm_rng_normal(&rngs[i]);
            w->x[q] = v;
        }
    }
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_ddim_sampler_opts *o = opts;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, n_steps(o, s), err);
    if (st)
        return st;
    dm_ode_start(&w, s, rngs, x);
    for (int k = 0; k < w.steps; k++) {
        const double t = w.ts[k], tn = w.ts[k + 1];
        if ((st = dm_ode_eval(&w, den, t, 1, 1, err)))
            goto out;
        ddim_step(&w, rngs, o->eta, s->ops->alpha(s, t), s->ops->sigma(s, t), s->ops->alpha(s, tn),
                  s->ops->sigma(s, tn));
    }
    if (o->denoise && !w.clean && (st = dm_ode_denoise(&w, den, w.ts[w.steps], err)))
        goto out;
    dm_ode_finish(&w, x);
out:
    dm_ode_work_free(&w);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    const dm_ddim_sampler_opts *o = opts;
    if (o->eta > 0.0) {
        if (why)
            *why = "is stochastic with eta > 0: it adds fresh noise at every step but the last";
        return 0;
    }
    return 1;
}

static dm_status span(const void *opts, const dm_schedule *s, dm_sampler_span *sp, char *err)
{
    const dm_ddim_sampler_opts *o = opts;
    return dm_sampler_grid_span(s, n_steps(o, s), o->denoise, sp, err);
}

static const dm_param_desc ddim_params[] = {
    { "steps", DM_OPT_INT, "50", 0, 100000, NULL, 0, offsetof(dm_ddim_sampler_opts, steps),
      "number of steps on the schedule's grid; 0 = every step of a discrete schedule" },
    { "eta", DM_OPT_REAL, "0", 0, 1, NULL, 0, offsetof(dm_ddim_sampler_opts, eta),
      "noise scale: 0 deterministic DDIM, 1 ancestral (posterior variance)" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_ddim_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_ddim = {
    .info = { "ddim", "DDIM (Song et al. 2021a), eta interpolates to ancestral sampling",
              ddim_params, sizeof(dm_ddim_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
    .span = span,
};
