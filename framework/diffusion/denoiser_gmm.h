/* denoiser_gmm.h — the exact denoiser of an isotropic Gaussian mixture (FORMULAS.md, "The
 * analytic Gaussian-mixture denoiser"), usable wherever a trained network is: samplers run with
 * zero model error, and the exact posterior p(x0 | x_t) — itself a mixture — is available.
 *
 * Data x0 ~ sum_k w_k N(mu_k, s_k^2 I); under x_t = alpha x0 + sigma eps:
 *   v_k = alpha^2 s_k^2 + sigma^2, r_k(x) ∝ w_k N(x; alpha mu_k, v_k I) (log space),
 *   posterior p(x0 | x_t) = sum_k r_k N(m_k, (s_k^2 sigma^2 / v_k) I),
 *   m_k = mu_k + alpha s_k^2 (x - alpha mu_k) / v_k,  E[x0 | x_t] = sum_k r_k m_k,
 *   score = -sum_k r_k (x - alpha mu_k) / v_k,  eps_hat = -sigma * score.
 * With a class label y the same formulas run over the components of class y only (weights
 * renormalized): the exact class-conditional denoiser E[x0 | x_t, y].
 * Computed in double. The context borrows the mixture and the schedule; stateless per call, so
 * one context serves any number of threads. */
#ifndef DM_DIFFUSION_DENOISER_GMM_H
#define DM_DIFFUSION_DENOISER_GMM_H

#include "data/dataset.h"
#include "diffusion/classifier.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

typedef struct dm_gmm_denoiser {
    const dm_gmm *gmm;
    const dm_schedule *sched;
} dm_gmm_denoiser;

void dm_gmm_denoiser_init(dm_gmm_denoiser *g, dm_denoiser *den, const dm_gmm *gmm,
                          const dm_schedule *sched, size_t max_batch);

/* The exact posterior at one point x (dim) and time t: responsibilities r (k), component means
 * m (k, dim) and variances v (k) of p(x0 | x_t = x). */
void dm_gmm_posterior(const dm_gmm *gmm, double alpha, double sigma, const double *x, double *r,
                      double *m, double *v);

/* dm_gmm_posterior restricted to the components of class y (DM_NULL_CLASS: all). */
void dm_gmm_posterior_class(const dm_gmm *gmm, double alpha, double sigma, const double *x, int32_t y,
                            double *r, double *m, double *v);

/* The exact classifier of the noisy data: log p_t(y | x) = log p_t(x | y) + log p(y) - log p_t(x),
 * and (grad, dim, may be NULL) grad_x log p_t(y | x) = grad log p_t(x | y) - grad log p_t(x). */
double dm_gmm_class_log_prob(const dm_gmm *gmm, double alpha, double sigma, const double *x, int32_t y,
                             double *grad);

/* *clf runs dm_gmm_class_log_prob on batches (rows with y = DM_NULL_CLASS get 0 and a zero
 * gradient). g must stay at its address while clf is used. */
void dm_gmm_classifier_init(dm_gmm_denoiser *g, dm_classifier *clf, const dm_gmm *gmm, const dm_schedule *sched,
                            size_t max_batch);

/* log p_t(x) of the mixture's marginal at time t (alpha, sigma). */
double dm_gmm_log_density(const dm_gmm *gmm, double alpha, double sigma, const double *x);

#endif
