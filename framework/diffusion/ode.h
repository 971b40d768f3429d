/* ode.h — what the continuous-time samplers share (DDIM, reverse-SDE Euler–Maruyama,
 * predictor–corrector, PF-ODE Euler / Heun / RK45, DPM-Solver++).
 *
 * The state lives in double, as NVlabs/edm generate.py keeps it (latents.to(torch.float64)); the
 * denoiser sees a float copy. The PF-ODE (Song et al. 2021, eq. 13) is
 *   dx/dt = f(t) x - 1/2 g(t)^2 s_hat,  s_hat = -eps_hat / sigma(t),
 * i.e. dx/dt = f(t) x + c(t) eps_hat with c = g^2 / (2 sigma); for EDM (f = 0, g^2 = 2t) this is
 * eps_hat = (x - D(x; t)) / t, EDM's d_cur.
 *
 * Ends of the grid: a grid whose last time has sigma = 0 (EDM's t_N = 0, a discrete schedule's -1)
 * ends "clean": the step onto sigma = 0 is x <- x0_hat(x, t_{N-1}) for every sampler (it is what
 * Euler, DDIM and DPM-Solver++ give there anyway). A grid that stops at t_end > 0 (VP, VE) is
 * followed, when the sampler's `denoise` option is on, by one more evaluation x <- x0_hat(x, t_end)
 * = E[x0 | x_{t_end}] (Tweedie), score_sde's noise_removal / DPM-Solver's denoise_to_zero. */
#ifndef DM_DIFFUSION_ODE_H
#define DM_DIFFUSION_ODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

typedef struct dm_ode_work {
    size_t n, d;
    double *x;         /* (n, d) the state */
    float *xf;         /* (n, d) its float copy, the denoiser's input */
    float *x0, *eps;   /* (n, d) denoiser outputs */
    double *tbuf;      /* (den->max_batch) scratch for dm_denoise_all */
    double *ts;        /* (steps + 1) the schedule's grid */
    int steps;
    int last;          /* index of the last grid time with sigma > 0 */
    int clean;         /* 1 if sigma(ts[steps]) == 0 */
} dm_ode_work;

/* Allocate the buffers for n samples and fetch the schedule's grid of `steps` >= 1 steps
 * (DM_E_INPUT "sampler.steps: ..." otherwise). On failure everything is freed. */
dm_status dm_ode_work_init(dm_ode_work *w, const dm_denoiser *den, const dm_schedule *s, size_t n,
                           int steps, char *err);
void dm_ode_work_free(dm_ode_work *w);

/* The initial noise (dm_sampler_init_noise: the first d draws of each row's stream) into w->x;
 * xout (n, d) is used as scratch. */
void dm_ode_start(dm_ode_work *w, const dm_schedule *s, dm_rng *rngs, float *xout);

/* Evaluate the denoiser at w->x, time t (the same for all rows): fills w->x0 and/or w->eps. */
dm_status dm_ode_eval(dm_ode_work *w, const dm_denoiser *den, double t, int want_x0, int want_eps,
                      char *err);

/* x <- x0_hat(x, t): one evaluation. */
dm_status dm_ode_denoise(dm_ode_work *w, const dm_denoiser *den, double t, char *err);

/* Round the state to the output. */
void dm_ode_finish(const dm_ode_work *w, float *xout);

/* The eps_hat coefficient of the PF-ODE drift: c(t) = g^2(t) / (2 sigma(t)). */
double dm_ode_eps_coef(const dm_schedule *s, double t);

/* One Euler–Maruyama step of the reverse SDE from t down to tn < t, with w->eps at t
 * (score_sde EulerMaruyamaPredictor; FORMULAS.md "Reverse SDE"), dt = t - tn:
 *   x <- x - [f x - g^2 s_hat] dt + g sqrt(dt) z,  s_hat = -eps_hat / sigma(t). */
void dm_ode_em_step(dm_ode_work *w, const dm_schedule *s, dm_rng *rngs, double t, double tn);

/* 1 if the grid of `steps` steps ends at sigma = 0, 0 if not, -1 if the grid cannot be built
 * (bad step count or no memory). For nfe(), which is asked before sampling. */
int dm_ode_grid_clean(const dm_schedule *s, int steps);
/* NFE of a one-evaluation-per-step sampler: steps, +1 for the final denoising step when the grid
 * stops at t_end > 0 and denoise is on; -1 if the grid cannot be made. */
int64_t dm_ode_steps_nfe(const dm_schedule *s, int64_t steps, bool denoise);

/* DM_E_INPUT "sampler.type: <name> needs a continuous schedule ..." for a discrete schedule. */
dm_status dm_ode_need_continuous(const dm_schedule *s, const char *sampler, char *err);

#endif
