/* The discrete cosine schedule (Nichol & Dhariwal 2021, eq. 17; improved-diffusion
 * gaussian_diffusion.py get_named_beta_schedule("cosine") and betas_for_alpha_bar):
 *   f(u) = cos^2(((u + s) / (1 + s)) * pi/2),  u = t/T in [0, 1],
 *   beta_i = min(1 - f((i+1)/T) / f(i/T), 0.999),  abar_i = prod_{k<=i} (1 - beta_k).
 * Before any clipping the product telescopes to abar_i = f((i+1)/T) / f(0) (the paper's
 * alpha_bar(t) = f(t)/f(0) at DDPM step i+1); the clip at 0.999 only bites at the last steps, where
 * f -> 0 (at i = T-1, f(1) = cos^2(pi/2) ~ 0, so beta_{T-1} = 0.999 exactly). As for ddpm_linear,
 * t is the step index 0..T-1 and the network sees it as is (improved-diffusion with
 * rescale_timesteps=False). */
#include <math.h>
#include <stddef.h>

#include "diffusion/schedules.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* improved-diffusion's betas_for_alpha_bar(max_beta=0.999): keeps beta < 1 near u = 1. */
#define COSINE_MAX_BETA 0.999

/* Nichol & Dhariwal 2021, eq. 17 (unnormalized: only ratios are used). */
static double cos2(double u, double off)
{
    const double c = cos((u + off) / (1.0 + off) * M_PI / 2.0);
    return c * c;
}

static dm_status init(dm_schedule *s, char *err)
{
    const dm_cosine_schedule_opts *o = s->opts;
    if (o->T < 1)
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.T: %lld must be at least 1", (long long)o->T);
    dm_status st = dm_schedule_discrete_setup(s, (int)o->T, err);
    if (st)
        return st;
    double prod = 1.0;
    for (int i = 0; i < s->T; i++) {
        const double beta = fmin(1.0 - cos2((double)(i + 1) / s->T, o->s) / cos2((double)i / s->T, o->s),
                                 COSINE_MAX_BETA);
        prod *= 1.0 - beta;
        s->abar[i] = prod;
    }
    return DM_OK;
}

static const dm_param_desc params[] = {
    { "T", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(dm_cosine_schedule_opts, T),
      "number of diffusion steps" },
    { "s", DM_OPT_REAL, "0.008", 0, 0.5, NULL, 0, offsetof(dm_cosine_schedule_opts, s),
      "offset keeping beta from being too small near t = 0 (Nichol & Dhariwal 2021, sec. 3.2)" },
    DM_OPT_END,
};

const dm_schedule_ops dm_schedule_cosine = {
    .info = { "cosine", "DDPM discrete schedule, abar = cos^2 (Nichol & Dhariwal 2021)", params,
              sizeof(dm_cosine_schedule_opts) },
    .init = init,
    .alpha = dm_schedule_discrete_alpha,
    .sigma = dm_schedule_discrete_sigma,
    .c_noise = dm_schedule_discrete_c_noise,
    .sample_t = dm_schedule_discrete_sample_t,
    .grid = dm_schedule_discrete_grid,
};
