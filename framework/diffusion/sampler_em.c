/* Euler–Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6; score_sde_pytorch sampling.py
 * EulerMaruyamaPredictor, run as a predictor-only PC sampler):
 *   x <- x - [f(t) x - g(t)^2 s_hat] dt + g(t) sqrt(dt) z,  dt = t_k - t_{k+1} > 0,
 * with s_hat = -eps_hat / sigma(t) and the step sizes of the schedule's grid (score_sde uses
 * dt = 1/N on linspace(T, eps, N); our grids carry their own spacing).
 *
 * The end (see ode.h): score_sde returns the last step's noise-free mean x_mean (noise_removal).
 * Here the last step is a denoising step x <- x0_hat(x, t) = E[x0 | x_t] at the last time with
 * sigma > 0: at t_end on a VP / VE grid (with `denoise`, one more evaluation; for VE it is exactly
 * score_sde's last reverse-diffusion mean x + sigma_min^2 s_hat), and in place of the step onto
 * sigma = 0 on an EDM grid, where the EM mean x + 2 t^2 s_hat would overshoot Tweedie's
 * x + t^2 s_hat by a factor 2 in the correction. NFE = steps (+1 with denoise on a grid ending
 * at t_end > 0). */
#include <stddef.h>

#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    return dm_ode_need_continuous(s, "em", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_em_sampler_opts *o = opts;
    return dm_ode_steps_nfe(s, o->steps, o->denoise);
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_em_sampler_opts *o = opts;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, (int)o->steps, err);
    if (st)
        return st;
    dm_ode_start(&w, s, rngs, x);
    for (int k = 0; k < w.last; k++) {
        if ((st = dm_ode_eval(&w, den, w.ts[k], 0, 1, err)))
            goto out;
        dm_ode_em_step(&w, s, rngs, w.ts[k], w.ts[k + 1]);
    }
    if ((w.clean || o->denoise) && (st = dm_ode_denoise(&w, den, w.ts[w.last], err)))
        goto out;
    dm_ode_finish(&w, x);
out:
    dm_ode_work_free(&w);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    if (why)
        *why = "is stochastic: Euler-Maruyama on the reverse SDE adds fresh noise at every step";
    return 0;
}

static const dm_param_desc em_params[] = {
    { "steps", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(dm_em_sampler_opts, steps),
      "number of steps on the schedule's grid (score_sde: N = 1000)" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_em_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_em = {
    .info = { "em", "Euler-Maruyama on the reverse-time SDE (Song et al. 2021)", em_params,
              sizeof(dm_em_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
};
