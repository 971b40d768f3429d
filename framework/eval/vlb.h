/* vlb.h — the DDPM variational bound on -log p(x0) for a discrete schedule (Ho et al. 2020, eq. 5;
 * improved-diffusion calc_bpd_loop):
 *   -log p(x0) <= L_T + sum_{t>=1} L_t + L_0,
 *   L_T = KL(q(x_T | x0) || N(0, I)),  L_t = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)),
 *   L_0 = -log N(x0; mu_hat(x_1), Sigma_1)  (the Gaussian decoder: continuous data),
 * in DDPM's 1-based steps; in difflab's 0-based index t the KL terms are t = 1..T-1 and the decoder
 * t = 0 (diffusion/ddpm_step.h). Each term is estimated at one x_t = alpha_t x0 + sigma_t z, the
 * Gaussian KLs in closed form, z from the point's own stream, so the result does not depend on
 * batching. The reverse step is the denoiser's: mean mu~(x0_hat, x_t), variance var_mode (learned:
 * the denoiser's eval_var). In nats per point (sum over coordinates). */
#ifndef DM_EVAL_VLB_H
#define DM_EVAL_VLB_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

/* bound (n): each point's bound in nats. terms (T, may be NULL): the mean over points of each
 * term, terms[t] for t = 0..T-1 (terms[0] the decoder), plus the prior in prior (may be NULL).
 * DM_E_INPUT for a continuous schedule or var_mode learned on a denoiser without eval_var. */
dm_status dm_vlb(const dm_denoiser *den, const dm_schedule *s, int var_mode, const float *x0, size_t n,
                 dm_rng *rngs, double *bound, double *terms, double *prior, char *err);

#endif
