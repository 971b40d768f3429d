/* sampler_exact.c — the `exact` pseudo-sampler: direct draws from the data's Gaussian mixture, the
 * floor row of every metric (what perfect samples score, with its spread across seeds).
 *
 * A sampler sees a denoiser and a schedule, and neither carries the data distribution. The mixture
 * travels in a carrier denoiser instead (dm_sampler_exact_denoiser): it evaluates nothing, and the
 * sample slot refuses any other denoiser, so the plug-in runs through dm_sampler_sample like every
 * sampler and the trainer (train/trainer_sample.c), which holds the mixture, hands it over on
 * mixture data. The carrier's y are the rows' labels, as for every sampler.
 *
 * Stream discipline, as the samplers': sample i draws from its own stream rngs[i] only — one uniform
 * (the component, by inverse CDF over the eligible components' weights summed in index order, as
 * the gmm data plug-in picks), then dim normals: x = mu_k + s_k z, rounded to float as the data.
 * A row with a label draws from the components of its class (weights renormalized: p(x0 | y)).
 * So results do not depend on batching or the thread count. NFE 0. */
#include <math.h>
#include <stddef.h>

#include "core/alloc.h"
#include "diffusion/samplers.h"

static dm_status carrier_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                              float *eps, char *err)
{
    (void)ctx, (void)n, (void)x, (void)t, (void)y, (void)x0, (void)eps;
    return dm_err(err, DM_E_INTERNAL, "the exact sampler's mixture is not a denoiser: only sampler exact reads it");
}

void dm_sampler_exact_denoiser(dm_denoiser *den, const dm_gmm *g)
{
    *den = (dm_denoiser){ .ctx = (void *)g, .dim = g->dim, .max_batch = (size_t)-1, .eval = carrier_eval };
}

static dm_status check(const void *opts, const dm_schedule *s, char *err)
{
    (void)opts, (void)s, (void)err;
    return DM_OK;
}

static int64_t nfe(const void *opts, const dm_schedule *s)
{
    (void)opts, (void)s;
    return 0;
}

static int32_t comp_class(const dm_gmm *g, size_t k) { return g->cls ? g->cls[k] : (int32_t)k; }

static dm_status sample(const void *opts, const dm_denoiser *den, const dm_schedule *s, size_t n, dm_rng *rngs,
                        float *x, char *err)
{
    (void)opts, (void)s;
    if (!den || den->eval != carrier_eval)
        return dm_err(err, DM_E_INPUT, "sampler.type: exact draws from the data's Gaussian mixture, not through a "
                      "model; it needs mixture data (gmm, eight_gaussians), which the trainer then hands over");
    const dm_gmm *g = den->ctx;
    const size_t K = g->k, d = g->dim, C = g->cls ? g->n_classes : K;
    /* The weight of each class (the labels' draws renormalize by it) and of the whole mixture. */
    double *wc = dm_calloc(C + 1, sizeof *wc);
    if (!wc)
        return dm_err(err, DM_E_NOMEM, "out of memory for the exact sampler's %zu classes", C);
    for (size_t k = 0; k < K; k++) {
        wc[comp_class(g, k)] += g->w[k];
        wc[C] += g->w[k];
    }
    dm_status st = DM_OK;
    for (size_t i = 0; den->y && i < n; i++) {
        const int32_t y = den->y[i];
        if (y != DM_NULL_CLASS && (y < 0 || (size_t)y >= C || !(wc[y] > 0.0))) {
            st = dm_err(err, DM_E_INPUT, "sampler exact: sample %zu asks for class %d, which the mixture's %zu "
                        "classes do not hold with positive weight", i, (int)y, C);
            goto out;
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const int32_t y = den->y ? den->y[i] : DM_NULL_CLASS;
        const double target = dm_rng_uniform(&rngs[i]) * (y == DM_NULL_CLASS ? wc[C] : wc[y]);
        double c = 0.0;
        size_t pick = K, last = 0;
        for (size_t k = 0; k < K && pick == K; k++) {
            if (y != DM_NULL_CLASS && comp_class(g, k) != y)
                continue;
            if (g->w[k] > 0.0)
                last = k;
            c += g->w[k];
            if (target < c)
                pick = k;
        }
        if (pick == K)   /* rounding left the target beyond the last partial sum */
            pick = last;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(g->mu[pick * d + j] + g->s[pick] * dm_rng_normal(&rngs[i]));
    }
out:
    dm_free(wc);
    return st;
}

static const dm_param_desc exact_params[] = {
    DM_OPT_END,
};

static int deterministic(const void *opts, const char **why)
{
    (void)opts;
    if (why)
        *why = "draws from the data distribution itself and follows no ODE";
    return 0;
}

const dm_sampler_ops dm_sampler_exact = {
    .info = { "exact",
              "draws from the data (NFE 0): the Gaussian mixture of mixture data, else the run's training "
              "items without replacement: the floor of every metric", exact_params, 0 },
    .check = check,
    .nfe = nfe,
    .sample = sample,
    .deterministic = deterministic,
};
