/* Mean squared error in a chosen target space (eps: DDPM's L_simple, Ho et al. 2020 eq. 14).
 * The prediction in that space is linear in F (param.h), so dL/dF = 2 f (pred - target) / (n d). */
#include <stddef.h>

#include "diffusion/losses.h"

static const char *const targets[] = { "eps", "x0", NULL };

static dm_status check(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err)
{
    (void)opts; (void)s; (void)param; (void)err;
    return DM_OK;
}

static double eval(const void *opts, const dm_loss_batch *b, float *dF)
{
    const dm_mse_opts *o = opts;
    const size_t d = b->d;
    const double scale = 1.0 / ((double)b->n * (double)d);
    double total = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        const dm_param_coef *c = &b->coef[i];
        const double xc = o->target == DM_MSE_EPS ? c->x_eps : c->x_x0;
        const double fc = o->target == DM_MSE_EPS ? c->f_eps : c->f_x0;
        const float *tgt = o->target == DM_MSE_EPS ? b->eps : b->x0;
        double row = 0.0;
        for (size_t j = 0; j < d; j++) {
            const size_t k = i * d + j;
            const double r = xc * b->x_t[k] + fc * b->F[k] - tgt[k];
            row += r * r;
            dF[k] = (float)(2.0 * scale * fc * r);
        }
        total += row;
    }
    return total * scale;
}

static const dm_param_desc mse_params[] = {
    { "target", DM_OPT_CHOICE, "eps", 0, 0, targets, 0, offsetof(dm_mse_opts, target),
      "space of the squared error: eps (L_simple) or x0" },
    DM_OPT_END,
};

const dm_loss_ops dm_loss_mse = {
    .info = { "mse", "mean squared error of the prediction in the target space", mse_params,
              sizeof(dm_mse_opts) },
    .check = check,
    .eval = eval,
};
