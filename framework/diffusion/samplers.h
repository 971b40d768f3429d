/* samplers.h — the sampler plug-ins and their options structs. */
#ifndef DM_DIFFUSION_SAMPLERS_H
#define DM_DIFFUSION_SAMPLERS_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "diffusion/ddpm_step.h"
#include "diffusion/sampler.h"

typedef struct dm_ddpm_sampler_opts {
    int64_t steps;   /* 0: every step of the schedule */
    int variance;    /* DM_VAR_BETA, DM_VAR_BETA_TILDE or DM_VAR_LEARNED (diffusion/ddpm_step.h) */
} dm_ddpm_sampler_opts;

extern const dm_sampler_ops dm_sampler_ddpm;

/* Every sampler below takes `denoise`: on a grid that stops at t_end > 0 (VP, VE), finish with
 * x <- x0_hat(x, t_end) = E[x0 | x_t_end], one more evaluation (score_sde's noise_removal,
 * DPM-Solver's denoise_to_zero). On a grid that ends at sigma = 0 (EDM, discrete) the step onto
 * sigma = 0 is x0_hat anyway and the option has no effect. See diffusion/ode.h. */

/* "ddim" (Song et al. 2021a; improved-diffusion ddim_sample): discrete or continuous schedules. */
typedef struct dm_ddim_sampler_opts {
    int64_t steps;   /* 0: every step of a discrete schedule */
    double eta;      /* 0 deterministic, 1 ancestral (DDPM with the posterior variance) */
    bool denoise;
} dm_ddim_sampler_opts;

/* "em": Euler–Maruyama on the reverse SDE (score_sde EulerMaruyamaPredictor). */
typedef struct dm_em_sampler_opts {
    int64_t steps;
    bool denoise;
} dm_em_sampler_opts;

/* "pc": predictor–corrector (score_sde get_pc_sampler) with a Langevin corrector. */
enum { DM_PC_REVERSE_DIFFUSION = 0, DM_PC_EULER_MARUYAMA = 1 };
typedef struct dm_pc_sampler_opts {
    int64_t steps;
    int predictor;            /* DM_PC_REVERSE_DIFFUSION or DM_PC_EULER_MARUYAMA */
    double snr;
    int64_t corrector_steps;  /* Langevin steps before each predictor step; 0: none */
    bool denoise;
} dm_pc_sampler_opts;

/* "euler": Euler on the probability-flow ODE. */
typedef struct dm_euler_sampler_opts {
    int64_t steps;
    bool denoise;
} dm_euler_sampler_opts;

/* "heun": EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2; edm_sampler). */
typedef struct dm_heun_sampler_opts {
    int64_t steps;
    double s_churn, s_min, s_max, s_noise;
    bool denoise;
} dm_heun_sampler_opts;

/* "rk45": adaptive Runge–Kutta on the PF-ODE (GSL gsl_odeiv2), the whole batch as one system. */
enum { DM_RK45_RKF45 = 0, DM_RK45_RKCK = 1 };
typedef struct dm_rk45_sampler_opts {
    int method;        /* DM_RK45_RKF45 or DM_RK45_RKCK */
    double rtol, atol;
    bool denoise;
} dm_rk45_sampler_opts;

/* "dpmpp2m": DPM-Solver++(2M) (Lu et al. 2022; k-diffusion sample_dpmpp_2m). */
typedef struct dm_dpmpp2m_sampler_opts {
    int64_t steps;
    bool lower_order_final;   /* DPM-Solver's: below 10 steps the last step is first order */
    bool denoise;
} dm_dpmpp2m_sampler_opts;

extern const dm_sampler_ops dm_sampler_ddim;
extern const dm_sampler_ops dm_sampler_em;
extern const dm_sampler_ops dm_sampler_pc;
extern const dm_sampler_ops dm_sampler_euler;
extern const dm_sampler_ops dm_sampler_heun;
extern const dm_sampler_ops dm_sampler_rk45;
extern const dm_sampler_ops dm_sampler_dpmpp2m;

/* "cm": consistency-model sampling (one-step or multistep). */
typedef struct dm_cm_sampler_opts {
    int64_t steps;
    dm_reals times;   /* empty: the schedule's grid */
} dm_cm_sampler_opts;

extern const dm_sampler_ops dm_sampler_cm;

/* "exact": direct draws from the data's Gaussian mixture (sampler_exact.c), the floor row; no
 * options, NFE 0. Its denoiser is the carrier below (any other is refused): the mixture g
 * (borrowed) with the rows' labels in den->y as usual. */
extern const dm_sampler_ops dm_sampler_exact;
void dm_sampler_exact_denoiser(dm_denoiser *den, const dm_gmm *g);

/* Sample and report in *nfe_done (may be NULL) the denoiser evaluations per sample actually made:
 * ops->nfe() for fixed-step samplers; for adaptive ones (rk45: nfe() is -1, the count is known only
 * afterwards) what their sample_counted slot reports. Callers that record an NFE use this. */
dm_status dm_sampler_sample(const dm_sampler_ops *ops, const void *opts, const dm_denoiser *den,
                            const dm_schedule *s, size_t n, dm_rng *rngs, float *x,
                            int64_t *nfe_done, char *err);

/* Shared by samplers: evaluate the denoiser on all n rows in chunks of den->max_batch, all at
 * the same time t (tbuf: scratch of den->max_batch doubles). */
dm_status dm_denoise_all(const dm_denoiser *den, size_t n, const float *x, double t, double *tbuf,
                         float *x0, float *eps, char *err);
/* The same through den->eval_var: also the learned variance fraction v (n, dim). */
dm_status dm_denoise_all_var(const dm_denoiser *den, size_t n, const float *x, double t, double *tbuf,
                             float *eps, float *v, char *err);

/* The initial noise of every sampler: x_i = prior_std * z from sample i's own stream (its first
 * d draws), so all samplers on one run start from the same points. */
void dm_sampler_init_noise(const dm_schedule *s, size_t n, size_t d, dm_rng *rngs, float *x);

#endif
