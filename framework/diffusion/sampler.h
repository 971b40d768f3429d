/* sampler.h — samplers run the reverse process through a dm_denoiser.
 *
 * Common random numbers: sample i draws its initial noise and every per-step noise from its
 * own stream rngs[i] (derived from the run's eval seed and i), so two samplers on one run see the
 * same noise, and the result does not depend on batching or the thread count. */
#ifndef DM_DIFFUSION_SAMPLER_H
#define DM_DIFFUSION_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

/* The stretch of the probability-flow ODE a deterministic sampler approximates (diffusion/ode.h):
 * it starts from its initial noise at t_first (its grid's first time) and integrates down to
 * t_last, its last time with sigma > 0; then the final map: x <- x0_hat(x, t_last) when
 * final_denoise (always on a grid ending at sigma = 0, where the step onto sigma = 0 is that map;
 * with the `denoise` option on a grid stopping at t_end > 0), else x itself. eval.ode_err's
 * reference solution (diffusion/ode_ref.h) integrates the same stretch accurately. */
typedef struct dm_sampler_span {
    double t_first, t_last;
    bool final_denoise;
} dm_sampler_span;

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
    /* Optional: 1 if, with these options, the output is a function of the initial noise alone
     * (no noise is drawn after it); else 0 with *why (if not
     * NULL) set to a static phrase saying what draws noise or why the sampler is no ODE solver,
     * e.g. "ddim with eta > 0 adds fresh noise at every step". NULL: taken as 0. */
    int (*deterministic)(const void *opts, const char **why);
    /* Optional, for samplers that approximate the probability-flow ODE (euler, heun, ddim,
     * dpmpp2m, rk45): the stretch they integrate on s with these options (see dm_sampler_span).
     * NULL: the sampler solves no ODE (ancestral, SDE and consistency samplers), so eval.ode_err
     * has no reference for it. Meaningful only where deterministic() is 1. */
    dm_status (*span)(const void *opts, const dm_schedule *s, dm_sampler_span *sp, char *err);
} dm_sampler_ops;

extern const dm_plugin *const dm_sampler_registry[];

/* The span of a sampler that walks the grid of `steps` steps of s and ends as diffusion/ode.h
 * says: t_first = ts[0]; on a grid ending at sigma = 0, t_last = ts[steps - 1] and
 * final_denoise = true; else t_last = ts[steps] and final_denoise = denoise. DM_E_INPUT if the
 * grid cannot be made. (sampler_common.c) */
dm_status dm_sampler_grid_span(const dm_schedule *s, int steps, bool denoise, dm_sampler_span *sp,
                               char *err);

#endif
