/* mu~-prediction: the network predicts the mean of the DDPM posterior q(x_{t-1} | x_t, x0),
 * mu~ = c_x0 x0 + c_xt x_t (Ho et al. 2020, sec. 3.2 and Table 2; improved-diffusion
 * ModelMeanType.PREVIOUS_X; diffusion/ddpm_step.h). Inverting for the clean estimate,
 *   x0_hat = (F - c_xt x_t) / c_x0  =>  x_x0 = -c_xt / c_x0,  f_x0 = 1 / c_x0,
 * and eps_hat = (x_t - alpha x0_hat) / sigma as for every parameterization. c_x0 > 0 on every
 * step (at t = 0 it is 1 and c_xt = 0: mu~ = x0). The coefficients need abar of the previous
 * step, so mu has only coef_t and only discrete schedules. */
#include "diffusion/ddpm_step.h"
#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    if (!s->discrete)
        return dm_err(err, DM_E_INPUT,
                      "diffusion.param.type: mu (the DDPM posterior mean) needs a discrete schedule; '%s' is "
                      "continuous", s->ops->info.name);
    return DM_OK;
}

static void coef_t(const void *opts, const dm_schedule *s, double t, double sigma_data, dm_param_coef *c)
{
    (void)opts; (void)sigma_data;
    dm_ddpm_step st;
    dm_ddpm_step_full(s, (int)t, &st);
    const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
    const double x_x0 = -st.c_xt / st.c_x0, f_x0 = 1.0 / st.c_x0;
    *c = (dm_param_coef){ .c_in = 1.0, .x_x0 = x_x0, .f_x0 = f_x0,
                          .x_eps = (1.0 - a * x_x0) / sg, .f_eps = -a * f_x0 / sg };
}

const dm_param_ops dm_param_mu = {
    .info = { "mu", "the network predicts the DDPM posterior mean mu~(x_t, x0) (discrete schedules)", NULL, 0 },
    .check = check,
    .coef_t = coef_t,
};
