/* samplers.h — the sampler plug-ins and their options structs. */
#ifndef DM_DIFFUSION_SAMPLERS_H
#define DM_DIFFUSION_SAMPLERS_H

#include <stdint.h>

#include "diffusion/sampler.h"

enum { DM_VAR_BETA = 0, DM_VAR_BETA_TILDE = 1 };
typedef struct dm_ddpm_sampler_opts {
    int64_t steps;   /* 0: every step of the schedule */
    int variance;    /* DM_VAR_BETA (sigma_t^2 = beta_t) or DM_VAR_BETA_TILDE */
} dm_ddpm_sampler_opts;

extern const dm_sampler_ops dm_sampler_ddpm;

/* Shared by samplers: evaluate the denoiser on all n rows in chunks of den->max_batch, all at
 * the same time t (tbuf: scratch of den->max_batch doubles). */
dm_status dm_denoise_all(const dm_denoiser *den, size_t n, const float *x, double t, double *tbuf,
                         float *x0, float *eps, char *err);

/* The initial noise of every sampler: x_i = prior_std * z from sample i's own stream (its first
 * d draws), so all samplers on one run start from the same points. */
void dm_sampler_init_noise(const dm_schedule *s, size_t n, size_t d, dm_rng *rngs, float *x);

#endif
