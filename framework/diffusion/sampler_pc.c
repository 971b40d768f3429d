/* Predictor–corrector sampling (Song et al. 2021, Algorithms 2-3; score_sde_pytorch sampling.py
 * get_pc_sampler, ReverseDiffusionPredictor, EulerMaruyamaPredictor, LangevinCorrector).
 *
 * At each grid time t_k (sigma > 0), as score_sde: first `corrector_steps` Langevin steps at t_k,
 * then one predictor step to t_{k+1}. With a = alpha(t_k) / alpha(t_{k+1}) and
 * G^2 = sigma_k^2 - a^2 sigma_{k+1}^2 (the forward kernel x_k = a x_{k+1} + G z of this grid step):
 *  - reverse diffusion (sde.reverse().discretize): x <- (2 - a) x + G^2 s_hat + G z. score_sde
 *    writes the VP step as f = sqrt(1 - beta_i) x - x, G = sqrt(beta_i) and the VE step as f = 0,
 *    G^2 = sigma_i^2 - sigma_{i-1}^2; ours are the same with beta_i = 1 - a^2 taken from the grid
 *    (score_sde: beta_i = beta(t_i)/N, equal to first order in 1/N). For sub-VP score_sde falls
 *    back to an Euler–Maruyama discretization; the kernel above is exact for it too.
 *  - Euler–Maruyama: as the `em` sampler.
 * Langevin corrector: x <- x + e s_hat + sqrt(2 e) z, e = 2 alpha_i (snr |z| / |s_hat|)^2, where
 * |.| are per-sample norms averaged over the batch (grad_norm / noise_norm ...mean()), and
 * alpha_i = 1 - beta_i = a^2 (score_sde: sde.alphas for VP, 1 for VE; a^2 = 1 for VE and EDM
 * since alpha = 1). The averages couple the samples; they are taken over all n samples in a fixed
 * order, never per chunk, so the result does not depend on max_batch or the thread count (it does
 * depend on n).
 *
 * The end: score_sde returns the last predictor's noise-free mean; here (see ode.h) the predictor
 * at the last time with sigma > 0 is the denoising step x0_hat(x, t) (on VP / VE with `denoise`,
 * at t_end, after its corrector; on EDM in place of the step onto sigma = 0).
 * NFE = (steps + [denoise on a grid ending at t_end > 0]) * (1 + corrector_steps), as score_sde's
 * N * (n_steps + 1). Draws per row and grid time: corrector noise, then predictor noise. */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/ode.h"
#include "diffusion/samplers.h"

static const char *const predictors[] = { "reverse_diffusion", "euler_maruyama", NULL };

static int pts(const dm_pc_sampler_opts *o, int clean)
{
    return (int)o->steps + (o->denoise && !clean);
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts;
    return dm_ode_need_continuous(s, "pc", err);
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    const dm_pc_sampler_opts *o = opts;
    const int clean = dm_ode_grid_clean(s, (int)o->steps);
    if (clean < 0)
        return -1;
    return (int64_t)pts(o, clean) * (1 + o->corrector_steps);
}

/* Langevin corrector steps at t; z, zn, gn: scratch (n * d), (n), (n). */
static dm_status corrector(dm_ode_work *w, const dm_pc_sampler_opts *o, const dm_denoiser *den,
                           double t, double alpha_i, double sigma, dm_rng *rngs, double *z,
                           double *zn, double *gn, char *err)
{
    const size_t n = w->n, d = w->d;
    for (int64_t c = 0; c < o->corrector_steps; c++) {
        dm_status st = dm_ode_eval(w, den, t, 0, 1, err);
        if (st)
            return st;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double sz = 0.0, sg = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double e = dm_rng_normal(&rngs[i]), g = -w->eps[i * d + j] / sigma;
                z[i * d + j] = e;
                sz += e * e;
                sg += g * g;
            }
            zn[i] = sqrt(sz);
            gn[i] = sqrt(sg);
        }
        /* Batch means in a fixed order, over all n samples. */
        double mz = 0.0, mg = 0.0;
        for (size_t i = 0; i < n; i++) {
            mz += zn[i];
            mg += gn[i];
        }
        mz /= (double)n;
        mg /= (double)n;
        if (!(mg > 0.0))
            continue; /* a zero score: no step (score_sde would divide by zero) */
        const double r = o->snr * mz / mg, e = 2.0 * alpha_i * r * r, sd = sqrt(2.0 * e);
        const double c_s = -e / sigma; /* e * s_hat = -e eps_hat / sigma */
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < n * d; q++)
            w->x[q] += c_s * w->eps[q] + sd * z[q];
    }
    return DM_OK;
}

/* score_sde's ReverseDiffusionPredictor with the grid's kernel (see the top of the file). */
static void reverse_diffusion_step(dm_ode_work *w, const dm_schedule *s, dm_rng *rngs, double t,
                                   double tn)
{
    const double sg = s->ops->sigma(s, t), sgn = s->ops->sigma(s, tn);
    const double a = s->ops->alpha(s, t) / s->ops->alpha(s, tn);
    const double G2 = fmax(sg * sg - a * a * sgn * sgn, 0.0), G = sqrt(G2);
    const double c_x = 2.0 - a, c_eps = -G2 / sg;
    const size_t d = w->d;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < w->n; i++) {
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            w->x[q] = c_x * w->x[q] + c_eps * w->eps[q] + G * dm_rng_normal(&rngs[i]);
        }
    }
}

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n,
                        dm_rng *rngs, float *x, char *err)
{
    const dm_pc_sampler_opts *o = opts;
    const size_t d = den->dim;
    dm_ode_work w;
    dm_status st = dm_ode_work_init(&w, den, s, n, (int)o->steps, err);
    if (st)
        return st;
    double *z = dm_malloc_aligned(sizeof(double) * n * d);
    double *zn = dm_malloc(sizeof(double) * n), *gn = dm_malloc(sizeof(double) * n);
    if (!z || !zn || !gn) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    dm_ode_start(&w, s, rngs, x);
    const int end = pts(o, w.clean); /* grid times that get corrector + predictor */
    for (int k = 0; k < end; k++) {
        const double t = w.ts[k];
        const int final = k == w.last; /* the predictor is the denoising step */
        const double tn = final ? 0.0 : w.ts[k + 1];
        /* alpha_i = a^2; at the denoising step the next point is clean data, alpha = 1. */
        const double a = s->ops->alpha(s, t) / (final ? 1.0 : s->ops->alpha(s, tn));
        if ((st = corrector(&w, o, den, t, a * a, s->ops->sigma(s, t), rngs, z, zn, gn, err)))
            goto out;
        if (final) {
            if ((st = dm_ode_denoise(&w, den, t, err)))
                goto out;
            continue;
        }
        if ((st = dm_ode_eval(&w, den, t, 0, 1, err)))
            goto out;
        if (o->predictor == DM_PC_EULER_MARUYAMA)
            dm_ode_em_step(&w, s, rngs, t, tn);
        else
            reverse_diffusion_step(&w, s, rngs, t, tn);
    }
    dm_ode_finish(&w, x);
out:
    dm_free_aligned(z);
    dm_free(zn);
    dm_free(gn);
    dm_ode_work_free(&w);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    if (why)
        *why = "is stochastic: its predictor and Langevin corrector add fresh noise at every step";
    return 0;
}

static const dm_param_desc pc_params[] = {
    { "steps", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(dm_pc_sampler_opts, steps),
      "number of predictor steps on the schedule's grid (score_sde: N = 1000)" },
    { "predictor", DM_OPT_CHOICE, "reverse_diffusion", 0, 0, predictors, 0,
      offsetof(dm_pc_sampler_opts, predictor),
      "predictor: reverse_diffusion (the discretized reverse SDE) or euler_maruyama" },
    { "snr", DM_OPT_REAL, "0.16", 0, 100, NULL, 0, offsetof(dm_pc_sampler_opts, snr),
      "Langevin corrector signal-to-noise ratio (score_sde's VE default 0.16)" },
    { "corrector_steps", DM_OPT_INT, "1", 0, 100, NULL, 0, offsetof(dm_pc_sampler_opts, corrector_steps),
      "Langevin corrector steps before each predictor step; 0 = predictor only" },
    { "denoise", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(dm_pc_sampler_opts, denoise),
      "on a grid ending at t_end > 0, finish with x0_hat(x, t_end) (after its corrector)" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_pc = {
    .info = { "pc", "predictor-corrector sampling with a Langevin corrector (Song et al. 2021)",
              pc_params, sizeof(dm_pc_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
};
