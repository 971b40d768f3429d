/* Euler's method on the probability-flow ODE (Song et al. 2021, eq. 13; Karras et al. 2022,
 * Algorithm 1 without the 2nd-order correction — NVlabs/edm generate.py ablation_sampler with
 * solver='euler'):
 *   x_{k+1} = x_k + (t_{k+1} - t_k) [f(t_k) x_k + g^2(t_k) / (2 sigma(t_k)) eps_hat(x_k, t_k)],
 * on the schedule's grid. On EDM (f = 0, g^2 = 2t) the bracket is (x - D)/t, and the last step
 * onto t = 0 gives x = D(x; t_{N-1}). NFE = steps (+1 with denoise on a grid ending at t_end > 0). */
#include <stddef.h>

#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    return dm_ode_need_continuous(s, "euler", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_euler_sampler_opts *o = opts;
    return dm_ode_steps_nfe(s, o->steps, o->denoise);
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_euler_sampler_opts *o = opts;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, (int)o->steps, err);
    if (st)
        return st;
    dm_ode_start(&w, s, rngs, x);
    const size_t nd = n * w.d;
    for (int k = 0; k < w.steps; k++) {
        const double t = w.ts[k], h = w.ts[k + 1] - t;
        const double f = s->ops->f(s, t), c = dm_ode_eps_coef(s, t);
        if ((st = dm_ode_eval(&w, den, t, 0, 1, err)))
            goto out;
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < nd; q++)
            w.x[q] += h * (f * w.x[q] + c * w.eps[q]);
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
    (void)opts;
    (void)why;
    return 1;
}

static dm_status span(const void *opts, const dm_schedule *s, dm_sampler_span *sp, char *err)
{
    const dm_euler_sampler_opts *o = opts;
    return dm_sampler_grid_span(s, (int)o->steps, o->denoise, sp, err);
}

static const dm_param_desc euler_params[] = {
    { "steps", DM_OPT_INT, "100", 1, 100000, NULL, 0, offsetof(dm_euler_sampler_opts, steps),
      "number of Euler steps on the schedule's grid" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_euler_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_euler = {
    .info = { "euler", "Euler's method on the probability-flow ODE", euler_params,
              sizeof(dm_euler_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
    .span = span,
};
