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
