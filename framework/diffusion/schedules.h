/* schedules.h — the schedule plug-ins and their options structs. */
#ifndef DM_DIFFUSION_SCHEDULES_H
#define DM_DIFFUSION_SCHEDULES_H

#include <stdint.h>

#include "diffusion/schedule.h"

typedef struct dm_ddpm_linear_opts {
    int64_t T;
    double beta_start, beta_end;
} dm_ddpm_linear_opts;

extern const dm_schedule_ops dm_schedule_ddpm_linear;

/* The grid of every discrete schedule: n_steps evenly spaced steps from T-1 to 0, then -1. */
dm_status dm_schedule_discrete_grid(const dm_schedule *s, int n_steps, double *ts, char *err);

#endif
