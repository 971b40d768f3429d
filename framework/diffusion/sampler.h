/* sampler.h — samplers run the reverse process through a dm_denoiser.
 *
 * Common random numbers: sample i draws its initial noise and every per-step noise from its
 * own stream rngs[i] (derived from the run's eval seed and i), so two samplers on one run see the
 * same noise, and the result does not depend on batching or the thread count. */
#ifndef DM_DIFFUSION_SAMPLER_H
#define DM_DIFFUSION_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

typedef struct dm_sampler_ops {
    dm_plugin info;
    /* DM_E_INPUT if the sampler cannot run on this schedule (e.g. ancestral DDPM needs a
     * discrete one). */
    dm_status (*check)(const void *opts, const dm_schedule *s, char *err);
    /* Number of denoiser evaluations per sample. */
    int64_t (*nfe)(const void *opts, const dm_schedule *s);
    /* Draw n samples into x (n, den->dim); rngs: n per-sample streams. */
    dm_status (*sample)(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err);
    /* Optional, for adaptive samplers whose nfe() is -1: sample and report the evaluations made. */
    dm_status (*sample_counted)(const void *opts, const dm_denoiser *den, const dm_schedule *s,
                                size_t n, dm_rng *rngs, float *x, int64_t *nfe_done, char *err);
} dm_sampler_ops;

extern const dm_plugin *const dm_sampler_registry[];

#endif
