/* DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2; k-diffusion sampling.py
 * sample_dpmpp_2m; LuChengTHU/dpm-solver multistep_dpm_solver_second_update, "dpmsolver++",
 * solver_type "midpoint"), on the schedule's grid, with lambda(t) = log(alpha / sigma):
 *   D_i = x0_hat(x_{t_i}, t_i),  h = lambda_{i+1} - lambda_i,  r = h_last / h,
 *   D' = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}   (first order: D' = D_i),
 *   x_{t_{i+1}} = (sigma_{i+1} / sigma_i) x_{t_i} - alpha_{i+1} (e^{-h} - 1) D'.
 * First order on the first step, on a step onto sigma = 0 (lambda = inf: x = alpha D_i = D_i, as
 * k-diffusion's `sigmas[i + 1] == 0` branch), and with lower_order_final on the last step when
 * the grid has fewer than 10 steps (dpm_solver_pytorch.py: `lower_order_final and steps < 10`;
 * its default is on). k-diffusion's form is the alpha = 1 case (sigma_fn = exp(-t)).
 * NFE = steps (+1 with denoise on a grid ending at t_end > 0: DPM-Solver's denoise_to_zero). */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    return dm_ode_need_continuous(s, "dpmpp2m", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_dpmpp2m_sampler_opts *o = opts;
    return dm_ode_steps_nfe(s, o->steps, o->denoise);
}

static double lambda(const dm_schedule *s, double t) { return log(s->ops->alpha(s, t) / s->ops->sigma(s, t)); }

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_dpmpp2m_sampler_opts *o = opts;
    const int N = (int)o->steps;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, N, err);
    if (st)
        return st;
    const size_t nd = n * w.d;
    float *prev = dm_malloc_aligned(sizeof(float) * nd); /* D_{i-1} */
    if (!prev) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    dm_ode_start(&w, s, rngs, x);
    double h_last = 0.0;
    for (int i = 0; i < N; i++) {
        const double t = w.ts[i], tn = w.ts[i + 1];
        if ((st = dm_ode_eval(&w, den, t, 1, 0, err)))
            goto out;
        const double sn = s->ops->sigma(s, tn), an = s->ops->alpha(s, tn);
        if (sn == 0.0) {
#pragma omp parallel for schedule(static)
            for (size_t q = 0; q < nd; q++)
                w.x[q] = an * w.x0[q];
            continue;
        }
        const double h = lambda(s, tn) - lambda(s, t);
        const double c_x = sn / s->ops->sigma(s, t), c_d = -an * expm1(-h);
        const int first = i == 0 || (o->lower_order_final && N < 10 && i == N - 1);
        const double r = first ? 1.0 : h_last / h;
        const double c1 = 1.0 / (2.0 * r), c0 = 1.0 + c1;
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < nd; q++) {
            /* prev is not yet set on the first step: never read it there. */
            const double D = first ? (double)w.x0[q] : c0 * w.x0[q] - c1 * prev[q];
            w.x[q] = c_x * w.x[q] + c_d * D;
            prev[q] = w.x0[q];
        }
        h_last = h;
    }
    if (o->denoise && !w.clean && (st = dm_ode_denoise(&w, den, w.ts[N], err)))
        goto out;
    dm_ode_finish(&w, x);
out:
    dm_free_aligned(prev);
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
    const dm_dpmpp2m_sampler_opts *o = opts;
    return dm_sampler_grid_span(s, (int)o->steps, o->denoise, sp, err);
}

static const dm_param_desc dpmpp_params[] = {
    { "steps", DM_OPT_INT, "20", 1, 100000, NULL, 0, offsetof(dm_dpmpp2m_sampler_opts, steps),
      "number of steps on the schedule's grid" },
    { "lower_order_final", DM_OPT_BOOL, "true", 0, 0, NULL, 0,
      offsetof(dm_dpmpp2m_sampler_opts, lower_order_final),
      "below 10 steps, take the last step at first order (DPM-Solver's default)" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_dpmpp2m_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_dpmpp2m = {
    .info = { "dpmpp2m", "DPM-Solver++(2M) (Lu et al. 2022), multistep, second order",
              dpmpp_params, sizeof(dm_dpmpp2m_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
    .span = span,
};
