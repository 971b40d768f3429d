/* eval.ode_err's reference solution (ode_ref.h). */
#include "diffusion/ode_ref.h"

#include <stddef.h>

#include "diffusion/ode.h"
#include "diffusion/ode_rk45.h"
#include "diffusion/samplers.h"

static const char *const methods[] = { "rkf45", "rkck", NULL };

dm_status dm_ode_ref_check(const dm_sampler_ops *sampler, const void *opts, const dm_schedule *s, char *err)
{
    const char *name = sampler->info.name, *why = "is not known to be deterministic";
    if (!sampler->deterministic || !sampler->deterministic(opts, &why))
        return dm_err(err, DM_E_INPUT,
                      "eval.ode_err: sampler '%s' %s; ode_err compares a deterministic PF-ODE sampler (euler, "
                      "heun with s_churn 0, ddim with eta 0, dpmpp2m, rk45) with the ODE's solution from the same "
                      "initial noise: choose one, or set eval.ode_err=false", name, why);
    if (!sampler->span)
        return dm_err(err, DM_E_INPUT, "eval.ode_err: sampler '%s' solves no probability-flow ODE, so it has no "
                      "reference solution; set eval.ode_err=false", name);
    if (s->discrete || !s->ops->f || !s->ops->g2)
        return dm_err(err, DM_E_INPUT,
                      "eval.ode_err: sampler '%s' has no reference on '%s': it is a discrete schedule, whose alpha, "
                      "sigma and model exist only at the integer steps, so the PF-ODE between them (which the "
                      "reference integrates in continuous time) is not defined; use a continuous schedule (vp, "
                      "subvp, ve, edm) or set eval.ode_err=false", name, s->ops->info.name);
    return DM_OK;
}

dm_status dm_ode_ref_opts_for(const dm_sampler_ops *sampler, const void *opts, const dm_schedule *s, double tol,
                              int64_t n, dm_ode_ref_opts *o, char *err)
{
    dm_sampler_span sp;
    dm_status st = dm_ode_ref_check(sampler, opts, s, err);
    if (st || (st = sampler->span(opts, s, &sp, err)))
        return st;
    *o = (dm_ode_ref_opts){ .t_first = sp.t_first, .t_last = sp.t_last, .denoise = sp.final_denoise,
                            .method = DM_RK45_RKF45, .rtol = tol, .atol = tol, .n = n };
    return DM_OK;
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    const dm_ode_ref_opts *o = opts;
    dm_status st = dm_ode_need_continuous(s, "ode_ref", err);
    if (st)
        return st;
    if (!(o->t_last <= o->t_first) || !(s->ops->sigma(s, o->t_last) > 0.0))
        return dm_err(err, DM_E_INPUT, "ode_ref: the span from t = %g to %g must run down to a time with sigma > 0",
                      o->t_first, o->t_last);
    return DM_OK;
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    (void)opts;
    (void)s;
    return -1;
}

static dm_status sample_counted(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                                dm_rng *rngs, float *x, int64_t *nfe_done, char *err)
{
    const dm_ode_ref_opts *o = opts;
    const size_t m = o->n > 0 && (size_t)o->n < n ? (size_t)o->n : n;
    int64_t count = 0;
    dm_ode_work w;
    dm_status st = check(opts, s, err);
    if (st)
        return st;
    /* All n rows get their initial noise (the rows past m stay so); the first m are solved. */
    dm_sampler_init_noise(s, n, den->dim, rngs, x);
    if (m == 0 || den->dim == 0)
        goto done;
    if ((st = dm_ode_work_init(&w, den, s, m, 1, err)))
        return st;
    for (size_t q = 0; q < m * w.d; q++)
        w.x[q] = x[q];
    if (o->t_last < o->t_first &&
        (st = dm_ode_rk45(&w, den, s, o->t_first, o->t_last, o->method, o->rtol, o->atol, "eval.ode_err reference",
                          &count, err)))
        goto out;
    if (o->denoise) {
        if ((st = dm_ode_denoise(&w, den, o->t_last, err)))
            goto out;
        count++;
    }
    dm_ode_finish(&w, x);
out:
    dm_ode_work_free(&w);
    if (st)
        return st;
done:
    if (nfe_done)
        *nfe_done = count;
    return DM_OK;
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n, dm_rng *rngs,
                        float *x, char *err)
{
    return sample_counted(opts, den, s, n, rngs, x, NULL, err);
}

static const dm_param_desc ref_params[] = {
    { "t_first", DM_OPT_REAL, "1", 0, 1e30, NULL, 0, offsetof(dm_ode_ref_opts, t_first),
      "where the integration starts from the sampler's initial noise (its first grid time)" },
    { "t_last", DM_OPT_REAL, "1e-3", 0, 1e30, NULL, 0, offsetof(dm_ode_ref_opts, t_last),
      "where it stops (the sampler's last time with sigma > 0)" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_ode_ref_opts, denoise),
      "the final map: x0_hat(x, t_last)" },
    { "method", DM_OPT_CHOICE, "rkf45", 0, 0, methods, 0, offsetof(dm_ode_ref_opts, method),
      "GSL stepper: rkf45 (Runge-Kutta-Fehlberg) or rkck (Cash-Karp)" },
    { "rtol", DM_OPT_REAL, "1e-9", 1e-14, 1, NULL, 0, offsetof(dm_ode_ref_opts, rtol), "relative tolerance" },
    { "atol", DM_OPT_REAL, "1e-9", 1e-14, 1, NULL, 0, offsetof(dm_ode_ref_opts, atol), "absolute tolerance" },
    { "n", DM_OPT_INT, "0", 0, 1e9, NULL, 0, offsetof(dm_ode_ref_opts, n), "rows solved (0: all)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_ode_ref_sampler = {
    .info = { "ode_ref", "eval.ode_err's reference: the PF-ODE over a sampler's span by RK45 at a tight tolerance",
              ref_params, sizeof(dm_ode_ref_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .sample_counted = sample_counted,
};
