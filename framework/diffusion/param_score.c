/* score-prediction: F = s_hat ~ grad log p_t(x_t) (Song et al. 2021, score_sde). The score of
 * q(x_t | x0) is -(x_t - alpha x0)/sigma^2 = -eps/sigma, so eps_hat = -sigma F and
 * x0_hat = (x_t - sigma eps_hat)/alpha = (x_t + sigma^2 F)/alpha (Tweedie's formula).
 * The network input is not rescaled (c_in = 1), as the eps parameterization. */
#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts; (void)s; (void)err;
    return DM_OK;
}

static void coef(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c)
{
    (void)opts; (void)sigma_data;
    *c = (dm_param_coef){ .c_in = 1.0, .x_x0 = 1.0 / alpha, .f_x0 = sigma * sigma / alpha,
                          .x_eps = 0.0, .f_eps = -sigma };
}

const dm_param_ops dm_param_score = {
    .info = { "score", "the network predicts the score grad log p_t(x_t) = -eps/sigma", NULL, 0 },
    .check = check,
    .coef = coef,
};
