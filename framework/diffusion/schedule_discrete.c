/* What every discrete schedule (ddpm_linear, cosine) shares: t is the step index 0..T-1 (DDPM's
 * step t+1), alpha = sqrt(abar_t), sigma = sqrt(1 - abar_t), the network sees t itself (the peer
 * model; improved-diffusion with rescale_timesteps=False), training draws t uniformly, and
 * sampling grids are evenly respaced subsets of the steps. */
#include <math.h>

#include "core/alloc.h"
#include "diffusion/schedules.h"

double dm_schedule_discrete_alpha(const dm_schedule *s, double t) { return sqrt(dm_schedule_abar(s, (int)t)); }
double dm_schedule_discrete_sigma(const dm_schedule *s, double t) { return sqrt(1.0 - dm_schedule_abar(s, (int)t)); }
double dm_schedule_discrete_c_noise(const dm_schedule *s, double t) { (void)s; return t; }
double dm_schedule_discrete_sample_t(const dm_schedule *s, dm_rng *rng)
{
    return (double)dm_rng_int(rng, (unsigned long)s->T);
}

dm_status dm_schedule_discrete_grid(const dm_schedule *s, int n_steps, double *ts, char *err)
{
    if (n_steps < 1 || n_steps > s->T)
        return dm_err(err, DM_E_INPUT, "a sampler asked for %d steps; this schedule has T = %d",
                      n_steps, s->T);
    /* Evenly spaced steps from T-1 down to 0 (improved-diffusion's space_timesteps for one
     * section), then -1 for the clean end. */
    for (int k = 0; k < n_steps; k++)
        ts[k] = n_steps == 1 ? s->T - 1
                             : round((double)(s->T - 1) * (n_steps - 1 - k) / (n_steps - 1));
    ts[n_steps] = -1;
    return DM_OK;
}

dm_status dm_schedule_discrete_setup(dm_schedule *s, int T, char *err)
{
    s->discrete = 1;
    s->T = T;
    s->t_min = 0;
    s->t_max = T - 1;
    s->prior_std = 1.0;
    s->abar = dm_malloc(sizeof(double) * (size_t)T);
    if (!s->abar)
        return dm_err(err, DM_E_NOMEM, "out of memory for a schedule of %d steps", T);
    return DM_OK;
}
