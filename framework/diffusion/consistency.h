/* consistency.h — the pure math of consistency models: boundary scalings, the Karras grid, the
 * CT / iCT discretization curricula, iCT's noise-index distribution and weighting, the distances
 * and the multistep sampling noise. No state, no allocation: the trainer and sampler plug-ins
 * build on these.
 *
 * Sources: Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models" (CM); Song & Dhariwal
 * 2023, "Improved techniques for training consistency models" (iCT); the reference code
 * openai/consistency_models, cm/karras_diffusion.py (KarrasDenoiser, stochastic_iterative_sampler)
 * and cm/script_util.py (create_ema_and_scales_fn).
 *
 * Boundary scalings (karras_diffusion.py get_scalings_for_boundary_condition, denoise; CM
 * appendix C), with t >= eps = t_min and sd = sigma_data:
 *   c_skip = sd^2/((t - eps)^2 + sd^2),  c_out = (t - eps) sd/sqrt(t^2 + sd^2),
 *   c_in = 1/sqrt(t^2 + sd^2),  c_noise = 250 ln(t + 1e-44)     (1000 * 0.25 * log(sigma + 1e-44)),
 *   f(x, t) = c_skip x + c_out F(c_in x, c_noise).
 * At t = eps: c_skip = sd^2/sd^2 = 1 and c_out = 0 * sd/r = 0 exactly in IEEE arithmetic, so
 * f(x, eps) = x bit for bit (dm_cm_apply does not read F there).
 *
 * Karras grid, ascending (index i = 0 is t_min): t_i = (t_min^(1/rho) + i/(N-1) (t_max^(1/rho) -
 * t_min^(1/rho)))^rho, i < N, with both ends returned exactly. The reference writes the same grid
 * descending (index j = N-1-i counted from t_max: consistency_losses, stochastic_iterative_sampler);
 * interior points agree to a few ulps.
 *
 * CT curriculum (script_util.py create_ema_and_scales_fn, scale_mode "progressive", target_ema_mode
 * "adaptive"), training step k of K:
 *   n(k) = max(ceil(sqrt(k/K ((s1 + 1)^2 - s0^2) + s0^2) - 1), 1),  N(k) = n(k) + 1 grid points,
 *   mu(k) = exp(s0 ln mu0 / n(k))      (the reference's `-c / scales` with c = -ln(mu0) s0, taken
 *                                       BEFORE `scales + 1`: it divides by n, not N).
 * Hence N(0) = max(s0, 2) and N(K) = s1 + 1; mu at k = 0 is mu0^(s0/(s0-1)) (0.9025 for s0 = 2,
 * mu0 = 0.95), not mu0. (The CM paper's appendix writes mu(k) = exp(s0 ln mu0 / N(k)), which gives
 * mu0 at k = 0; difflab follows the code that produced the published numbers.) k is clamped to
 * [0, K]; the reference keeps growing N past K.
 *
 * iCT (iCT sec. 3.3-3.5):
 *   N(k) = min(s0 2^floor(k/K'), s1) + 1,  K' = floor(K/(log2 floor(s1/s0) + 1))  (K' >= 1 here);
 *   the student's index i of the ascending grid sigma_1 < ... < sigma_N (here 0-based, i < N-1) is
 *   drawn with p(i) proportional to erf((ln sigma_{i+1} - P_mean)/(sqrt 2 P_std)) - erf((ln sigma_i -
 *   P_mean)/(sqrt 2 P_std)), the lognormal mass of [sigma_i, sigma_{i+1}] (P_mean -1.1, P_std 2.0);
 *   the loss weight is lambda(sigma_i) = 1/(sigma_{i+1} - sigma_i).
 *   The masses are computed from erfc in the tails, so intervals 20 standard deviations out keep a
 *   positive, relatively accurate probability instead of a difference of two 1.0s.
 *
 * Distances d(x, y) between one row x (the student's output) and y (the stop-gradient target), of
 * dimension d, accumulated in double, with the gradient with respect to x:
 *   l2            (1/d) sum_j (x_j - y_j)^2     grad 2 (x - y)/d
 *   l1            (1/d) sum_j |x_j - y_j|       grad sign(x - y)/d (0 where x_j = y_j)
 *   pseudo_huber  sqrt(|x - y|^2 + c^2) - c     grad (x - y)/sqrt(|x - y|^2 + c^2)
 * l2 and l1 are per-dimension MEANS, as the reference code computes them (karras_diffusion.py
 * consistency_losses: mean_flat((distiller - target)^2), mean_flat(|.|)), and as difflab's mse
 * loss (losses.h); the CM paper's ||x - y||_2^2 and ||x - y||_1 are d times these. pseudo_huber is
 * the iCT paper's vector form over the whole row (sum inside the root; no official code), the form
 * for which c = 0.00054 sqrt(d) is calibrated (dm_cm_huber_c); it is evaluated as
 * s/(sqrt(s + c^2) + c), s = |x - y|^2, free of cancellation when s << c^2. It tends to
 * s/(2c) = d l2/(2c) for small differences and to |x - y| - c for large ones.
 *
 * Multistep sampling (CM Algorithm 1; stochastic_iterative_sampler): x <- f(x, tau_i), then
 * x <- x + sqrt(tau_{i+1}^2 - eps^2) z. The reference clips tau_{i+1} into [t_min, t_max] first;
 * dm_cm_multistep_noise returns 0 for t_next <= t_min. */
#ifndef DM_DIFFUSION_CONSISTENCY_H
#define DM_DIFFUSION_CONSISTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "diffusion/denoiser.h"

/* ---- boundary scalings ---- */

typedef struct dm_cm_coef {
    double c_skip, c_out, c_in, c_noise;
} dm_cm_coef;

/* The scalings at time t >= t_min (eps) for data std sigma_data > 0. */
void dm_cm_coef_at(double t, double t_min, double sigma_data, dm_cm_coef *c);

/* out_j = c_skip x_j + c_out F_j (in double, rounded once to float), j < d. Where c_out == 0
 * (t = t_min) F is not read and out = x bit for bit. out may alias x or F. */
void dm_cm_apply(const dm_cm_coef *c, size_t d, const float *x, const float *F, float *out);

/* ---- Karras grid ---- */

/* t_i of the ascending N-point grid (N >= 2; 0 < t_min < t_max, rho > 0); i <= 0 gives t_min and
 * i >= N-1 gives t_max, exactly. */
double dm_cm_karras_sigma(int i, int N, double t_min, double t_max, double rho);
/* The whole grid into t[0..N-1]. */
void dm_cm_karras_grid(int N, double t_min, double t_max, double rho, double *t);

/* ---- CT and iCT curricula ---- */

/* DM_E_INPUT unless K >= 1 and 1 <= s0 <= s1 (`what` names the setting in the message). */
dm_status dm_cm_curriculum_check(const char *what, int64_t K, int s0, int s1, char *err);

/* CT: N(k) = n(k) + 1 grid points at step k of K (k clamped to [0, K]). */
int dm_cm_ct_n_steps(int64_t k, int64_t K, int s0, int s1);
/* CT target EMA rate for a grid of N points: exp(s0 ln mu0 / (N - 1)); mu0 in [0, 1). */
double dm_cm_ct_mu(int N, int s0, double mu0);

/* iCT: N(k) = min(s0 2^floor(k/K'), s1) + 1 (no overflow for any k >= 0). */
int dm_cm_ict_n_steps(int64_t k, int64_t K, int s0, int s1);

/* p[0..N-2]: the lognormal(P_mean, P_std) probability of [sigmas[i], sigmas[i+1]], normalized to
 * sum 1 over the grid. DM_E_INPUT if N < 2, P_std <= 0, the grid is not positive and strictly
 * ascending, or every interval's mass underflows to 0. */
dm_status dm_cm_ict_index_probs(int N, const double *sigmas, double P_mean, double P_std, double *p,
                                char *err);

/* Inverse CDF of p[0..n-1] (p >= 0, summing to ~1) at u in [0, 1): the smallest i with
 * p_0 + ... + p_i > u. u = 0 gives the first i with p_i > 0; a u beyond the rounded total gives the
 * last i with p_i > 0. -1 if no p_i is positive. */
int dm_cm_sample_index(const double *p, int n, double u);

/* iCT weight lambda(sigma_i) = 1/(sigma_{i+1} - sigma_i). */
double dm_cm_ict_weight(double sig_i, double sig_ip1);

/* ---- distances ---- */

enum { DM_CM_L2 = 0, DM_CM_L1 = 1, DM_CM_PSEUDO_HUBER = 2 };

/* {"l2", "l1", "pseudo_huber", NULL}, indexed by the enum (an option's choices list). */
extern const char *const dm_cm_distance_names[];

/* d(x, y) of the header comment for one row of dimension d >= 1; c is pseudo_huber's c > 0
 * (ignored otherwise). If dx is not NULL it receives the gradient with respect to x (d floats).
 * NAN for an unknown kind. */
double dm_cm_distance(int kind, size_t d, const float *x, const float *y, double c, float *dx);

/* iCT's pseudo-Huber constant for dimension d: 0.00054 sqrt(d). */
double dm_cm_huber_c(size_t d);

/* ---- multistep sampling ---- */

/* The noise std added before evaluating f at t_next: sqrt(t_next^2 - t_min^2), 0 if t_next <= t_min. */
double dm_cm_multistep_noise(double t_next, double t_min);

/* ---- distillation ---- */

/* One step of the teacher's PF-ODE dx/dsigma = (x - D(x; sigma))/sigma per row, from x at sigma ts
 * to sigma tt (the teacher's time is sigma): Euler, or Heun (Karras et al. 2022, Algorithm 1; the
 * consistency_models heun_solver) when heun is set. D, D2: (n, dim) scratch. */
dm_status dm_cm_teacher_step(const dm_denoiser *teacher, int heun, size_t n, const float *x, const double *ts,
                             const double *tt, float *y, float *D, float *D2, char *err);

#endif
