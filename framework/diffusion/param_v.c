/* v-prediction (Salimans & Ho 2022, sec. 4 and appendix D): with alpha^2 + sigma^2 = 1,
 * v = alpha eps - sigma x0, and since x_t = alpha x0 + sigma eps,
 *   x0_hat  = alpha x_t - sigma v_hat,   eps_hat = sigma x_t + alpha v_hat.
 * (Without alpha^2 + sigma^2 = 1 these two lines are not the inverse of the definition of v, so
 * check() refuses such schedules rather than silently train a different target.) */
#include <math.h>

#include "diffusion/params.h"

double dm_param_vp_defect(const dm_schedule *s, double *t_worst)
{
    enum { N_PROBE = 9 };
    double worst = 0.0, tw = s->t_min;
    for (int k = 0; k < N_PROBE; k++) {
        double t = s->t_min + (s->t_max - s->t_min) * k / (N_PROBE - 1);
        if (s->discrete)
            t = round(t);
        const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
        const double dev = fabs(a * a + sg * sg - 1.0);
        /* A NaN is the worst case and stays so. */
        if (isnan(dev) || dev > worst) {
            worst = dev;
            tw = t;
            if (isnan(dev))
                break;
        }
    }
    if (t_worst)
        *t_worst = tw;
    return worst;
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    double t;
    const double dev = dm_param_vp_defect(s, &t);
    if (!(dev <= DM_PARAM_VP_TOL))
        return dm_err(err, DM_E_INPUT,
                      "diffusion.param.type: v-prediction needs alpha^2 + sigma^2 = 1; schedule '%s' "
                      "is not variance-preserving (|alpha^2 + sigma^2 - 1| = %g at t = %g)",
                      s->ops->info.name, dev, t);
    return DM_OK;
}

static void coef(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c)
{
    (void)opts; (void)sigma_data;
    *c = (dm_param_coef){ .c_in = 1.0, .x_x0 = alpha, .f_x0 = -sigma,
                          .x_eps = sigma, .f_eps = alpha };
}

const dm_param_ops dm_param_v = {
    .info = { "v", "the network predicts v = alpha eps - sigma x0 (alpha^2 + sigma^2 = 1 only)", NULL, 0 },
    .check = check,
    .coef = coef,
};
