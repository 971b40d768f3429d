/* params.h — the parameterization plug-ins and their options structs.
 *
 * Coefficients of each (x = x_t; x0_hat = x_x0 x + f_x0 F, eps_hat = x_eps x + f_eps F; the network
 * sees c_in x). Every pair satisfies x0_hat = (x - sigma eps_hat) / alpha, i.e.
 * x_x0 = (1 - sigma x_eps) / alpha and f_x0 = -sigma f_eps / alpha.
 *
 *   eps    F = eps_hat        c_in 1   x0: 1/a, -s/a            eps: 0, 1
 *   x0     F = x0_hat         c_in 1   x0: 0, 1                 eps: 1/s, -a/s
 *   v      F = v_hat          c_in 1   x0: a, -s                eps: s, a          (a^2 + s^2 = 1)
 *   score  F = score_hat      c_in 1   x0: 1/a, s^2/a           eps: 0, -s
 *   edm    D = c_skip x~ + c_out F(c_in x~), x~ = x/a, s~ = s/a (Karras et al. 2022, Table 1):
 *          c_in = c_in(s~)/a, x0: c_skip(s~)/a, c_out(s~), eps: s~/(a (s~^2 + sd^2)), -sd/sqrt(s~^2 + sd^2)
 *
 *   mu     F = mu~ (DDPM posterior mean, c_x0 x0 + c_xt x_t)   c_in 1   x0: -c_xt/c_x0, 1/c_x0
 *
 * coef() is called with alpha > 0; sigma = 0 is allowed for eps, v, score and edm (x0's eps_hat
 * divides by sigma). */
#ifndef DM_DIFFUSION_PARAMS_H
#define DM_DIFFUSION_PARAMS_H

#include "diffusion/param.h"

extern const dm_param_ops dm_param_eps;
extern const dm_param_ops dm_param_x0;
extern const dm_param_ops dm_param_v;
extern const dm_param_ops dm_param_score;
extern const dm_param_ops dm_param_edm;
extern const dm_param_ops dm_param_mu;   /* coef_t only (discrete schedules) */
extern const dm_param_ops dm_param_consistency;   /* coef_t only (alpha = 1); options dm_param_edm_opts */

typedef struct dm_param_edm_opts {
    double sigma_data;   /* 0: the dataset's measured std (the coef() argument) */
} dm_param_edm_opts;

/* The largest |alpha^2 + sigma^2 - 1| of an initialized schedule over nine evenly spaced times
 * in [t_min, t_max] (step indices, rounded, for discrete schedules); *t_worst (if not NULL) gets
 * the time where it occurs. v-prediction (parameterization and loss target) needs it <= 1e-6. */
double dm_param_vp_defect(const dm_schedule *s, double *t_worst);

/* The tolerance on dm_param_vp_defect for "variance-preserving". */
#define DM_PARAM_VP_TOL 1e-6

#endif
