/* Consistency-model sampling (Song et al. 2023, Algorithm 1; openai/consistency_models
 * karras_diffusion.py stochastic_iterative_sampler): from x = sigma_max z,
 *   x <- f(x, tau_0);  then for k = 1..K-1:  x <- x + sqrt(tau_k^2 - eps^2) z_k,  x <- f(x, tau_k),
 * where f is the denoiser's x0_hat (a consistency model's f; any denoiser works, which makes the
 * analytic one a reference) and eps the schedule's smallest time. One evaluation per point and
 * step: NFE = K. Times: `times` if given (decreasing, in (eps, sigma_max]), else the first K
 * points of the schedule's K + 1 point grid, i.e. sigma_max and then the rho-spaced grid (for
 * K = 2 on edm with rho = 7: 80, 2.5). The reference clips tau_k into [eps, sigma_max]; here
 * times outside are a spec error. */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/consistency.h"
#include "diffusion/samplers.h"

static int64_t n_steps(const dm_cm_sampler_opts *o) { return o->times.n ? (int64_t)o->times.n : o->steps; }

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    const dm_cm_sampler_opts *o = opts;
    if (s->discrete || s->t_min <= 0)
        return dm_err(err, DM_E_INPUT, "sampler.type: cm needs a continuous schedule with a smallest time eps > 0 "
                      "(edm); '%s' is not one", s->ops->info.name);
    for (size_t k = 0; k < o->times.n; k++) {
        const double t = o->times.v[k];
        if (!(t > s->t_min && t <= s->t_max) || (k > 0 && !(t < o->times.v[k - 1])))
            return dm_err(err, DM_E_INPUT, "sampler.times: %g (entry %zu) must lie in (%g, %g] and decrease",
                          t, k, s->t_min, s->t_max);
    }
    return DM_OK;
}

static int64_t nfe(const void *opts, const dm_schedule *s) { (void)s; return n_steps(opts); }

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n, dm_rng *rngs,
                        float *x, char *err)
{
    const dm_cm_sampler_opts *o = opts;
    const size_t d = den->dim;
    const int K = (int)n_steps(o);
    dm_status st = DM_OK;
    double *tau = dm_malloc(sizeof(double) * (size_t)(K + 2));
    double *tbuf = dm_malloc(sizeof(double) * den->max_batch);
    float *x0 = dm_malloc_aligned(sizeof(float) * n * d);
    if (!tau || !tbuf || !x0) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for sampling %zu points", n);
        goto out;
    }
    if (o->times.n) {
        for (int k = 0; k < K; k++)
            tau[k] = o->times.v[k];
    } else if ((st = s->ops->grid(s, K + 1, tau, err))) {
        goto out;
    }
    dm_sampler_init_noise(s, n, d, rngs, x);
    for (int k = 0; k < K; k++) {
        if (k > 0) {
            const float sd = (float)dm_cm_multistep_noise(tau[k], s->t_min);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < d; j++)
                    x[i * d + j] += sd * (float)dm_rng_normal(&rngs[i]);
        }
        if ((st = dm_denoise_all(den, n, x, tau[k], tbuf, x0, NULL, err)))
            goto out;
        for (size_t q = 0; q < n * d; q++)
            x[q] = x0[q];
    }
out:
    dm_free(tau);
    dm_free(tbuf);
    dm_free_aligned(x0);
    return st;
}

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    if (why)
        *why = "solves no ODE: consistency sampling jumps to x0_hat (and adds fresh noise between steps)";
    return 0;
}

static const dm_param_desc cm_params[] = {
    { "steps", DM_OPT_INT, "1", 1, 10000, NULL, 0, offsetof(dm_cm_sampler_opts, steps),
      "evaluations: 1 is one-step generation; more alternate adding noise and denoising" },
    { "times", DM_OPT_REALS, "[]", 1e-9, 1e9, NULL, 0, offsetof(dm_cm_sampler_opts, times),
      "decreasing times tau_0 > tau_1 > ... (overrides steps); default: sigma_max and the rho grid" },
    DM_OPT_END,
};

const dm_sampler_ops dm_sampler_cm = {
    .info = { "cm", "consistency-model one-step / multistep sampling (Song et al. 2023, Algorithm 1)", cm_params,
              sizeof(dm_cm_sampler_opts) },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
};
