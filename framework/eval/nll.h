/* nll.h — log-likelihood of data under a denoiser's probability-flow ODE (Song et al. 2021,
 * sec. 4.3 and app. D.2; score_sde_pytorch likelihood.py get_likelihood_fn).
 *
 * Along the PF-ODE dx/dt = v(x, t) = f(t) x - 1/2 g(t)^2 s_hat(x, t), s_hat = (alpha x0_hat - x)/sigma^2,
 * the log density changes by d log p_t(x(t)) / dt = -div v (the continuity equation), so
 *   log p_eps(x) = log p_T(x_T) + int_eps^T div v(x_t, t) dt,
 *   div v = d f - 1/2 g^2 (alpha div x0_hat - d) / sigma^2,
 * integrated from x_eps = x up to T = s->t_max (likelihood.py: prior_logp(z) + delta_logp).
 * log p_eps stands for log p_0: the data blurred by sigma(eps) (tiny for eps = 1e-5 on VP / EDM;
 * sigma_min = 0.01 on VE, whose mean effect is second order).
 *
 * Divergence: in d <= DM_NLL_EXACT_MAX_DIM dimensions the denoiser's exact div x0_hat (its
 * eval_div slot, d backward passes of a network); above, Hutchinson's estimate zᵀ (∂x0_hat/∂x) z
 * (eval_hutch, one backward) with a Rademacher probe z ∈ {-1, +1}^d per data point, drawn once
 * for the whole integration (likelihood.py's hutchinson_type 'Rademacher', epsilon drawn before
 * solve_ivp) from the stream dm_seed_index(seed, i) of point i. The trajectory does not depend
 * on z, so delta_i = z_iᵀ A_i z_i with A_i the integral of ∂v/∂x along it: an unbiased estimate of
 * the exact integral tr A_i (exact at d = 1), with per-point variance 2 sum_{j≠l} A_jl^2 (A
 * symmetrized), averaging out over many points. Both paths are deterministic: the same bits for
 * the same (points, seed) whatever max_batch or the thread count. Measured on tests/test_nll.c's
 * 4-D mixture on VP: one probe per point errs by 1.4 nats (std; mean |err| 0.8) per point, so the
 * mean log-likelihood of 400 points has a standard error of 0.07 nats (measured -0.10 and -0.05
 * for two seeds), against 1e-5 for the exact divergence; averaged over all 16 sign patterns the
 * estimate matches the exact log-density to 2e-5 nats per point.
 *
 * Prior: N(0, prior_std^2 I), as score_sde's sde.prior_logp. It is the schedule's marginal at T
 * only approximately: VP's p_1 is the data scaled by alpha(1) ≈ 6.6e-3 plus noise of variance
 * 1 - alpha(1)^2, VE's / EDM's the data plus noise of std sigma_max — the per-point error is
 * about |mean of the data at T|·|z| / prior_std^2 (measured on tests/test_nll.c's 2-D mixture with
 * the default options: mean |error| 1e-3 nats per point on VP, 3e-3 on VE (sigma_max 50), 2e-3 on
 * EDM (sigma_max 80), the signed mean 3e-5 to 2e-4; on VE / EDM it grows as |mu|^2 / sigma_max^2,
 * so sigma_max must be well above the data's scale). dm_nll_pfode_flow returns the latent z and the integral, for a caller who knows
 * the exact marginal (the analytic mixture's test does).
 *
 * Integration: GSL gsl_odeiv2 rkf45 (Runge–Kutta–Fehlberg 4(5)), the whole batch and its n log
 * densities as one system of n (d + 1) equations, as likelihood.py flattens the batch into one
 * solve_ivp call; step control |err_i| <= atol + rtol |y_i| on every component (scipy: an RMS
 * norm and Dormand–Prince, so step counts differ). Shared step sizes mean a point's value
 * depends, within the tolerances, on the rest of the batch. State in double; the denoiser sees a
 * float copy of x, in chunks of at most den->max_batch rows. */
#ifndef DM_EVAL_NLL_H
#define DM_EVAL_NLL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

/* score_sde's likelihood settings (likelihood.py): start at t = 1e-5, rtol = atol = 1e-5. */
#define DM_NLL_EPS 1e-5
#define DM_NLL_TOL 1e-5
/* The largest dimension with the exact divergence (issue 3 item 6: the full Jacobian in 2-D);
 * above it, Hutchinson's estimate. */
#define DM_NLL_EXACT_MAX_DIM 2

/* Integrate the PF-ODE and the divergence from t = eps to s->t_max for the n data points x0
 * (n, d = den->dim): z (n, d; may be NULL) gets x at t_max and delta (n) the integral of div v
 * (above DM_NLL_EXACT_MAX_DIM its Hutchinson estimate, with the probes of point i from the stream
 * dm_seed_index(seed, i); seed is unused at or below), so that log p_eps(x0_i) = log p_T(z_i) +
 * delta_i. nfe (may be NULL) gets the number of drift evaluations of the whole batch (each one
 * den->eval_div or den->eval_hutch call per max_batch chunk).
 * DM_E_INPUT ("eval.nll: ...") for a discrete schedule, a denoiser without eval_div (d <= 2) or
 * eval_hutch (d > 2), eps outside [0, t_max) or with sigma(eps) = 0, tolerances that are
 * negative, not finite or both zero; DM_E_NUMERIC if the drift is not finite or the solver cannot
 * proceed; the denoiser's own error otherwise. n = 0 is a no-op. */
dm_status dm_nll_pfode_flow(const dm_denoiser *den, const dm_schedule *s, const float *x0, size_t n,
                            double eps, double rtol, double atol, uint64_t seed, double *z, double *delta,
                            int64_t *nfe, char *err);

/* log N(z; 0, prior_std^2 I) of one point z (d): the prior score_sde uses (sde.prior_logp). */
double dm_nll_prior_logp(const dm_schedule *s, const double *z, size_t d);

/* log p_0(x) in nats for the n points x0 (n, d): the flow above (seed: its Hutchinson probes)
 * plus the prior at its end. score_sde's defaults are eps = 1e-5, rtol = atol = 1e-5. */
dm_status dm_nll_pfode(const dm_denoiser *den, const dm_schedule *s, const float *x0, size_t n,
                       double eps, double rtol, double atol, uint64_t seed, double *logp, int64_t *nfe,
                       char *err);

/* Bits per dimension of a mean log-likelihood: -logp_mean / (d ln 2). (For 8-bit images the
 * score_sde code adds 7 - inverse_scaler(-1) to rescale to pixel units; not done here.) */
double dm_nll_bits_per_dim(double logp_mean, size_t d);

#endif
