/* schedule.h — noise schedules: x_t = alpha(t) x0 + sigma(t) eps.
 *
 * A schedule gives alpha(t), sigma(t) (and, for continuous ones, their time derivatives and the
 * forward SDE dx = f(t) x dt + g(t) dW), the training distribution of t, the sampling grid, the
 * standard deviation of the sampling prior, and the network's time input c_noise(t).
 * Discrete schedules (DDPM) use t = integer step index 0..T-1 (DDPM's step t+1) and expose
 * abar[t]; a sampling grid may be any decreasing subset of the steps (respacing), and samplers
 * derive the per-step beta from abar of consecutive grid points, so one formula serves every
 * grid. Instances are immutable after dm_schedule_init and safe to share between threads. */
#ifndef DM_DIFFUSION_SCHEDULE_H
#define DM_DIFFUSION_SCHEDULE_H

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"

typedef struct dm_schedule dm_schedule;

typedef struct dm_schedule_ops {
    dm_plugin info;
    /* Fill the derived state of s (tables, t range) from s->opts. */
    dm_status (*init)(dm_schedule *s, char *err);
    double (*alpha)(const dm_schedule *s, double t);
    double (*sigma)(const dm_schedule *s, double t);
    /* The network's time input for time t (DDPM: the step index itself, as the peer model). */
    double (*c_noise)(const dm_schedule *s, double t);
    /* One training time from the schedule's training distribution. */
    double (*sample_t)(const dm_schedule *s, dm_rng *rng);
    /* Sampling grid with n_steps steps: n_steps + 1 decreasing times, ts[0] the start and
     * ts[n_steps] the end (discrete: -1, meaning "after the last step", i.e. clean data;
     * continuous: the schedule's sampling end t_end (score-SDE: 1e-3 for VP / sub-VP, 1e-5 for
     * VE), or 0 for EDM where sigma(0) = 0). */
    dm_status (*grid)(const dm_schedule *s, int n_steps, double *ts, char *err);
    /* Continuous schedules only (NULL for discrete ones): d alpha / dt, d sigma / dt, and the
     * forward SDE's drift coefficient f(t) (dx = f x dt + g dW) and g(t)^2. For every schedule,
     * f = alpha'/alpha and g^2 = 2 sigma sigma' - 2 f sigma^2: the SDE whose marginals are the
     * schedule's (for sub-VP this is its own g^2 = beta (1 - alpha^4), Song et al. 2021, eq. 34). */
    double (*dalpha)(const dm_schedule *s, double t);
    double (*dsigma)(const dm_schedule *s, double t);
    double (*f)(const dm_schedule *s, double t);
    double (*g2)(const dm_schedule *s, double t);
} dm_schedule_ops;

struct dm_schedule {
    const dm_schedule_ops *ops;
    const void *opts;   /* the spec's options struct for ops; borrowed */
    int discrete;       /* 1: t is an integer step index 0..T-1 */
    int T;              /* discrete: number of steps */
    double *abar;       /* discrete: (T) cumulative products of (1 - beta) */
    double t_min, t_max;  /* range of t (continuous: training draws t from [t_min, t_max]) */
    double t_end;         /* score-SDE schedules: where the sampling grid from t_max stops */
    double prior_std;     /* samplers start from x ~ N(0, prior_std^2 I): 1 for DDPM and VP,
                           * sigma_max for VE and EDM */
};

extern const dm_plugin *const dm_schedule_registry[];

dm_status dm_schedule_init(dm_schedule *s, const dm_schedule_ops *ops, const void *opts, char *err);
void dm_schedule_free(dm_schedule *s);

/* abar at a discrete time index, with abar(-1) = 1 (the clean end of the chain). */
double dm_schedule_abar(const dm_schedule *s, int t);

/* Continuous schedules: the time t in (0, t_max] at which sigma(t)/alpha(t) = ratio (the noise
 * level that the PF-ODE sees: Karras et al. 2022, eq. 4), by bisection to the last bit of t
 * (sigma/alpha rises with t on every schedule here). DM_E_INPUT naming `key` for a discrete
 * schedule or a ratio outside (sigma/alpha at 0, sigma/alpha at t_max]. */
dm_status dm_schedule_t_at_ratio(const dm_schedule *s, double ratio, const char *key, double *t, char *err);

#endif
