#include "diffusion/schedule.h"

#include "core/alloc.h"

dm_status dm_schedule_init(dm_schedule *s, const dm_schedule_ops *ops, const void *opts, char *err)
{
    *s = (dm_schedule){ .ops = ops, .opts = opts };
    return ops->init(s, err);
}

void dm_schedule_free(dm_schedule *s)
{
    if (!s)
        return;
    dm_free(s->abar);
    s->abar = NULL;
}

double dm_schedule_abar(const dm_schedule *s, int t)
{
    return t < 0 ? 1.0 : s->abar[t];
}

static double ratio_at(const dm_schedule *s, double t)
{
    return s->ops->sigma(s, t) / s->ops->alpha(s, t);
}

dm_status dm_schedule_t_at_ratio(const dm_schedule *s, double ratio, const char *key, double *t, char *err)
{
    if (s->discrete)
        return dm_err(err, DM_E_INPUT, "%s: the schedule '%s' is discrete; a noise level sigma/alpha has no time "
                      "of its own there", key, s->ops->info.name);
    double lo = 0.0, hi = s->t_max;
    const double r0 = ratio_at(s, lo), r1 = ratio_at(s, hi);
    if (!(ratio > r0 && ratio <= r1))
        return dm_err(err, DM_E_INPUT, "%s: sigma/alpha = %g is outside the schedule '%s' (%g .. %g)", key, ratio,
                      s->ops->info.name, r0, r1);
    /* Halve until the bracket cannot shrink: a fixed, thread-independent sequence of steps. */
    for (;;) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi)
            break;
        if (ratio_at(s, mid) < ratio)
            lo = mid;
        else
            hi = mid;
    }
    *t = hi;
    return DM_OK;
}
