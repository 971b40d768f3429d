/* DDPM's discrete linear schedule (Ho et al. 2020, sec. 4; improved-diffusion
 * get_named_beta_schedule("linear")): beta_t linear from beta_start*1000/T to beta_end*1000/T,
 * so that any T keeps the T = 1000 shape. abar_t = prod_{s<=t} (1 - beta_s), in double. */
#include <math.h>
#include <stddef.h>

#include "diffusion/schedules.h"

static dm_status init_linear(dm_schedule *s, char *err)
{
    const dm_ddpm_linear_opts *o = s->opts;
    if (o->beta_end < o->beta_start)
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.beta_end: %g is below beta_start (%g)",
                      o->beta_end, o->beta_start);
    dm_status st = dm_schedule_discrete_setup(s, (int)o->T, err);
    if (st)
        return st;
    double scale = 1000.0 / s->T, b0 = o->beta_start * scale, b1 = o->beta_end * scale;
    if (b1 >= 1.0)
        return dm_err(err, DM_E_INPUT,
                      "diffusion.schedule.beta_end: beta_end * 1000/T = %g must stay below 1 (T = %d)", b1, s->T);
    double prod = 1.0;
    for (int t = 0; t < s->T; t++) {
        double beta = s->T == 1 ? b0 : b0 + (b1 - b0) * t / (s->T - 1);
        prod *= 1.0 - beta;
        s->abar[t] = prod;
    }
    return DM_OK;
}

static const dm_param_desc linear_params[] = {
    { "T", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(dm_ddpm_linear_opts, T),
      "number of diffusion steps" },
    { "beta_start", DM_OPT_REAL, "1e-4", 1e-8, 0.5, NULL, 0, offsetof(dm_ddpm_linear_opts, beta_start),
      "beta_1 at T = 1000 (scaled by 1000/T)" },
    { "beta_end", DM_OPT_REAL, "0.02", 1e-8, 0.999, NULL, 0, offsetof(dm_ddpm_linear_opts, beta_end),
      "beta_T at T = 1000 (scaled by 1000/T)" },
    DM_OPT_END,
};

const dm_schedule_ops dm_schedule_ddpm_linear = {
    .info = { "ddpm_linear", "DDPM discrete schedule, beta linear (Ho et al. 2020)", linear_params,
              sizeof(dm_ddpm_linear_opts) },
    .init = init_linear,
    .alpha = dm_schedule_discrete_alpha,
    .sigma = dm_schedule_discrete_sigma,
    .c_noise = dm_schedule_discrete_c_noise,
    .sample_t = dm_schedule_discrete_sample_t,
    .grid = dm_schedule_discrete_grid,
};
