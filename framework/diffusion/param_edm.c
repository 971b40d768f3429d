/* EDM preconditioning (Karras et al. 2022, Table 1 and sec. 5; NVlabs/edm training/networks.py
 * EDMPrecond): for alpha = 1,
 *   c_skip = sd^2/(sigma^2 + sd^2),  c_out = sigma sd/sqrt(sigma^2 + sd^2),  c_in = 1/sqrt(sigma^2 + sd^2),
 *   D(x; sigma) = c_skip x + c_out F(c_in x; c_noise),
 * chosen so that the network's input and its training target (x0 - c_skip x)/c_out have unit
 * variance when the data has std sd. (c_noise = ln(sigma)/4 is the schedule's job in difflab.)
 *
 * Any alpha: Karras et al. (sec. 2, Table 1) write x_t = s(t) x^ with x^ = x0 + sigma(t) n, i.e.
 * s = alpha and their sigma = sigma/alpha here, so the preconditioning applies to x~ = x/alpha at
 * sigma~ = sigma/alpha:
 *   x0_hat = c_skip(s~) x/alpha + c_out(s~) F(c_in(s~) x/alpha)
 *   => x_x0 = c_skip(s~)/alpha, f_x0 = c_out(s~), c_in = c_in(s~)/alpha.
 * eps_hat = (x - alpha x0_hat)/sigma, written without dividing by sigma so that sigma = 0 is fine:
 *   x_eps = (1 - c_skip)/sigma = s~/(alpha (s~^2 + sd^2)),  f_eps = -c_out/s~ = -sd/sqrt(s~^2 + sd^2).
 * At sigma = 0: c_skip = 1, c_out = 0, so x0_hat = x exactly. */
#include <math.h>
#include <stddef.h>

#include "diffusion/params.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts; (void)s; (void)err;
    return DM_OK;
}

static void coef(const void *opts, double alpha, double sigma, double sigma_data, dm_param_coef *c)
{
    const dm_param_edm_opts *o = opts;
    /* The option wins when set; 0 means the dataset's measured std, passed in by the caller. */
    const double sd = o && o->sigma_data > 0 ? o->sigma_data : sigma_data;
    const double st = sigma / alpha, sd2 = sd * sd, r2 = st * st + sd2, r = sqrt(r2);
    *c = (dm_param_coef){ .c_in = 1.0 / (r * alpha),
                          .x_x0 = sd2 / r2 / alpha,
                          .f_x0 = st * sd / r,
                          .x_eps = st / (alpha * r2),
                          .f_eps = -sd / r };
}

static const dm_param_desc edm_params[] = {
    { "sigma_data", DM_OPT_REAL, "0", 0, 1e6, NULL, 0, offsetof(dm_param_edm_opts, sigma_data),
      "data std for the EDM scalings; 0: the training data's measured std" },
    DM_OPT_END,
};

static double configured_sigma_data(const void *opts)
{
    const dm_param_edm_opts *o = opts;
    return o ? o->sigma_data : 0.0;
}

const dm_param_ops dm_param_edm = {
    .info = { "edm", "EDM preconditioning D = c_skip x + c_out F(c_in x) (Karras et al. 2022)",
              edm_params, sizeof(dm_param_edm_opts) },
    .check = check,
    .coef = coef,
    .sigma_data = configured_sigma_data,
};
