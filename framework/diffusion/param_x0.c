/* x0-prediction: F = x0_hat (Ho et al. 2020 discuss it as the alternative to eps; Salimans & Ho
 * 2022, sec. 4). eps_hat follows from x_t = alpha x0 + sigma eps: eps_hat = (x_t - alpha F) / sigma,
 * undefined at sigma = 0 (where no sampler needs eps). */
#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts; (void)s; (void)err;
    return DM_OK;
}

static void coef(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c)
{
    (void)opts; (void)sigma_data;
    *c = (dm_param_coef){ .c_in = 1.0, .x_x0 = 0.0, .f_x0 = 1.0,
                          .x_eps = 1.0 / sigma, .f_eps = -alpha / sigma };
}

const dm_param_ops dm_param_x0 = {
    .info = { "x0", "the network predicts the clean data x0", NULL, 0 },
    .check = check,
    .coef = coef,
};
