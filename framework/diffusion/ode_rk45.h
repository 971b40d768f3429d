/* ode_rk45.h — the probability-flow ODE of a denoiser integrated by adaptive Runge–Kutta 4(5)
 * (GSL gsl_odeiv2), shared by the rk45 sampler and eval.ode_err's reference (ode_ref.h).
 *
 * dx/dt = f(t) x + g^2(t) / (2 sigma(t)) eps_hat(x, t) (ode.h), the n rows of the batch as one
 * system of n d equations with the y-control |err_i| <= atol + rtol |y_i| on every component
 * (score_sde's get_ode_sampler flattens the batch into one solve_ivp call the same way). Shared
 * step sizes mean a row's result depends, within the tolerances, on the other rows (on n, not on
 * max_batch or the thread count). State in double; the denoiser sees a float copy. GSL calls its
 * error handler (abort by default) only on allocation failure of its own objects. */
#ifndef DM_DIFFUSION_ODE_RK45_H
#define DM_DIFFUSION_ODE_RK45_H

#include <stdint.h>

#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/ode.h"
#include "diffusion/schedule.h"

/* Integrate the rows of w->x (w->n of them, in place) from t0 to t1 (both with sigma > 0; t1 < t0
 * for sampling) with the stepper `method` (samplers.h: DM_RK45_RKF45, Runge–Kutta–Fehlberg 4(5),
 * or DM_RK45_RKCK, Cash–Karp 4(5)), first step (t1 - t0) 1e-3, at most a million steps.
 * *count (if not NULL) gets the number of drift evaluations of the whole batch. Errors:
 * DM_E_NUMERIC "<who>: ..." if the drift is not finite or the solver stops; the denoiser's own;
 * DM_E_NOMEM. n = 0 is a no-op. */
dm_status dm_ode_rk45(dm_ode_work *w, const dm_denoiser *den, const dm_schedule *s, double t0, double t1,
                      int method, double rtol, double atol, const char *who, int64_t *count, char *err);

#endif
