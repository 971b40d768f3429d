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
 * derivative evaluations made (+1 for the denoising step). GSL calls its error handler (abort by
 * default) only on allocation failure of its own objects. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/ode.h"
#include "diffusion/samplers.h"

/* A bound on accepted + rejected steps, so that a stiff or broken denoiser ends in an error. */
#define RK45_MAX_STEPS 1000000ul

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

typedef struct rhs_ctx {
    dm_ode_work *w;
    const dm_denoiser *den;
    const dm_schedule *s;
    int64_t count;
    dm_status st;
    char *err;
} rhs_ctx;

static int rhs(double t, const double y[], double dydt[], void *params)
{
    rhs_ctx *c = params;
    dm_ode_work *w = c->w;
    const size_t nd = w->n * w->d;
    /* The driver hands its own stage vectors; the denoiser reads w->x. */
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < nd; q++)
        w->x[q] = y[q];
    c->count++;
    if ((c->st = dm_ode_eval(w, c->den, t, 0, 1, c->err)))
        return GSL_EBADFUNC;
    const double f = c->s->ops->f(c->s, t), k = dm_ode_eps_coef(c->s, t);
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (size_t q = 0; q < nd; q++) {
        dydt[q] = f * y[q] + k * w->eps[q];
        bad |= !isfinite(dydt[q]);
    }
    if (bad) {
        c->st = dm_err(c->err, DM_E_NUMERIC, "rk45: the PF-ODE drift is not finite at t = %g", t);
        return GSL_EBADFUNC;
    }
    return GSL_SUCCESS;
}

static dm_status run(const dm_rk45_sampler_opts *o, const dm_denoiser *den, const dm_schedule *s,
                     size_t n, dm_rng *rngs, float *x, int64_t *nfe_done, char *err)
{
    dm_ode_work w;
    double *y = NULL;
    gsl_odeiv2_driver *drv = NULL;
    /* The grid of two steps gives the range: VP/VE (1, mid, t_end); EDM (sigma_max, sigma_min, 0). */
    dm_status st = dm_ode_work_init(&w, den, s, n, 2, err);
    if (st)
        return st;
    const size_t nd = n * w.d;
    rhs_ctx c = { .w = &w, .den = den, .s = s, .err = err };
    const double t0 = w.ts[0], t1 = w.ts[w.last];
    if (nd == 0)
        goto done;
    y = dm_malloc_aligned(sizeof(double) * nd);
    if (!y) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    dm_ode_start(&w, s, rngs, x);
    for (size_t q = 0; q < nd; q++)
        y[q] = w.x[q];
    gsl_odeiv2_system sys = { rhs, NULL, nd, &c };
    drv = gsl_odeiv2_driver_alloc_y_new(&sys, o->method == DM_RK45_RKCK ? gsl_odeiv2_step_rkck
                                                                          : gsl_odeiv2_step_rkf45,
                                        (t1 - t0) * 1e-3, o->atol, o->rtol);
    if (!drv) {
        st = dm_err(err, DM_E_NOMEM, "rk45: GSL could not allocate its driver for %zu values", nd);
        goto out;
    }
    gsl_odeiv2_driver_set_nmax(drv, RK45_MAX_STEPS);
    double t = t0;
    const int gs = gsl_odeiv2_driver_apply(drv, &t, t1, y);
    if (gs != GSL_SUCCESS) {
        if (c.st)
            st = c.st;
        else
            st = dm_err(err, DM_E_NUMERIC, "rk45: the ODE solver stopped at t = %g (%s) after %lld "
                        "evaluations", t, gsl_strerror(gs), (long long)c.count);
        goto out;
    }
    for (size_t q = 0; q < nd; q++)
        w.x[q] = y[q];
done:
    if (w.clean || o->denoise) {
        if ((st = dm_ode_denoise(&w, den, t1, err)))
            goto out;
        c.count++;
    }
    dm_ode_finish(&w, x);
    if (nfe_done)
        *nfe_done = c.count;
out:
    if (drv)
        gsl_odeiv2_driver_free(drv);
    dm_free_aligned(y);
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
};
