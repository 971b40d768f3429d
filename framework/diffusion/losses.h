/* losses.h — the loss plug-ins and their options structs.
 *
 * mse: L = 1/(n d) sum_i lambda_i sum_j (pred_ij - target_ij)^2, the batch mean accumulated in
 * double in row order, where the target space is chosen by `target`:
 *   eps    target eps                      pred eps_hat
 *   x0     target x0                       pred x0_hat
 *   v      target alpha eps - sigma x0     pred alpha eps_hat - sigma x0_hat  (alpha^2 + sigma^2 = 1)
 *   score  target -eps/sigma               pred -eps_hat/sigma
 *   mu     target mu~ = c_x0 x0 + c_xt x_t  pred c_x0 x0_hat + c_xt x_t  (discrete schedules; the DDPM
 *          posterior mean, diffusion/ddpm_step.h; with weighting none, Ho et al.'s Table 2 row
 *          "||mu~ - mu_theta||^2")
 *          (-eps/sigma = grad log q(x_t | x0), the denoising-score-matching target)
 * pred is linear in F through the parameterization's coefficients (param.h), pred = a x_t + f F,
 * so dL/dF_ij = 2 lambda_i f_i (pred_ij - target_ij)/(n d).
 *
 * Since x0_hat = (x_t - sigma eps_hat)/alpha for every parameterization, the errors in the four
 * spaces are proportional: |x0_hat - x0|^2 = k |pred - target|^2 with
 *   k_x0 = 1, k_eps = sigma^2/alpha^2 = 1/SNR, k_v = sigma^2/(alpha^2 + sigma^2)^2, k_score = sigma^4/alpha^2,
 *   k_mu = 1/c_x0^2
 * (SNR = alpha^2/sigma^2). Hence `target` with weighting lambda is the same loss as target x0 with
 * weighting lambda/k_target.
 *
 * `weighting` gives lambda_i. Two kinds:
 *   multiplies the squared error in the TARGET space, as written:
 *     none     1                (default; with target eps this is L_simple, Ho et al. 2020 eq. 14)
 *     sigma2   sigma^2
 *     g2       g(t)^2 of the schedule's SDE (continuous schedules only)
 *     snr      alpha^2/sigma^2  (target x0 + snr is the same loss as target eps + none:
 *              |eps_hat - eps|^2 = SNR |x0_hat - x0|^2, Kingma et al. 2021)
 *   defined in X0 space, w0(t) |x0_hat - x0|^2, whatever the target (lambda = w0 k_target), so the
 *   loss value does not depend on `target` up to rounding:
 *     min_snr  w0 = min(SNR, gamma) (Hang et al. 2023, Min-SNR-gamma). In eps space this is
 *              min(SNR, gamma)/SNR, in v space (VP) min(SNR, gamma)/(SNR + 1), as in their
 *              reference code (guided_diffusion/gaussian_diffusion.py, min_snr_k / vmin_snr_k).
 *     edm      w0 = (s~^2 + sd^2)/(s~ sd)^2 with s~ = sigma/alpha, as the edm parameterization
 *              for alpha != 1 (Karras et al. 2022, Table 1, lambda = 1/c_out^2; NVlabs/edm
 *              training/loss.py EDMLoss). With the edm parameterization lambda c_out^2 = 1: the
 *              network regresses its effective target (x0 - c_skip x~)/c_out with unit weight.
 *              sd: dm_loss_batch.sigma_data, the one sigma_data of the run (the parameterization's
 *              sigma_data option if set, else the dataset's measured std; see param.h).
 *
 * Denoising score matching (Vincent 2011; Song et al. 2021, score_sde losses.py get_sde_loss_fn)
 * is target score with weighting lambda(t):
 *   none    E |s_hat + eps/sigma|^2
 *   sigma2  E sigma^2 |s_hat + eps/sigma|^2 = E |sigma s_hat + eps|^2, score_sde's default
 *           (likelihood_weighting=False); the same loss as target eps + none
 *   g2      E g^2 |s_hat + eps/sigma|^2, score_sde's likelihood_weighting=True (Song et al. 2021b)
 * score_sde reduces over dimensions by the mean (reduce_mean=True) or by half the sum; difflab
 * always takes the mean over dimensions and rows, as EDM's loss up to the constant 1/d. */
#ifndef DM_DIFFUSION_LOSSES_H
#define DM_DIFFUSION_LOSSES_H

#include <stdbool.h>
#include <stdint.h>

#include "diffusion/loss.h"
#include "diffusion/params.h"

enum { DM_MSE_EPS = 0, DM_MSE_X0 = 1, DM_MSE_V = 2, DM_MSE_SCORE = 3, DM_MSE_MU = 4 };
enum {
    DM_MSE_W_NONE = 0,
    DM_MSE_W_SIGMA2 = 1,
    DM_MSE_W_G2 = 2,
    DM_MSE_W_SNR = 3,
    DM_MSE_W_MIN_SNR = 4,
    DM_MSE_W_EDM = 5,
};
typedef struct dm_mse_opts {
    int target;        /* DM_MSE_EPS, DM_MSE_X0, DM_MSE_V, DM_MSE_SCORE, DM_MSE_MU */
    int weighting;     /* DM_MSE_W_* */
    double gamma;      /* min_snr: the SNR clip (default 5) */
} dm_mse_opts;

extern const dm_loss_ops dm_loss_mse;

/* vlb and hybrid: the DDPM variational bound (loss_vlb.c); discrete schedules. */
typedef struct dm_vlb_opts {
    int variance;     /* DM_VAR_* (diffusion/ddpm_step.h) */
    int t_sampling;   /* 0 uniform, 1 importance */
} dm_vlb_opts;
typedef struct dm_hybrid_opts {
    double lambda;    /* weight of L_vlb (0.001) */
    int t_sampling;
} dm_hybrid_opts;

extern const dm_loss_ops dm_loss_vlb;
extern const dm_loss_ops dm_loss_hybrid;

/* ct, ict, cd: consistency losses (loss_consistency.c; the trainer's consistency step). One
 * options struct; each plug-in's table fills its own fields. */
typedef struct dm_cm_loss_opts {
    int distance;          /* DM_CM_L2, DM_CM_L1, DM_CM_PSEUDO_HUBER (diffusion/consistency.h) */
    int64_t s0, s1;        /* ct, ict: the discretization curriculum */
    double mu0;            /* ct: target EMA at the start; cd: the target EMA rate mu */
    double p_mean, p_std;  /* ict: the lognormal index distribution */
    int64_t n;             /* cd: grid points N */
    int teacher_step;      /* cd: 0 euler, 1 heun */
    double rho;            /* the Karras grid exponent */
} dm_cm_loss_opts;
enum { DM_CM_TEACHER_EULER = 0, DM_CM_TEACHER_HEUN = 1 };

extern const dm_loss_ops dm_loss_ct;
extern const dm_loss_ops dm_loss_ict;
extern const dm_loss_ops dm_loss_cd;

/* xent: the cross-entropy of a time-conditioned classifier of x_t (classifier guidance's
 * p_phi(y | x_t); Dhariwal & Nichol 2021): L = -(1/n) sum_i log softmax(F_i)_{y_i}, with
 * dL/dF_ik = (softmax(F_i)_k - [k = y_i]) / n.
 * clean: train on the clean data instead (the network sees x0 itself, c_noise 0): a classifier of
 * images, such as the feature network of the image metrics (eval.features), not one for guidance. */
typedef struct dm_xent_opts {
    bool clean;
} dm_xent_opts;
extern const dm_loss_ops dm_loss_xent;

/* The cross-entropy of n rows of C logits F (n, C) against labels y, and dF (n, C). */
double dm_xent_rows(size_t n, size_t C, const float *F, const int32_t *y, float *dF);

/* The consistency loss of n student rows f (n, d) against their stop-gradient targets (n, d):
 * L = (1/n) sum_i lambda_i d(f_i, target_i), and dF (n rows of f_cols; the first d columns
 * written) = dL/dF with f = c_skip x + c_out F, i.e. (lambda_i c_out_i / n) grad d. */
double dm_cm_loss_rows(const dm_cm_loss_opts *o, size_t n, size_t d, size_t f_cols, const float *f,
                       const float *target, const double *lambda, const double *c_out, double huber_c,
                       float *dF);

#endif
