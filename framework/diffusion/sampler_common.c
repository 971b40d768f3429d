/* Helpers every sampler shares. */
#include "diffusion/samplers.h"

#include "core/alloc.h"

dm_status dm_denoise_all(const dm_denoiser *den, size_t n, const float *x, double t, double *tbuf,
                         float *x0, float *eps, char *err)
{
    const size_t d = den->dim;
    for (size_t i = 0; i < den->max_batch; i++)
        tbuf[i] = t;
    for (size_t i0 = 0; i0 < n; i0 += den->max_batch) {
        size_t m = n - i0 < den->max_batch ? n - i0 : den->max_batch;
        dm_status st = den->eval(den->ctx, m, x + i0 * d, tbuf, den->y ? den->y + i0 : NULL, x0 ? x0 + i0 * d : NULL,
                                 eps ? eps + i0 * d : NULL, err);
        if (st)
            return st;
    }
    return DM_OK;
}

dm_status dm_denoise_all_var(const dm_denoiser *den, size_t n, const float *x, double t, double *tbuf,
                             float *eps, float *v, char *err)
{
    const size_t d = den->dim;
    if (!den->eval_var)
        return dm_err(err, DM_E_INPUT, "sampler.variance: learned needs a model trained with a learned "
                                       "variance (diffusion.loss: hybrid, or vlb with variance: learned)");
    for (size_t i = 0; i < den->max_batch; i++)
        tbuf[i] = t;
    for (size_t i0 = 0; i0 < n; i0 += den->max_batch) {
        size_t m = n - i0 < den->max_batch ? n - i0 : den->max_batch;
        dm_status st = den->eval_var(den->ctx, m, x + i0 * d, tbuf, den->y ? den->y + i0 : NULL, NULL, eps + i0 * d,
                                     v + i0 * d, err);
        if (st)
            return st;
    }
    return DM_OK;
}

void dm_sampler_init_noise(const dm_schedule *s, size_t n, size_t d, dm_rng *rngs, float *x)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(s->prior_std * dm_rng_normal(&rngs[i]));
}

dm_status dm_sampler_sample(const dm_sampler_ops *ops, const void *opts, const dm_denoiser *den,
                            const dm_schedule *s, size_t n, dm_rng *rngs, float *x,
                            int64_t *nfe_done, char *err)
{
    if (ops->sample_counted)
        return ops->sample_counted(opts, den, s, n, rngs, x, nfe_done, err);
    dm_status st = ops->sample(opts, den, s, n, rngs, x, err);
    if (!st && nfe_done)
        *nfe_done = ops->nfe(opts, s);
    return st;
}

dm_status dm_sampler_grid_span(const dm_schedule *s, int steps, bool denoise, dm_sampler_span *sp,
                               char *err)
{
    if (steps < 1)
        return dm_err(err, DM_E_INPUT, "sampler.steps: %d; at least 1 is needed", steps);
    double *ts = dm_malloc(sizeof(double) * (size_t)(steps + 1));
    if (!ts)
        return dm_err(err, DM_E_NOMEM, "out of memory for a grid of %d steps", steps);
    dm_status st = s->ops->grid(s, steps, ts, err);
    if (!st) {
        const bool clean = s->ops->sigma(s, ts[steps]) == 0.0;
        sp->t_first = ts[0];
        sp->t_last = clean ? ts[steps - 1] : ts[steps];
        sp->final_denoise = clean || denoise;
    }
    dm_free(ts);
    return st;
}
