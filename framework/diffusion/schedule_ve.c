/* The VE SDE (Song et al. 2021, eqs. 9, 30, 31; score_sde_pytorch sde_lib.py VESDE):
 *   alpha = 1,  sigma(t) = sigma_min (sigma_max / sigma_min)^t,  f = 0,
 *   g^2 = sigma(t)^2 * 2 log(sigma_max / sigma_min)  (= d sigma^2 / dt).
 * Training t ~ U(eps, 1) (losses.py get_sde_loss_fn, eps = 1e-5); the sampling grid runs from
 * t = 1 down to t_end (run_lib.py: sampling_eps = 1e-5 for VE; sampling.py
 * linspace(sde.T, eps, sde.N)); the prior is N(0, sigma_max^2 I) (VESDE.prior_sampling).
 * Network time input: score_sde passes sigma(t) itself as the label of continuous VE models
 * (models/utils.py get_score_fn) and NCSN++ embeds torch.log(sigma) (models/ncsnpp.py, Fourier
 * embedding), so c_noise = log sigma(t): the same network input, with the log moved here. */
#include <math.h>
#include <stddef.h>

#include "diffusion/schedules.h"

static const dm_ve_schedule_opts *opts(const dm_schedule *s) { return s->opts; }

/* log(sigma_max / sigma_min) */
static double log_ratio(const dm_schedule *s) { return log(opts(s)->sigma_max / opts(s)->sigma_min); }

static double alpha(const dm_schedule *s, double t) { (void)s; (void)t; return 1.0; }
static double sigma(const dm_schedule *s, double t) { return opts(s)->sigma_min * exp(t * log_ratio(s)); }
static double dalpha(const dm_schedule *s, double t) { (void)s; (void)t; return 0.0; }
static double dsigma(const dm_schedule *s, double t) { return sigma(s, t) * log_ratio(s); }
static double f(const dm_schedule *s, double t) { (void)s; (void)t; return 0.0; }
static double g2(const dm_schedule *s, double t)
{
    const double sg = sigma(s, t);
    return sg * sg * 2.0 * log_ratio(s);
}
static double c_noise(const dm_schedule *s, double t) { return log(opts(s)->sigma_min) + t * log_ratio(s); }


static dm_status init(dm_schedule *s, char *err)
{
    const dm_ve_schedule_opts *o = s->opts;
    if (!(o->sigma_max > o->sigma_min))
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.sigma_max: %g must exceed sigma_min (%g)",
                      o->sigma_max, o->sigma_min);
    return dm_schedule_sde_time_setup(s, o->eps, o->t_end, o->sigma_max, err);
}

static const dm_param_desc params[] = {
    { "sigma_min", DM_OPT_REAL, "0.01", 1e-6, 1e4, NULL, 0, offsetof(dm_ve_schedule_opts, sigma_min),
      "sigma(0), the smallest noise level" },
    { "sigma_max", DM_OPT_REAL, "50", 1e-6, 1e6, NULL, 0, offsetof(dm_ve_schedule_opts, sigma_max),
      "sigma(1); for toy data about the largest pairwise distance of the data (Song & Ermon 2020)" },
    { "eps", DM_OPT_REAL, "1e-5", 0, 1, NULL, 0, offsetof(dm_ve_schedule_opts, eps),
      "smallest training time: t ~ U(eps, 1)" },
    { "t_end", DM_OPT_REAL, "1e-5", 0, 1, NULL, 0, offsetof(dm_ve_schedule_opts, t_end),
      "last time of the sampling grid, which runs from 1 down to t_end" },
    DM_OPT_END,
};

const dm_schedule_ops dm_schedule_ve = {
    .info = { "ve", "variance-exploding SDE, sigma geometric in t (Song et al. 2021)", params,
              sizeof(dm_ve_schedule_opts) },
    .init = init,
    .alpha = alpha,
    .sigma = sigma,
    .c_noise = c_noise,
    .sample_t = dm_schedule_sde_sample_t,
    .grid = dm_schedule_sde_grid,
    .dalpha = dalpha,
    .dsigma = dsigma,
    .f = f,
    .g2 = g2,
};
