/* param.h — parameterizations: how the network output F becomes the denoised estimate.
 *
 * Every parameterization difflab has (eps, x0, v, score, EDM's F) is linear in x_t and F:
 *   x0_hat  = x_x0 * x_t + f_x0 * F
 *   eps_hat = x_eps * x_t + f_eps * F
 * with coefficients depending on alpha(t), sigma(t) and sigma_data, and the network sees
 * c_in * x_t. So one coefficient function per parameterization serves denoising (any sampler),
 * and the chain rule of any loss with respect to F (a loss in x0 space has dL/dF = f_x0 dL/dx0). */
#ifndef DM_DIFFUSION_PARAM_H
#define DM_DIFFUSION_PARAM_H

#include "core/options.h"
#include "core/status.h"
#include "diffusion/schedule.h"

typedef struct dm_param_coef {
    double c_in;           /* network input scale */
    double x_x0, f_x0;     /* x0_hat = x_x0 * x + f_x0 * F */
    double x_eps, f_eps;   /* eps_hat = x_eps * x + f_eps * F */
} dm_param_coef;

typedef struct dm_param_ops {
    dm_plugin info;
    /* DM_E_INPUT if this parameterization is not meaningful with the schedule. */
    dm_status (*check)(const void *opts, const dm_schedule *s, char *err);
    void (*coef)(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c);
    /* Optional: the sigma_data the options set, or 0 for "the dataset's measured std". The trainer
     * resolves the run's one sigma_data from it and hands that to coef() and to the loss. */
    double (*sigma_data)(const void *opts);
    /* Optional: coefficients that depend on more of the schedule than alpha(t), sigma(t) (mu:
     * abar of the previous step). When set, callers use it instead of coef (dm_param_coef_at). */
    void (*coef_t)(const void *opts, const dm_schedule *s, double t, double sigma_data, dm_param_coef *c);
} dm_param_ops;

/* The coefficients of parameterization p at time t of schedule s: what every caller uses. */
static inline void dm_param_coef_at(const dm_param_ops *p, const void *opts, const dm_schedule *s, double t,
                                    double sigma_data, dm_param_coef *c)
{
    if (p->coef_t)
        p->coef_t(opts, s, t, sigma_data, c);
    else
        p->coef(opts, s->ops->alpha(s, t), s->ops->sigma(s, t), sigma_data, c);
}

extern const dm_plugin *const dm_param_registry[];

#endif
