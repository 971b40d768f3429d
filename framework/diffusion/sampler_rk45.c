/* Adaptive Runge–Kutta on the probability-flow ODE (score_sde_pytorch sampling.py
 * get_ode_sampler: scipy solve_ivp RK45, rtol = atol = 1e-5, the whole batch flattened into one
 * system, integrated from T down to eps, then optionally one denoising step; it reports
 * solution.nfev). Here GSL's gsl_odeiv2 driver with rkf45 (Runge–Kutta–Fehlberg 4(5)) or rkck
 * (Cash–Karp 4(5)) and the y-control |err_i| <= atol + rtol |y_i| (scipy's RK45 is
 * Dormand–Prince with an RMS norm, so step counts differ; the tolerances mean the same).
 * dy/dt = f(t) y + g^2(t)/(2 sigma(t)) eps_hat(y, t), the state in double, the denoiser fed a
 * float copy.
 *
 * Range: from the grid's first time to its last time with sigma > 0 (VP/VE: t_end; EDM:
 * sigma_min, since the drift is singular at sigma = 0), then x0_hat there — always on EDM (the
 * step onto sigma = 0), with `denoise` on VP/VE. One system for the whole batch means shared step
 * sizes: sample i's result depends on the other samples (on n, not on max_batch or threads).
 * NFE: only known afterwards (nfe() returns -1); dm_sampler_sample reports the count of
 * derivative evaluations made (+1 for the denoising step). The integration is diffusion/ode_rk45.c,
 * shared with eval.ode_err's reference solution. */
#include <stddef.h>

#include "diffusion/ode.h"
#include "diffusion/ode_rk45.h"
#include "diffusion/samplers.h"

static const char *const methods[] = { "rkf45", "rkck", NULL };

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    return dm_ode_need_continuous(s, "rk45", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    (void)opts;
    (void)s;
    return -1;
}

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    (void)why;
    return 1;
}

/* The range of run() below, with the final map: always on EDM, `denoise` on VP/VE. */
static dm_status span(const void *opts, const dm_schedule *s, dm_sampler_span *sp, char *err)
{
    const dm_rk45_sampler_opts *o = opts;
    return dm_sampler_grid_span(s, 2, o->denoise, sp, err);
}

static dm_status run(const dm_rk45_sampler_opts *o, const dm_denoiser *den, const dm_schedule *s,
                     size_t n, dm_rng *rngs, float *x, int64_t *nfe_done, char *err)
{
    dm_ode_work w;
    int64_t count = 0;
    /* The grid of two steps gives the range: VP/VE (1, mid, t_end); EDM (sigma_max, sigma_min, 0). */
    dm_status st = dm_ode_work_init(&w, den, s, n, 2, err);
    if (st)
        return st;
    const double t0 = w.ts[0], t1 = w.ts[w.last];
    if (n * w.d > 0) {
        dm_ode_start(&w, s, rngs, x);
        if ((st = dm_ode_rk45(&w, den, s, t0, t1, o->method, o->rtol, o->atol, "rk45", &count, err)))
            goto out;
    }
    if (w.clean || o->denoise) {
        if ((st = dm_ode_denoise(&w, den, t1, err)))
            goto out;
        count++;
    }
    dm_ode_finish(&w, x);
    if (nfe_done)
        *nfe_done = count;
out:
    dm_ode_work_free(&w);
    return st;
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    return run(opts, den, s, n, rngs, x, NULL, err);
}

static dm_status sample_counted(const void *opts, const dm_denoiser *den, const dm_schedule *s,
                                size_t n, dm_rng *rngs, float *x, int64_t *nfe_done, char *err)
{
    return run(opts, den, s, n, rngs, x, nfe_done, err);
}

static const dm_param_desc rk45_params[] = {
    { "method", DM_OPT_CHOICE, "rkf45", 0, 0, methods, 0, offsetof(dm_rk45_sampler_opts, method),
      "GSL stepper: rkf45 (Runge-Kutta-Fehlberg) or rkck (Cash-Karp)" },
    { "rtol", DM_OPT_REAL, "1e-5", 1e-14, 1, NULL, 0, offsetof(dm_rk45_sampler_opts, rtol),
      "relative tolerance (score_sde: 1e-5)" },
    { "atol", DM_OPT_REAL, "1e-5", 1e-14, 1, NULL, 0, offsetof(dm_rk45_sampler_opts, atol),
      "absolute tolerance (score_sde: 1e-5)" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_rk45_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_rk45 = {
    .info = { "rk45", "adaptive Runge-Kutta 4(5) on the probability-flow ODE (GSL)", rk45_params,
              sizeof(dm_rk45_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .sample_counted = sample_counted,
    .deterministic = deterministic,
    .span = span,
};
