/* model_err.c — |D_theta - D*|^2 / d on noised points at a level sigma/alpha (model_err.h). */
#include "eval/model_err.h"

#include <math.h>

#include "core/alloc.h"

static double ratio(const dm_schedule *s, double t) { return s->ops->sigma(s, t) / s->ops->alpha(s, t); }

static double log_ratio(const dm_schedule *s, double t) { return log(ratio(s, t)); }

dm_status dm_model_err_time(const dm_schedule *s, double level, const char *key, double *t, double *actual,
                            char *err)
{
    if (!(level > 0.0 && isfinite(level)))
        return dm_err(err, DM_E_INPUT, "%s: the noise level sigma/alpha = %g must be finite and > 0", key, level);
    const double target = log(level);
    if (s->discrete) {
        /* The step nearest in log sigma/alpha: the network only knows integer steps. */
        int best = 0;
        double best_gap = INFINITY;
        for (int k = 0; k < s->T; k++) {
            const double gap = fabs(log_ratio(s, k) - target);
            if (gap < best_gap) {
                best_gap = gap;
                best = k;
            }
        }
        if (!(best_gap <= log(2.0)))
            return dm_err(err, DM_E_INPUT, "%s: no step of the schedule has sigma/alpha within a factor 2 of %g "
                          "(its steps span [%g, %g])", key, level, exp(log_ratio(s, 0)), exp(log_ratio(s, s->T - 1)));
        *t = best;
        *actual = exp(log_ratio(s, best));
        return DM_OK;
    }
    double lo = s->t_min, hi = s->t_max;
    const double r_lo = ratio(s, lo), r_hi = ratio(s, hi);
    if (!(level >= r_lo * (1 - 1e-12) && level <= r_hi * (1 + 1e-12)))
        return dm_err(err, DM_E_INPUT, "%s: sigma/alpha = %g is outside the schedule's range [%g, %g] (t in "
                      "[%g, %g])", key, level, r_lo, r_hi, lo, hi);
    if (level <= r_lo)
        *t = lo;
    else if (level >= r_hi)
        *t = hi;
    else if (dm_schedule_t_at_ratio(s, level, key, t, err))
        return DM_E_INPUT;
    *actual = level;
    return DM_OK;
}

/* D of den on all n rows (x at time t, labels y), in chunks of its max_batch; tbuf holds t. */
static dm_status denoise(const dm_denoiser *den, size_t n, const float *x, const double *tbuf, size_t chunk,
                         const int32_t *y, float *out, char *err)
{
    const size_t d = den->dim, m0 = den->max_batch < chunk ? den->max_batch : chunk;
    for (size_t i0 = 0; i0 < n; i0 += m0) {
        const size_t m = n - i0 < m0 ? n - i0 : m0;
        dm_status st = den->eval(den->ctx, m, x + i0 * d, tbuf, y ? y + i0 : NULL, out + i0 * d, NULL, err);
        if (st)
            return st;
    }
    return DM_OK;
}

dm_status dm_model_err(const dm_denoiser *model, const dm_denoiser *exact, const dm_schedule *s, double t,
                       const float *x0, const float *eps, const int32_t *y, size_t n, double *out, char *err)
{
    const size_t d = model->dim;
    if (n == 0 || d == 0 || exact->dim != d || model->max_batch == 0 || exact->max_batch == 0)
        return dm_err(err, DM_E_INPUT, "model_err: need points and two denoisers of one dimension (n = %zu, model "
                      "dim %zu, exact dim %zu)", n, d, exact->dim);
    const size_t chunk = n;   /* neither denoiser is handed more rows than n */
    float *xt = dm_malloc(sizeof(float) * n * d * 3);
    double *tbuf = dm_malloc(sizeof(double) * chunk);
    dm_status st = DM_OK;
    if (!xt || !tbuf) {
        st = dm_err(err, DM_E_NOMEM, "model_err: out of memory for %zu points", n);
        goto out;
    }
    float *dm = xt + n * d, *ds = dm + n * d;
    const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
    for (size_t q = 0; q < n * d; q++)
        xt[q] = (float)(a * (double)x0[q] + sg * (double)eps[q]);
    for (size_t i = 0; i < chunk; i++)
        tbuf[i] = t;
    if ((st = denoise(model, n, xt, tbuf, chunk, y, dm, err)) || (st = denoise(exact, n, xt, tbuf, chunk, y, ds, err)))
        goto out;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double u = (double)dm[i * d + j] - (double)ds[i * d + j];
            e += u * u;
        }
        sum += e / (double)d;
    }
    *out = sum / (double)n;
    if (!isfinite(*out))
        st = dm_err(err, DM_E_NUMERIC, "model_err: the model's denoiser gave a non-finite value at t = %g", t);
out:
    dm_free(xt);
    dm_free(tbuf);
    return st;
}
