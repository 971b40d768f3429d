/* The VP and sub-VP SDEs (Song et al. 2021, eqs. 11, 29, 33, 34; score_sde_pytorch sde_lib.py
 * VPSDE, subVPSDE). Both have beta(t) = beta_min + t (beta_max - beta_min), drift f = -beta/2 and
 *   log alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2    (marginal_prob's log_mean_coeff)
 *   VP:     sigma = sqrt(1 - alpha^2),  g^2 = beta
 *   sub-VP: sigma = 1 - alpha^2 (the std itself, not its square root: subVPSDE.marginal_prob),
 *           g^2 = beta (1 - exp(-2 beta_min t - (beta_max - beta_min) t^2)) = beta (1 - alpha^4).
 * Both satisfy g^2 = 2 sigma sigma' - 2 f sigma^2 with f = alpha'/alpha: for sub-VP,
 * 2(1 - a^2) a^2 beta + beta (1 - a^2)^2 = beta (1 - a^4), so its g^2 is not an exception.
 * 1 - alpha^2 is computed as -expm1(2 log alpha), which equals sde_lib's 1 - exp(2 log alpha) but
 * keeps its relative precision at small t, where sigma ~ sqrt(beta_min t).
 * Training t ~ U(eps, 1) (losses.py get_sde_loss_fn, eps = 1e-5); the sampling grid runs from
 * t = 1 down to t_end (run_lib.py: sampling_eps = 1e-3 for VP and sub-VP; sampling.py
 * linspace(sde.T, eps, sde.N)). The network's time input is 999 t (models/utils.py get_score_fn:
 * "the maximum value of time embedding is assumed to 999 for continuously-trained models"). */
#include <math.h>
#include <stddef.h>

#include "diffusion/schedules.h"

static const dm_vp_schedule_opts *opts(const dm_schedule *s) { return s->opts; }

static double beta(const dm_schedule *s, double t)
{
    const dm_vp_schedule_opts *o = opts(s);
    return o->beta_min + t * (o->beta_max - o->beta_min);
}

static double log_alpha(const dm_schedule *s, double t)
{
    const dm_vp_schedule_opts *o = opts(s);
    return -0.25 * t * t * (o->beta_max - o->beta_min) - 0.5 * t * o->beta_min;
}

/* 1 - alpha(t)^2 */
static double one_minus_a2(const dm_schedule *s, double t) { return -expm1(2.0 * log_alpha(s, t)); }

static double alpha(const dm_schedule *s, double t) { return exp(log_alpha(s, t)); }
/* alpha' = alpha * d log alpha / dt = -beta alpha / 2 */
static double dalpha(const dm_schedule *s, double t) { return -0.5 * beta(s, t) * alpha(s, t); }
static double f(const dm_schedule *s, double t) { return -0.5 * beta(s, t); }

static double vp_sigma(const dm_schedule *s, double t) { return sqrt(one_minus_a2(s, t)); }
/* sigma^2 = 1 - alpha^2, so sigma' = -alpha alpha' / sigma = alpha^2 beta / (2 sigma). */
static double vp_dsigma(const dm_schedule *s, double t)
{
    const double a = alpha(s, t);
    return a * a * beta(s, t) / (2.0 * vp_sigma(s, t));
}
static double vp_g2(const dm_schedule *s, double t) { return beta(s, t); }

static double subvp_sigma(const dm_schedule *s, double t) { return one_minus_a2(s, t); }
/* sigma = 1 - alpha^2, so sigma' = -2 alpha alpha' = alpha^2 beta. */
static double subvp_dsigma(const dm_schedule *s, double t)
{
    const double a = alpha(s, t);
    return a * a * beta(s, t);
}
/* sde_lib.subVPSDE.sde: discount = 1 - exp(-2 beta_0 t - (beta_1 - beta_0) t^2). */
static double subvp_g2(const dm_schedule *s, double t)
{
    const dm_vp_schedule_opts *o = opts(s);
    return beta(s, t) * -expm1(-2.0 * o->beta_min * t - (o->beta_max - o->beta_min) * t * t);
}

static double c_noise(const dm_schedule *s, double t) { (void)s; return 999.0 * t; }

dm_status dm_schedule_linspace_grid(double t_start, double t_end, int n_steps, double *ts, char *err)
{
    if (n_steps < 1)
        return dm_err(err, DM_E_INPUT, "a sampler asked for %d steps; at least 1 is needed", n_steps);
    for (int i = 0; i < n_steps; i++)
        ts[i] = t_start + (t_end - t_start) * i / n_steps;
    ts[n_steps] = t_end; /* exactly, with no rounding */
    return DM_OK;
}

dm_status dm_schedule_sde_time_setup(dm_schedule *s, double eps, double t_end, double prior_std, char *err)
{
    if (!(eps < 1.0))
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.eps: %g must be below 1 (training t ~ U(eps, 1))", eps);
    if (!(t_end < 1.0))
        return dm_err(err, DM_E_INPUT,
                      "diffusion.schedule.t_end: %g must be below 1 (sampling runs from t = 1 down to t_end)",
                      t_end);
    s->discrete = 0;
    s->t_min = eps;
    s->t_max = 1.0;
    s->t_end = t_end;
    s->prior_std = prior_std;
    return DM_OK;
}

double dm_schedule_sde_sample_t(const dm_schedule *s, dm_rng *rng)
{
    return s->t_min + (s->t_max - s->t_min) * dm_rng_uniform(rng);
}

dm_status dm_schedule_sde_grid(const dm_schedule *s, int n_steps, double *ts, char *err)
{
    return dm_schedule_linspace_grid(s->t_max, s->t_end, n_steps, ts, err);
}

static dm_status init(dm_schedule *s, char *err)
{
    const dm_vp_schedule_opts *o = s->opts;
    /* beta_max = beta_min is allowed: constant beta, the Ornstein-Uhlenbeck process. */
    if (o->beta_max < o->beta_min)
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.beta_max: %g is below beta_min (%g)",
                      o->beta_max, o->beta_min);
    /* sde_lib prior_sampling: randn for both VP and sub-VP */
    return dm_schedule_sde_time_setup(s, o->eps, o->t_end, 1.0, err);
}

static const dm_param_desc params[] = {
    { "beta_min", DM_OPT_REAL, "0.1", 0, 1000, NULL, 0, offsetof(dm_vp_schedule_opts, beta_min),
      "beta(0)" },
    { "beta_max", DM_OPT_REAL, "20", 1e-6, 1000, NULL, 0, offsetof(dm_vp_schedule_opts, beta_max),
      "beta(1)" },
    { "eps", DM_OPT_REAL, "1e-5", 1e-9, 1, NULL, 0, offsetof(dm_vp_schedule_opts, eps),
      "smallest training time: t ~ U(eps, 1) (sigma(0) = 0)" },
    { "t_end", DM_OPT_REAL, "1e-3", 1e-9, 1, NULL, 0, offsetof(dm_vp_schedule_opts, t_end),
      "last time of the sampling grid, which runs from 1 down to t_end" },
    DM_OPT_END,
};

const dm_schedule_ops dm_schedule_vp = {
    .info = { "vp", "variance-preserving SDE, beta linear in t (Song et al. 2021)", params,
              sizeof(dm_vp_schedule_opts) },
    .init = init,
    .alpha = alpha,
    .sigma = vp_sigma,
    .c_noise = c_noise,
    .sample_t = dm_schedule_sde_sample_t,
    .grid = dm_schedule_sde_grid,
    .dalpha = dalpha,
    .dsigma = vp_dsigma,
    .f = f,
    .g2 = vp_g2,
};

const dm_schedule_ops dm_schedule_subvp = {
    .info = { "subvp", "sub-VP SDE: the VP drift, sigma = 1 - alpha^2 (Song et al. 2021)", params,
              sizeof(dm_vp_schedule_opts) },
    .init = init,
    .alpha = alpha,
    .sigma = subvp_sigma,
    .c_noise = c_noise,
    .sample_t = dm_schedule_sde_sample_t,
    .grid = dm_schedule_sde_grid,
    .dalpha = dalpha,
    .dsigma = subvp_dsigma,
    .f = f,
    .g2 = subvp_g2,
};
