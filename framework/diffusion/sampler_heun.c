/* EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2; NVlabs/edm generate.py
 * edm_sampler), on the schedule's grid t_0 > ... > t_N:
 *   gamma = min(S_churn / N, sqrt(2) - 1) if S_min <= t_i <= S_max, else 0
 *   t_hat = t_i + gamma t_i,  x_hat = x + sqrt(t_hat^2 - t_i^2) S_noise z
 *   d = (x_hat - D(x_hat; t_hat)) / t_hat,  x' = x_hat + (t_{i+1} - t_hat) d
 *   if t_{i+1} != 0: d' = (x' - D(x'; t_{i+1})) / t_{i+1},  x' = x_hat + (t_{i+1} - t_hat)(d + d')/2.
 * edm_sampler skips the correction on its last step (i = N-1), which on its grid is the step onto
 * t_N = 0; we skip it exactly where sigma(t_{i+1}) = 0. NFE = 2N - 1 on EDM, 2N on a grid ending
 * at t_end > 0 (+1 with denoise).
 *
 * Other schedules: the same algorithm on the PF-ODE in the schedule's own time t,
 * d = f(t) x + g^2(t)/(2 sigma(t)) eps_hat (= (x - D)/t on EDM), and the churn as EDM's
 * ablation_sampler does it with scaling s(t) = alpha(t) and noise level sigma_e(t) = sigma/alpha:
 * gamma is decided by S_min <= sigma_e(t_i) <= S_max, t_hat solves
 * sigma_e(t_hat) = sigma_e(t_i)(1 + gamma) (bisection; exactly t_i + gamma t_i where
 * sigma_e(t) = t), and x_hat = alpha(t_hat)/alpha(t_i) x + alpha(t_hat)
 * sqrt(sigma_e(t_hat)^2 - sigma_e(t_i)^2) S_noise z. edm_sampler draws z every step and
 * multiplies by 0 when gamma = 0; we draw only when gamma > 0 (each row from its own stream). */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    const dm_heun_sampler_opts *o = opts;
    if (o->s_min > o->s_max)
        return dm_err(err, DM_E_INPUT, "sampler.s_min: %g exceeds s_max = %g", o->s_min, o->s_max);
    return dm_ode_need_continuous(s, "heun", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_heun_sampler_opts *o = opts;
    const int clean = dm_ode_grid_clean(s, (int)o->steps);
    if (clean < 0)
        return -1;
    return 2 * o->steps - clean + (o->denoise && !clean);
}

static double sigma_e(const dm_schedule *s, double t) { return s->ops->sigma(s, t) / s->ops->alpha(s, t); }

/* The time t_hat > t with sigma_e(t_hat) = sigma_e(t) (1 + gamma). */
static double raise_noise(const dm_schedule *s, double t, double gamma)
{
    const double se = sigma_e(s, t), target = se + gamma * se, guess = t + gamma * t;
    if (sigma_e(s, guess) == target)
        return guess; /* EDM: sigma_e(t) = t, edm_sampler's t_cur + gamma * t_cur */
    double lo = t, hi = fmax(guess, s->t_max);
    for (int k = 0; k < 200 && sigma_e(s, hi) < target; k++)
        hi *= 2.0;
    for (int k = 0; k < 200 && hi - lo > 0x1p-52 * hi; k++) {
        const double mid = 0.5 * (lo + hi);
        if (sigma_e(s, mid) < target)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* dout = f(t) x + g^2/(2 sigma) eps_hat(x, t), the PF-ODE slope at the state w->x. */
static dm_status drift_eval(dm_ode_work *w, const dm_denoiser *den, const dm_schedule *s, double t,
                            double *dout, char *err)
{
    dm_status st = dm_ode_eval(w, den, t, 0, 1, err);
    if (st)
        return st;
    const double f = s->ops->f(s, t), c = dm_ode_eps_coef(s, t);
    const size_t nd = w->n * w->d;
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < nd; q++)
        dout[q] = f * w->x[q] + c * w->eps[q];
    return DM_OK;
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_heun_sampler_opts *o = opts;
    const int N = (int)o->steps;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, N, err);
    if (st)
        return st;
    const size_t d = w.d, nd = n * d;
    /* x_hat and the two slopes; w.x holds x' during the correction. */
    double *xh = NULL, *d1 = NULL, *d2 = NULL;
    xh = dm_malloc_aligned(sizeof(double) * nd);
    d1 = dm_malloc_aligned(sizeof(double) * nd);
    d2 = dm_malloc_aligned(sizeof(double) * nd);
    if (!xh || !d1 || !d2) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    dm_ode_start(&w, s, rngs, x);
    for (int i = 0; i < N; i++) {
        const double t = w.ts[i], tn = w.ts[i + 1], se = sigma_e(s, t);
        const double gamma = o->s_churn > 0.0 && o->s_min <= se && se <= o->s_max
                                 ? fmin(o->s_churn / N, sqrt(2.0) - 1.0)
                                 : 0.0;
        double th = t;
        if (gamma > 0.0) {
            th = raise_noise(s, t, gamma);
            const double seh = sigma_e(s, th), ah = s->ops->alpha(s, th);
            const double c_x = ah / s->ops->alpha(s, t);
            const double sd = ah * sqrt(fmax(seh * seh - se * se, 0.0)) * o->s_noise;
#pragma omp parallel for schedule(static)
            for (size_t r = 0; r < n; r++)
                for (size_t j = 0; j < d; j++)
                    w.x[r * d + j] = c_x * w.x[r * d + j] + sd * dm_rng_normal(&rngs[r]);
        }
        const double h = tn - th;
        /* Euler step from (x_hat, t_hat). */
        if ((st = drift_eval(&w, den, s, th, d1, err)))
            goto out;
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < nd; q++) {
            xh[q] = w.x[q];
            w.x[q] = xh[q] + h * d1[q];
        }
        if (s->ops->sigma(s, tn) == 0.0)
            continue;
        /* 2nd-order correction. */
        if ((st = drift_eval(&w, den, s, tn, d2, err)))
            goto out;
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < nd; q++)
            w.x[q] = xh[q] + h * (0.5 * d1[q] + 0.5 * d2[q]);
    }
    if (o->denoise && !w.clean && (st = dm_ode_denoise(&w, den, w.ts[N], err)))
        goto out;
    dm_ode_finish(&w, x);
out:
    dm_free_aligned(xh);
    dm_free_aligned(d1);
    dm_free_aligned(d2);
    dm_ode_work_free(&w);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    const dm_heun_sampler_opts *o = opts;
    if (o->s_churn > 0.0) {
        if (why)
            *why = "leaves the PF-ODE with s_churn > 0: its churn raises the noise level with fresh noise";
        return 0;
    }
    return 1;
}

static dm_status span(const void *opts, const dm_schedule *s, dm_sampler_span *sp, char *err)
{
    const dm_heun_sampler_opts *o = opts;
    return dm_sampler_grid_span(s, (int)o->steps, o->denoise, sp, err);
}

static const dm_param_desc heun_params[] = {
    { "steps", DM_OPT_INT, "18", 1, 100000, NULL, 0, offsetof(dm_heun_sampler_opts, steps),
      "number of Heun steps N on the schedule's grid (EDM: 18, NFE 35)" },
    { "s_churn", DM_OPT_REAL, "0", 0, 1e6, NULL, 0, offsetof(dm_heun_sampler_opts, s_churn),
      "stochasticity strength S_churn; 0 = the deterministic sampler" },
    { "s_min", DM_OPT_REAL, "0", 0, 1e30, NULL, 0, offsetof(dm_heun_sampler_opts, s_min),
      "churn only where sigma/alpha >= s_min" },
    { "s_max", DM_OPT_REAL, "1e30", 0, 1e30, NULL, 0, offsetof(dm_heun_sampler_opts, s_max),
      "churn only where sigma/alpha <= s_max (EDM: inf)" },
    { "s_noise", DM_OPT_REAL, "1", 0, 10, NULL, 0, offsetof(dm_heun_sampler_opts, s_noise),
      "noise inflation S_noise of the churn" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_heun_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (one more evaluation)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_heun = {
    .info = { "heun", "EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2)",
              heun_params, sizeof(dm_heun_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
    .span = span,
};
