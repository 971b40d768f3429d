/* denoiser.h — the one interface every sampler and metric sees.
 *
 * A denoiser returns, for a batch x (n, dim) at times t (n, in the schedule's units) and class
 * labels y (n; NULL, or an entry DM_NULL_CLASS, is the unconditional "null" class), the
 * denoised estimate x0_hat ≈ E[x0 | x_t, y] and the matching eps_hat (either output may be NULL
 * when not needed). An unconditional denoiser ignores y. The same sampler thus runs a trained network, its EMA copy, a teacher, a
 * guided wrapper, or the analytic denoiser of a Gaussian mixture. Optional slots are NULL when
 * the denoiser lacks them; the spec loader checks a sampler's needs against them. */
#ifndef DM_DIFFUSION_DENOISER_H
#define DM_DIFFUSION_DENOISER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The label of "no class": the unconditional prediction (classifier-free guidance's ∅). */
enum { DM_NULL_CLASS = -1 };

typedef struct dm_denoiser {
    void *ctx;
    size_t dim;
    size_t max_batch;   /* eval accepts n <= max_batch */
    /* The class labels of the rows a sampler passes (its n samples, in order; NULL: all
     * unconditional). Samplers do not read it: dm_denoise_all hands each chunk its labels. */
    const int32_t *y;
    dm_status (*eval)(void *ctx, size_t n, const float *x, const double *t, const int32_t *y,
                      float *x0, float *eps, char *err);
    /* eval_div and eval_hutch are unconditional (the null class): likelihoods are of p(x).
     * Optional (NULL when absent): x0_hat (n, dim) and the exact divergence
     * div (n) = sum_j d x0_hat_j / d x_j of each row, for likelihoods along the PF-ODE. */
    dm_status (*eval_div)(void *ctx, size_t n, const float *x, const double *t, float *x0,
                          double *div, char *err);
    /* Optional (NULL when absent): x0_hat (n, dim; x0 may be NULL) and, for the probe z (n, dim;
     * may be NULL when zjz is), the quadratic form zjz (n) = z_iᵀ (∂x0_hat/∂x)(x_i, t_i) z_i of
     * each row, for any real z. It is Hutchinson's estimate of div x0_hat (E[zᵀJz] = tr J when
     * E[z zᵀ] = I, e.g. Rademacher z) at the cost of one vector-Jacobian product instead of
     * eval_div's dim of them (Hutchinson 1990; Grathwohl et al. 2019, FFJORD; score_sde_pytorch
     * likelihood.py get_div_fn). */
    dm_status (*eval_hutch)(void *ctx, size_t n, const float *x, const double *t, const float *z,
                            float *x0, double *zjz, char *err);
    /* Optional (NULL when absent): eval, plus the learned reverse-variance fraction v (n, dim) of
     * a DDPM model trained with a learned variance: log Sigma = v log beta + (1 - v) log beta~
     * on the sampler's step (diffusion/ddpm_step.h). */
    dm_status (*eval_var)(void *ctx, size_t n, const float *x, const double *t, const int32_t *y,
                          float *x0, float *eps, float *v, char *err);
} dm_denoiser;

#endif
