/* The EDM schedule (Karras et al. 2022; NVlabs/edm): alpha = 1, sigma = t (Table 1, "ours").
 * Training: ln sigma ~ N(P_mean, P_std^2) (training/loss.py EDMLoss). Sampling grid (eq. 5;
 * generate.py edm_sampler):
 *   t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i < N,  t_N = 0.
 * Network time input c_noise = ln(sigma) / 4 (Table 1; training/networks.py EDMPrecond), or with
 * time_input: cm the consistency models' 1000 * 0.25 ln(sigma + 1e-44) (openai/consistency_models
 * karras_diffusion.py denoise) — the same schedule otherwise.
 * As an SDE: dx = g dW, f = 0, g^2 = d sigma^2 / dt = 2t, whose marginals are N(x0, t^2 I). The
 * prior is N(0, sigma_max^2 I) (edm_sampler: latents * t_steps[0]). */
#include <math.h>
#include <stddef.h>

#include "diffusion/schedules.h"

static const dm_edm_schedule_opts *opts(const dm_schedule *s) { return s->opts; }

static double alpha(const dm_schedule *s, double t) { (void)s; (void)t; return 1.0; }
static double sigma(const dm_schedule *s, double t) { (void)s; return t; }
static double dalpha(const dm_schedule *s, double t) { (void)s; (void)t; return 0.0; }
static double dsigma(const dm_schedule *s, double t) { (void)s; (void)t; return 1.0; }
static double f(const dm_schedule *s, double t) { (void)s; (void)t; return 0.0; }
static double g2(const dm_schedule *s, double t) { (void)s; return 2.0 * t; }
static const char *const time_inputs[] = { "edm", "cm", NULL };

static double c_noise(const dm_schedule *s, double t)
{
    return opts(s)->time_input == DM_TIME_INPUT_CM ? 250.0 * log(t + 1e-44) : 0.25 * log(t);
}

static double sample_t(const dm_schedule *s, dm_rng *rng)
{
    const dm_edm_schedule_opts *o = opts(s);
    return exp(o->p_mean + o->p_std * dm_rng_normal(rng));
}

static dm_status grid(const dm_schedule *s, int n_steps, double *ts, char *err)
{
    const dm_edm_schedule_opts *o = opts(s);
    if (n_steps < 1)
        return dm_err(err, DM_E_INPUT, "a sampler asked for %d steps; at least 1 is needed", n_steps);
    const double a = pow(o->sigma_max, 1.0 / o->rho), b = pow(o->sigma_min, 1.0 / o->rho);
    for (int i = 0; i < n_steps; i++)
        ts[i] = pow(a + (double)i / (n_steps > 1 ? n_steps - 1 : 1) * (b - a), o->rho);
    /* The ends exactly, free of pow rounding. edm_sampler divides by N-1, undefined for N = 1; one
     * step here is one jump from sigma_max to 0. */
    ts[0] = o->sigma_max;
    if (n_steps > 1)
        ts[n_steps - 1] = o->sigma_min;
    ts[n_steps] = 0.0;
    return DM_OK;
}

static dm_status init(dm_schedule *s, char *err)
{
    const dm_edm_schedule_opts *o = s->opts;
    if (!(o->sigma_max > o->sigma_min))
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.sigma_max: %g must exceed sigma_min (%g)",
                      o->sigma_max, o->sigma_min);
    s->discrete = 0;
    s->t_min = o->sigma_min;
    s->t_max = o->sigma_max;
    s->prior_std = o->sigma_max;
    return DM_OK;
}

static const dm_param_desc params[] = {
    { "sigma_min", DM_OPT_REAL, "0.002", 1e-6, 1e4, NULL, 0, offsetof(dm_edm_schedule_opts, sigma_min),
      "smallest noise level of the sampling grid" },
    { "sigma_max", DM_OPT_REAL, "80", 1e-6, 1e6, NULL, 0, offsetof(dm_edm_schedule_opts, sigma_max),
      "largest noise level: the grid's start and the prior's std" },
    { "rho", DM_OPT_REAL, "7", 0.01, 100, NULL, 0, offsetof(dm_edm_schedule_opts, rho),
      "grid exponent: larger rho puts more steps at small sigma; 1 is linear in sigma" },
    { "p_mean", DM_OPT_REAL, "-1.2", -20, 20, NULL, 0, offsetof(dm_edm_schedule_opts, p_mean),
      "mean of ln sigma in training" },
    { "p_std", DM_OPT_REAL, "1.2", 1e-3, 20, NULL, 0, offsetof(dm_edm_schedule_opts, p_std),
      "standard deviation of ln sigma in training" },
    { "time_input", DM_OPT_CHOICE, "edm", 0, 0, time_inputs, 0, offsetof(dm_edm_schedule_opts, time_input),
      "the network's time input: edm (ln(sigma)/4) or cm (250 ln(sigma), consistency models)" },
    DM_OPT_END,
};

const dm_schedule_ops dm_schedule_edm = {
    .info = { "edm", "EDM: sigma = t, lognormal training sigma, rho grid (Karras et al. 2022)", params,
              sizeof(dm_edm_schedule_opts) },
    .init = init,
    .alpha = alpha,
    .sigma = sigma,
    .c_noise = c_noise,
    .sample_t = sample_t,
    .grid = grid,
    .dalpha = dalpha,
    .dsigma = dsigma,
    .f = f,
    .g2 = g2,
};
