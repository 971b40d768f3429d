/* Shared helpers of the continuous-time samplers (see ode.h). */
#include "diffusion/ode.h"

#include <math.h>

#include "core/alloc.h"
#include "diffusion/samplers.h"

dm_status dm_ode_work_init(dm_ode_work *w, const dm_denoiser *den, const dm_schedule *s, size_t n,
                           int steps, char *err)
{
    const size_t d = den->dim, nd = n * d;
    dm_status st = DM_OK;
    *w = (dm_ode_work){ .n = n, .d = d, .steps = steps };
    if (steps < 1)
        return dm_err(err, DM_E_INPUT, "sampler.steps: %d; at least 1 is needed", steps);
    w->x = dm_malloc_aligned(sizeof(double) * nd);
    w->xf = dm_malloc_aligned(sizeof(float) * nd);
    w->x0 = dm_malloc_aligned(sizeof(float) * nd);
    w->eps = dm_malloc_aligned(sizeof(float) * nd);
    w->tbuf = dm_malloc(sizeof(double) * den->max_batch);
    w->ts = dm_malloc(sizeof(double) * (size_t)(steps + 1));
    if (!w->x || !w->xf || !w->x0 || !w->eps || !w->tbuf || !w->ts) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    if (den->max_batch == 0) {
        st = dm_err(err, DM_E_INTERNAL, "denoiser with max_batch = 0");
        goto out;
    }
    if ((st = s->ops->grid(s, steps, w->ts, err)))
        goto out;
    w->clean = s->ops->sigma(s, w->ts[steps]) == 0.0;
    w->last = w->clean ? steps - 1 : steps;
out:
    if (st)
        dm_ode_work_free(w);
    return st;
}

void dm_ode_work_free(dm_ode_work *w)
{
    dm_free_aligned(w->x);
    dm_free_aligned(w->xf);
    dm_free_aligned(w->x0);
    dm_free_aligned(w->eps);
    dm_free(w->tbuf);
    dm_free(w->ts);
    *w = (dm_ode_work){ 0 };
}

void dm_ode_start(dm_ode_work *w, const dm_schedule *s, dm_rng *rngs, float *xout)
{
    dm_sampler_init_noise(s, w->n, w->d, rngs, xout);
    for (size_t q = 0; q < w->n * w->d; q++)
        w->x[q] = xout[q];
}

dm_status dm_ode_eval(dm_ode_work *w, const dm_denoiser *den, double t, int want_x0, int want_eps,
                      char *err)
{
    const size_t nd = w->n * w->d;
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < nd; q++)
        w->xf[q] = (float)w->x[q];
    return dm_denoise_all(den, w->n, w->xf, t, w->tbuf, want_x0 ? w->x0 : NULL,
                          want_eps ? w->eps : NULL, err);
}

dm_status dm_ode_denoise(dm_ode_work *w, const dm_denoiser *den, double t, char *err)
{
    dm_status st = dm_ode_eval(w, den, t, 1, 0, err);
    if (st)
        return st;
    const size_t nd = w->n * w->d;
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < nd; q++)
        w->x[q] = w->x0[q];
    return DM_OK;
}

void dm_ode_finish(const dm_ode_work *w, float *xout)
{
    for (size_t q = 0; q < w->n * w->d; q++)
        xout[q] = (float)w->x[q];
}

double dm_ode_eps_coef(const dm_schedule *s, double t)
{
    return s->ops->g2(s, t) / (2.0 * s->ops->sigma(s, t));
}

void dm_ode_em_step(dm_ode_work *w, const dm_schedule *s, dm_rng *rngs, double t, double tn)
{
    const double dt = t - tn, f = s->ops->f(s, t), g2 = s->ops->g2(s, t);
    const double c_eps = g2 / s->ops->sigma(s, t), sd = sqrt(g2 * dt);
    const size_t d = w->d;
    /* Each row draws from its own stream: the result is independent of the thread count. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < w->n; i++) {
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            const double xm = w->x[q] - (f * w->x[q] + c_eps * w->eps[q]) * dt;
            w->x[q] = xm + sd * dm_rng_normal(&rngs[i]);
        }
    }
}

int dm_ode_grid_clean(const dm_schedule *s, int steps)
{
    if (steps < 1)
        return -1;
    char err[DM_ERR_SIZE];
    double *ts = dm_malloc(sizeof(double) * (size_t)(steps + 1));
    int r = -1;
    if (ts && s->ops->grid(s, steps, ts, err) == DM_OK)
        r = s->ops->sigma(s, ts[steps]) == 0.0;
    dm_free(ts);
    return r;
}

dm_status dm_ode_need_continuous(const dm_schedule *s, const char *sampler, char *err)
{
    if (s->discrete || !s->ops->f || !s->ops->g2)
        return dm_err(err, DM_E_INPUT,
                      "sampler.type: %s needs a continuous schedule (vp, subvp, ve, edm); '%s' is "
                      "discrete",
                      sampler, s->ops->info.name);
    return DM_OK;
}

int64_t dm_ode_steps_nfe(const dm_schedule *s, int64_t steps, bool denoise)
{
    const int clean = dm_ode_grid_clean(s, (int)steps);
    if (clean < 0)
        return -1;
    return steps + (denoise && !clean);
}
