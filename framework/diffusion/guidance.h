/* guidance.h — guided sampling as a denoiser that wraps a denoiser, so every sampler can be guided.
 *
 * The spec's `guidance` section picks one of:
 *   none        the model as it is (class-conditional if the model is: model.conditional)
 *   cfg         classifier-free guidance (Ho & Salimans 2022) with scale w:
 *                 eps_hat = (1 + w) eps_hat(x, y) - w eps_hat(x, ∅)
 *               w = 0 is plain conditional sampling, w = -1 unconditional. Code that writes the
 *               scale as s in eps(x, ∅) + s (eps(x, y) - eps(x, ∅)) (diffusers' guidance_scale,
 *               Dhariwal & Nichol's convention for CFG) has s = 1 + w. Since
 *               x0_hat = (x - sigma eps_hat)/alpha is affine in eps_hat with coefficients that do
 *               not depend on the label, the same combination holds for x0_hat.
 *   classifier  classifier guidance (Dhariwal & Nichol 2021) with scale gamma on the model's
 *               unconditional prediction:
 *                 score(x, y) = score(x) + gamma grad log p_phi(y | x_t),
 *                 eps_hat <- eps_hat - gamma sigma grad log p_phi(y | x_t),
 *                 x0_hat  <- x0_hat + gamma (sigma^2 / alpha) grad log p_phi(y | x_t).
 *               gamma acts as an inverse temperature on p(y | x): gamma = 1 with the exact
 *               classifier samples p(x | y) exactly (Bayes' rule). With exact models,
 *               cfg at w equals classifier guidance at gamma = 1 + w: both are
 *               score(x) + (1 + w)(score(x | y) - score(x)).
 * The guided denoiser's NFE per step is that of the sampler; each step costs two network
 * evaluations for cfg, and one network plus one classifier gradient for classifier guidance. */
#ifndef DM_DIFFUSION_GUIDANCE_H
#define DM_DIFFUSION_GUIDANCE_H

#include <stdint.h>

#include "core/options.h"
#include "diffusion/classifier.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

enum { DM_GUIDE_NONE = 0, DM_GUIDE_CFG = 1, DM_GUIDE_CLASSIFIER = 2 };

typedef struct dm_guidance_ops {
    dm_plugin info;
    int kind;   /* DM_GUIDE_* */
} dm_guidance_ops;

typedef struct dm_cfg_guidance_opts {
    double scale;   /* w */
} dm_cfg_guidance_opts;

typedef struct dm_classifier_guidance_opts {
    double scale;                         /* gamma */
    char classifier[DM_OPT_STR_MAX];      /* a run id (or prefix), a spec file, or "analytic" */
    int64_t classifier_seed;              /* with a spec file: the seed of the classifier run */
} dm_classifier_guidance_opts;

extern const dm_guidance_ops dm_guidance_none;
extern const dm_guidance_ops dm_guidance_cfg;
extern const dm_guidance_ops dm_guidance_classifier;
extern const dm_plugin *const dm_guidance_registry[];

/* The scale of a guidance section (0 for none). */
double dm_guidance_scale(const dm_guidance_ops *g, const void *opts);

typedef struct dm_guided_denoiser {
    const dm_denoiser *inner;
    const dm_classifier *clf;   /* classifier guidance only */
    const dm_schedule *sched;
    int kind;
    double scale;
    float *x0u, *epsu;          /* (max_batch, dim) the unconditional prediction (cfg) */
    float *grad;                /* (max_batch, dim) grad log p(y | x_t) (classifier) */
    int32_t *ynull;             /* (max_batch) all DM_NULL_CLASS */
} dm_guided_denoiser;

/* *den guides inner (borrowed, as clf and sched) by kind and scale; den->y starts NULL (the
 * caller sets the samples' labels). For DM_GUIDE_CLASSIFIER clf is needed, with the denoiser's
 * dimension and max_batch at least inner's. g must stay at its address while den is used. */
dm_status dm_guided_denoiser_init(dm_guided_denoiser *g, dm_denoiser *den, const dm_denoiser *inner, int kind,
                                  double scale, const dm_classifier *clf, const dm_schedule *sched, char *err);
void dm_guided_denoiser_free(dm_guided_denoiser *g);

#endif
