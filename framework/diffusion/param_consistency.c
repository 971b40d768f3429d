/* The consistency-model parameterization (Song et al. 2023, sec. 3 and app. C; openai/consistency_models
 * karras_diffusion.py get_scalings_for_boundary_condition; diffusion/consistency.h):
 *   f(x, t) = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t)),
 *   c_skip = sd^2/((sigma - eps)^2 + sd^2),  c_out = (sigma - eps) sd/sqrt(sigma^2 + sd^2),
 *   c_in = 1/sqrt(sigma^2 + sd^2),
 * with eps = sigma(t_min) the schedule's smallest noise level, so f(x, t_min) = x exactly (the
 * boundary condition). f plays the part of x0_hat everywhere (denoisers, samplers, losses):
 * x_x0 = c_skip, f_x0 = c_out, and eps_hat = (x - f)/sigma. Schedules with alpha = 1 only (edm,
 * ve); sigma_data defaults to the dataset's measured std, as EDM's. */
#include <math.h>
#include <stddef.h>

#include "diffusion/consistency.h"
#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    const double ts[3] = { s->t_min, 0.5 * (s->t_min + s->t_max), s->t_max };
    for (int i = 0; i < 3; i++)
        if (s->ops->alpha(s, ts[i]) != 1.0)
            return dm_err(err, DM_E_INPUT,
                          "diffusion.param.type: consistency needs a schedule with alpha = 1 (edm, ve); '%s' has "
                          "alpha(%g) = %g", s->ops->info.name, ts[i], s->ops->alpha(s, ts[i]));
    if (!(s->ops->sigma(s, s->t_min) > 0))
        return dm_err(err, DM_E_INPUT, "diffusion.param.type: consistency needs sigma(t_min) > 0 (the boundary eps)");
    return DM_OK;
}

static void coef_t(const void *opts, const dm_schedule *s, double t, double sigma_data, dm_param_coef *c)
{
    const dm_param_edm_opts *o = opts;
    const double sd = o && o->sigma_data > 0 ? o->sigma_data : sigma_data;
    const double sg = s->ops->sigma(s, t);
    dm_cm_coef cm;
    dm_cm_coef_at(sg, s->ops->sigma(s, s->t_min), sd, &cm);
    *c = (dm_param_coef){ .c_in = cm.c_in, .x_x0 = cm.c_skip, .f_x0 = cm.c_out,
                          .x_eps = sg > 0 ? (1.0 - cm.c_skip) / sg : 0.0, .f_eps = sg > 0 ? -cm.c_out / sg : 0.0 };
}

static double configured_sigma_data(const void *opts)
{
    const dm_param_edm_opts *o = opts;
    return o ? o->sigma_data : 0.0;
}

static const dm_param_desc consistency_params[] = {
    { "sigma_data", DM_OPT_REAL, "0", 0, 1e6, NULL, 0, offsetof(dm_param_edm_opts, sigma_data),
      "data std of the boundary scalings; 0: the training data's measured std (the papers use 0.5 on images)" },
    DM_OPT_END,
};

const dm_param_ops dm_param_consistency = {
    .info = { "consistency", "consistency function f = c_skip x + c_out F with f(x, eps) = x (Song et al. 2023)",
              consistency_params, sizeof(dm_param_edm_opts) },
    .check = check,
    .coef_t = coef_t,
    .sigma_data = configured_sigma_data,
};
