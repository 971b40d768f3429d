/* ddpm_step.h — the DDPM reverse step between two points t > t' of a discrete schedule's grid,
 * and the Gaussian terms of the variational bound built on it.
 *
 * Posterior (Ho et al. 2020, eqs. 6–7; FORMULAS.md "DDPM posterior"), with abar(-1) = 1 and
 * beta = 1 - abar_t / abar_t' (the schedule's beta_t on the full grid, the respaced beta on a
 * respaced one, as improved-diffusion's SpacedDiffusion):
 *   q(x_t' | x_t, x0) = N(mu~, beta~ I),  mu~ = c_x0 x0 + c_xt x_t,
 *   c_x0 = sqrt(abar_t') beta / (1 - abar_t),  c_xt = sqrt(1 - beta) (1 - abar_t') / (1 - abar_t),
 *   beta~ = (1 - abar_t') / (1 - abar_t) beta.
 * The model's reverse step p(x_t' | x_t) = N(mu~(x0_hat, x_t), Sigma) has the variance
 *   beta        log Sigma = log beta (Ho et al.: sigma_t^2 = beta_t, also on the last step)
 *   beta_tilde  log Sigma = log beta~, clipped
 *   learned     log Sigma = v log beta + (1 - v) log beta~ (clipped), v = (out + 1)/2 from the
 *               network's second output half (Nichol & Dhariwal 2021, eq. 15; not clamped)
 * where "clipped" replaces beta~ = 0 of the step onto clean data (t' = -1) by beta~ of the step
 * above it (improved-diffusion posterior_log_variance_clipped). improved-diffusion's fixed
 * "large" variance also uses that beta~ on the last step; difflab keeps Ho et al.'s beta there, so
 * the bound is exact for N(0, I) data (tests/test_vlb.c). */
#ifndef DM_DIFFUSION_DDPM_STEP_H
#define DM_DIFFUSION_DDPM_STEP_H

#include "diffusion/schedule.h"

enum { DM_VAR_BETA = 0, DM_VAR_BETA_TILDE = 1, DM_VAR_LEARNED = 2 };
extern const char *const dm_var_names[];   /* "beta", "beta_tilde", "learned", NULL */

typedef struct dm_ddpm_step {
    double beta, beta_tilde;
    double log_beta;
    double log_beta_tilde;   /* clipped */
    double c_x0, c_xt;       /* mu~ = c_x0 x0 + c_xt x_t */
} dm_ddpm_step;

/* The step from grid point t to t' < t (t' = -1: clean data). t_up is the grid point above t
 * (needed only when t' = -1, for the clipped beta~; -1 if there is none, then beta~ is clipped
 * to beta). */
void dm_ddpm_step_at(const dm_schedule *s, int t, int tp, int t_up, dm_ddpm_step *c);

/* The step from t to t - 1 on the schedule's full grid (training and the bound). */
void dm_ddpm_step_full(const dm_schedule *s, int t, dm_ddpm_step *c);

/* log Sigma for a variance mode; v is the learned fraction (ignored unless DM_VAR_LEARNED). */
static inline double dm_ddpm_logvar(const dm_ddpm_step *c, int mode, double v)
{
    switch (mode) {
    case DM_VAR_BETA:
        return c->log_beta;
    case DM_VAR_BETA_TILDE:
        return c->log_beta_tilde;
    default:
        return v * c->log_beta + (1.0 - v) * c->log_beta_tilde;
    }
}

/* The ancestral step of the ddpm sampler (Ho et al. 2020, Algorithm 2, line 4; FORMULAS.md "DDPM
 * posterior") from grid point t to t' < t:
 *   x_t' = (x_t - beta / sqrt(1 - abar_t) eps_hat) / sqrt(1 - beta) + sigma z,  z ~ N(0, I),
 * whose mean is mu~ = c_x0 x0_hat + c_xt x_t written in eps form, with sigma^2 = beta ("beta"),
 * beta~ ("beta_tilde") or per coordinate exp(dm_ddpm_logvar(learned, v)), and z = 0 on the step
 * onto clean data (t' = -1): that step returns x0_hat. */
typedef struct dm_ddpm_ancestral {
    dm_ddpm_step c;
    int variance;          /* DM_VAR_* */
    int noisy;             /* 0 on the step onto clean data */
    float c_mean, c_eps;   /* 1 / sqrt(1 - beta), beta / sqrt(1 - abar_t) */
    float sd;              /* sigma of the fixed variances; 0 when !noisy */
} dm_ddpm_ancestral;

/* The step t -> t' (t_up as for dm_ddpm_step_at) with the variance mode DM_VAR_*. */
void dm_ddpm_ancestral_at(const dm_schedule *s, int t, int tp, int t_up, int variance,
                          dm_ddpm_ancestral *a);

/* The step on one sample: x (d) holds x_t and receives x_t'; eps (d) is eps_hat(x_t, t); v (d) the
 * learned fraction (read only with DM_VAR_LEARNED; may be NULL otherwise). The noise is d draws
 * of rng in coordinate order, none when !noisy. */
void dm_ddpm_ancestral_row(const dm_ddpm_ancestral *a, size_t d, float *x, const float *eps,
                           const float *v, dm_rng *rng);

/* One coordinate: KL(N(m1, e^lv1) || N(m2, e^lv2)) in nats, and its derivatives with respect to
 * m2 and lv2 (either pointer may be NULL). */
double dm_gauss_kl(double m1, double lv1, double m2, double lv2, double *d_m2, double *d_lv2);

/* One coordinate: -log N(x; m, e^lv) in nats, and its derivatives with respect to m and lv. */
double dm_gauss_nll(double x, double m, double lv, double *d_m, double *d_lv);

#endif
