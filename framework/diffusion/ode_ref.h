/* ode_ref.h — the reference solution of eval.ode_err: the probability-flow ODE of the same
 * denoiser, integrated accurately over the stretch a deterministic sampler approximates.
 *
 * For a sampler with span (t_first, t_last, final map) (sampler.h, dm_sampler_span), the reference
 * of sample i starts from the sampler's own initial noise x_i = prior_std z_i (the first d draws of
 * row i's stream, dm_sampler_init_noise) at t_first, integrates dx/dt = f x + g^2/(2 sigma) eps_hat
 * down to t_last by adaptive Runge–Kutta 4(5) (ode_rk45.h, GSL rkf45) at rtol = atol = tol
 * (eval.ode_err uses DM_ODE_REF_TOL), and applies the same final map (x0_hat(x, t_last) or none).
 * The difference between a sampler's output and this reference is its discretisation error
 * alone: the model (its error included) is the same on both sides.
 *
 * It is run as a sampler (dm_ode_ref_sampler, not in the registry, so not a spec's sampler.type),
 * so it goes through the very path that made the samples (the same denoiser, EMA or not, guidance,
 * labels and per-sample noise streams). Its first `n` rows are solved, as one system (shared
 * steps: a row depends within the tolerance on the others, on n, not on batching or threads).
 *
 * Where no reference exists (checked before anything is written): stochastic samplers (ddpm,
 * em, pc, ddim with eta > 0, heun with s_churn > 0) and cm, which solves no ODE; and discrete
 * schedules (ddpm_linear, cosine), whose alpha, sigma and model exist only at the integer steps, so
 * the PF-ODE between them is not defined (the rk45 sampler refuses them too; see docs/design.md). */
#ifndef DM_DIFFUSION_ODE_REF_H
#define DM_DIFFUSION_ODE_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"

/* eval.ode_err's tolerance: rtol = atol = 1e-9. */
#define DM_ODE_REF_TOL 1e-9

typedef struct dm_ode_ref_opts {
    double t_first, t_last;   /* the sampler's span */
    bool denoise;             /* the final map: x0_hat(x, t_last) */
    int method;               /* DM_RK45_RKF45 or DM_RK45_RKCK (samplers.h) */
    double rtol, atol;
    int64_t n;                /* rows solved: the first n of the sample's (0: all); the rest of x
                               * is left as the initial noise */
} dm_ode_ref_opts;

/* "ode_ref": its options table gives the reference's settings JSON (dm_opts_json). NFE: the
 * drift evaluations made, +1 for the final map (sample_counted). */
extern const dm_sampler_ops dm_ode_ref_sampler;

/* DM_E_INPUT "eval.ode_err: sampler '<name>' ..." naming why, if `sampler` with `opts` has no
 * reference on s (see above); DM_OK otherwise. */
dm_status dm_ode_ref_check(const dm_sampler_ops *sampler, const void *opts, const dm_schedule *s, char *err);

/* The reference's options for `sampler` with `opts` on s (after dm_ode_ref_check): its span, the
 * rkf45 stepper, rtol = atol = tol, n rows. */
dm_status dm_ode_ref_opts_for(const dm_sampler_ops *sampler, const void *opts, const dm_schedule *s, double tol,
                              int64_t n, dm_ode_ref_opts *o, char *err);

#endif
