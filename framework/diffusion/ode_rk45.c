/* The PF-ODE by GSL's adaptive Runge–Kutta 4(5) (ode_rk45.h). */
#include "diffusion/ode_rk45.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/samplers.h"

/* A bound on accepted + rejected steps, so that a stiff or broken denoiser ends in an error. */
#define RK45_MAX_STEPS 1000000ul

typedef struct rhs_ctx {
    dm_ode_work *w;
    const dm_denoiser *den;
    const dm_schedule *s;
    const char *who;
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
        c->st = dm_err(c->err, DM_E_NUMERIC, "%s: the PF-ODE drift is not finite at t = %g", c->who, t);
        return GSL_EBADFUNC;
    }
    return GSL_SUCCESS;
}

dm_status dm_ode_rk45(dm_ode_work *w, const dm_denoiser *den, const dm_schedule *s, double t0, double t1,
                      int method, double rtol, double atol, const char *who, int64_t *count, char *err)
{
    const size_t nd = w->n * w->d;
    rhs_ctx c = { .w = w, .den = den, .s = s, .who = who, .err = err };
    dm_status st = DM_OK;
    double *y = NULL;
    gsl_odeiv2_driver *drv = NULL;
    if (nd == 0)
        goto out;
    y = dm_malloc_aligned(sizeof(double) * nd);
    if (!y) {
        st = dm_err(err, DM_E_NOMEM, "%s: out of memory for %zu values", who, nd);
        goto out;
    }
    for (size_t q = 0; q < nd; q++)
        y[q] = w->x[q];
    gsl_odeiv2_system sys = { rhs, NULL, nd, &c };
    drv = gsl_odeiv2_driver_alloc_y_new(&sys, method == DM_RK45_RKCK ? gsl_odeiv2_step_rkck : gsl_odeiv2_step_rkf45,
                                        (t1 - t0) * 1e-3, atol, rtol);
    if (!drv) {
        st = dm_err(err, DM_E_NOMEM, "%s: GSL could not allocate its driver for %zu values", who, nd);
        goto out;
    }
    gsl_odeiv2_driver_set_nmax(drv, RK45_MAX_STEPS);
    double t = t0;
    const int gs = gsl_odeiv2_driver_apply(drv, &t, t1, y);
    if (gs != GSL_SUCCESS) {
        if (c.st)
            st = c.st;
        else
            st = dm_err(err, DM_E_NUMERIC, "%s: the ODE solver stopped at t = %g (%s) after %lld evaluations", who, t,
                        gsl_strerror(gs), (long long)c.count);
        goto out;
    }
    for (size_t q = 0; q < nd; q++)
        w->x[q] = y[q];
out:
    if (count)
        *count = c.count;
    if (drv)
        gsl_odeiv2_driver_free(drv);
    dm_free_aligned(y);
    return st;
}
