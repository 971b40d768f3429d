/* eps-prediction (Ho et al. 2020): F = eps_hat, x0_hat = (x_t - sigma F) / alpha. */
#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts; (void)s; (void)err;
    return DM_OK;
}

static void coef(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c)
{
    (void)opts; (void)sigma_data;
    *c = (dm_param_coef){ .c_in = 1.0, .x_x0 = 1.0 / alpha, .f_x0 = -sigma / alpha,
                          .x_eps = 0.0, .f_eps = 1.0 };
}

const dm_param_ops dm_param_eps = {
    .info = { "eps", "the network predicts the noise eps (DDPM)", NULL, 0 },
    .check = check,
    .coef = coef,
};
