/* schedules.h — the schedule plug-ins and their options structs. */
#ifndef DM_DIFFUSION_SCHEDULES_H
#define DM_DIFFUSION_SCHEDULES_H

#include <stdint.h>

#include "diffusion/schedule.h"

typedef struct dm_ddpm_linear_opts {
    int64_t T;
    double beta_start, beta_end;
} dm_ddpm_linear_opts;

/* "cosine": discrete, abar from cos^2 (Nichol & Dhariwal 2021). */
typedef struct dm_cosine_schedule_opts {
    int64_t T;
    double s;
} dm_cosine_schedule_opts;

/* "vp" and "subvp": continuous, beta(t) = beta_min + t (beta_max - beta_min) (Song et al. 2021). */
typedef struct dm_vp_schedule_opts {
    double beta_min, beta_max;
    double eps;    /* training t ~ U(eps, 1) */
    double t_end;  /* the sampling grid ends at t_end */
} dm_vp_schedule_opts;

/* "ve": continuous, alpha = 1, sigma(t) = sigma_min (sigma_max / sigma_min)^t (Song et al. 2021). */
typedef struct dm_ve_schedule_opts {
    double sigma_min, sigma_max;
    double eps, t_end;
} dm_ve_schedule_opts;

/* "edm": continuous, alpha = 1, sigma = t, lognormal training sigma (Karras et al. 2022). */
enum { DM_TIME_INPUT_EDM = 0, DM_TIME_INPUT_CM = 1 };
typedef struct dm_edm_schedule_opts {
    double sigma_min, sigma_max, rho;
    double p_mean, p_std;
    int time_input;   /* DM_TIME_INPUT_EDM: ln(sigma)/4; DM_TIME_INPUT_CM: 250 ln(sigma + 1e-44) */
} dm_edm_schedule_opts;

extern const dm_schedule_ops dm_schedule_ddpm_linear;
extern const dm_schedule_ops dm_schedule_cosine;
extern const dm_schedule_ops dm_schedule_vp;
extern const dm_schedule_ops dm_schedule_subvp;
extern const dm_schedule_ops dm_schedule_ve;
extern const dm_schedule_ops dm_schedule_edm;

/* Shared by the discrete schedules (schedule_discrete.c): t is the step index, alpha and sigma
 * from abar, c_noise = t, uniform training steps, and the grid of n_steps evenly spaced steps
 * from T-1 to 0, then -1. dm_schedule_discrete_setup fills the fields and allocates abar (T),
 * which the plug-in then fills. */
double dm_schedule_discrete_alpha(const dm_schedule *s, double t);
double dm_schedule_discrete_sigma(const dm_schedule *s, double t);
double dm_schedule_discrete_c_noise(const dm_schedule *s, double t);
double dm_schedule_discrete_sample_t(const dm_schedule *s, dm_rng *rng);
dm_status dm_schedule_discrete_grid(const dm_schedule *s, int n_steps, double *ts, char *err);
dm_status dm_schedule_discrete_setup(dm_schedule *s, int T, char *err);

/* n_steps + 1 evenly spaced times from t_start down to t_end, both included (score_sde's
 * linspace(T, eps, N) samplers); DM_E_INPUT if n_steps < 1. Used by vp, subvp and ve. */
dm_status dm_schedule_linspace_grid(double t_start, double t_end, int n_steps, double *ts, char *err);

/* The score-SDE time axis shared by vp, subvp and ve: t in [eps, 1], training t ~ U(eps, 1),
 * sampling on linspace(1, t_end). dm_schedule_sde_time_setup checks eps and t_end (messages
 * name diffusion.schedule.eps / .t_end) and fills t_min, t_max, t_end, prior_std. */
dm_status dm_schedule_sde_time_setup(dm_schedule *s, double eps, double t_end, double prior_std, char *err);
double dm_schedule_sde_sample_t(const dm_schedule *s, dm_rng *rng);
dm_status dm_schedule_sde_grid(const dm_schedule *s, int n_steps, double *ts, char *err);

#endif
