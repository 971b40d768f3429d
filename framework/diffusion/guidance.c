#include "diffusion/guidance.h"

#include <stddef.h>

#include "core/alloc.h"

static const dm_param_desc cfg_params[] = {
    { "scale", DM_OPT_REAL, "1", -1, 1e6, NULL, 0, offsetof(dm_cfg_guidance_opts, scale),
      "w in (1 + w) eps(x, y) - w eps(x, null): 0 = conditional, -1 = unconditional (scale s = 1 + w elsewhere)" },
    DM_OPT_END,
};

static const dm_param_desc classifier_params[] = {
    { "scale", DM_OPT_REAL, "1", 0, 1e6, NULL, 0, offsetof(dm_classifier_guidance_opts, scale),
      "gamma: score(x) + gamma grad log p(y | x_t); 1 with an exact classifier samples p(x | y)" },
    { "classifier", DM_OPT_STR, "", 0, 0, NULL, 0, offsetof(dm_classifier_guidance_opts, classifier),
      "a finished classifier run (diffusion.loss xent): its id or a unique prefix, a spec file (with "
      "classifier_seed), or 'analytic' (the mixture's exact p_t(y | x))" },
    { "classifier_seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, 0,
      offsetof(dm_classifier_guidance_opts, classifier_seed), "with a spec file as classifier: the seed of its run" },
    DM_OPT_END,
};

const dm_guidance_ops dm_guidance_none = {
    .info = { "none", "no guidance: the model's own prediction (of each sample's class if the model is conditional)",
              NULL, 0 },
    .kind = DM_GUIDE_NONE,
};
const dm_guidance_ops dm_guidance_cfg = {
    .info = { "cfg", "classifier-free guidance (Ho & Salimans 2022) of a conditional model trained with label dropout",
              cfg_params, sizeof(dm_cfg_guidance_opts) },
    .kind = DM_GUIDE_CFG,
};
const dm_guidance_ops dm_guidance_classifier = {
    .info = { "classifier", "classifier guidance (Dhariwal & Nichol 2021): a noisy classifier's gradient added to the score",
              classifier_params, sizeof(dm_classifier_guidance_opts) },
    .kind = DM_GUIDE_CLASSIFIER,
};

const dm_plugin *const dm_guidance_registry[] = {
    &dm_guidance_none.info, &dm_guidance_cfg.info, &dm_guidance_classifier.info, NULL,
};

double dm_guidance_scale(const dm_guidance_ops *g, const void *opts)
{
    switch (g->kind) {
    case DM_GUIDE_CFG:
        return ((const dm_cfg_guidance_opts *)opts)->scale;
    case DM_GUIDE_CLASSIFIER:
        return ((const dm_classifier_guidance_opts *)opts)->scale;
    default:
        return 0.0;
    }
}

/* cfg: both predictions of the inner denoiser, combined in double:
 * out = (1 + w) cond - w uncond, for x0_hat and eps_hat alike. */
static dm_status eval_cfg(dm_guided_denoiser *g, size_t n, const float *x, const double *t, const int32_t *y,
                          float *x0, float *eps, char *err)
{
    const size_t d = g->inner->dim;
    dm_status st = g->inner->eval(g->inner->ctx, n, x, t, y, x0, eps, err);
    if (!st)
        st = g->inner->eval(g->inner->ctx, n, x, t, g->ynull, x0 ? g->x0u : NULL, eps ? g->epsu : NULL, err);
    if (st)
        return st;
    const double w = g->scale;
    for (size_t q = 0; q < n * d; q++) {
        if (x0)
            x0[q] = (float)((1.0 + w) * x0[q] - w * g->x0u[q]);
        if (eps)
            eps[q] = (float)((1.0 + w) * eps[q] - w * g->epsu[q]);
    }
    return DM_OK;
}

/* classifier: the unconditional prediction moved along gamma grad log p(y | x_t). The rows of
 * one call may have different times (the PF-ODE likelihood's do not come here, but a sampler's
 * batch may), so the schedule is read per row. */
static dm_status eval_classifier(dm_guided_denoiser *g, size_t n, const float *x, const double *t,
                                 const int32_t *y, float *x0, float *eps, char *err)
{
    const size_t d = g->inner->dim;
    const dm_schedule *s = g->sched;
    dm_status st = g->inner->eval(g->inner->ctx, n, x, t, g->ynull, x0, eps, err);
    if (st)
        return st;
    if (!y)   /* no class asked for: nothing to guide towards */
        return DM_OK;
    if ((st = g->clf->eval(g->clf->ctx, n, x, t, y, NULL, g->grad, err)))
        return st;
    for (size_t i = 0; i < n; i++) {
        const double a = s->ops->alpha(s, t[i]), sg = s->ops->sigma(s, t[i]);
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            const double gq = g->scale * (double)g->grad[q];
            if (eps)
                eps[q] = (float)(eps[q] - sg * gq);
            if (x0)
                x0[q] = (float)(x0[q] + sg * sg / a * gq);
        }
    }
    return DM_OK;
}

static dm_status eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                      float *eps, char *err)
{
    dm_guided_denoiser *g = ctx;
    switch (g->kind) {
    case DM_GUIDE_CFG:
        return eval_cfg(g, n, x, t, y, x0, eps, err);
    case DM_GUIDE_CLASSIFIER:
        return eval_classifier(g, n, x, t, y, x0, eps, err);
    default:
        return g->inner->eval(g->inner->ctx, n, x, t, y, x0, eps, err);
    }
}

dm_status dm_guided_denoiser_init(dm_guided_denoiser *g, dm_denoiser *den, const dm_denoiser *inner, int kind,
                                  double scale, const dm_classifier *clf, const dm_schedule *sched, char *err)
{
    const size_t nb = inner->max_batch, d = inner->dim;
    *g = (dm_guided_denoiser){ .inner = inner, .clf = clf, .sched = sched, .kind = kind, .scale = scale };
    if (kind == DM_GUIDE_CLASSIFIER && (!clf || clf->dim != d || clf->max_batch < nb))
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier %s", !clf ? "is missing"
                      : clf->dim != d ? "sees data of another dimension than the model"
                                      : "takes smaller batches than the model");
    g->x0u = dm_malloc_aligned(sizeof(float) * nb * d);
    g->epsu = dm_malloc_aligned(sizeof(float) * nb * d);
    g->grad = dm_malloc_aligned(sizeof(float) * nb * d);
    g->ynull = dm_malloc(sizeof(int32_t) * nb);
    if (!g->x0u || !g->epsu || !g->grad || !g->ynull) {
        dm_guided_denoiser_free(g);
        return dm_err(err, DM_E_NOMEM, "out of memory for a guided denoiser of batch %zu", nb);
    }
    for (size_t i = 0; i < nb; i++)
        g->ynull[i] = DM_NULL_CLASS;
    /* The likelihood slots stay those of the model's unconditional p(x); eval_var is left out:
     * a learned variance is not guided. */
    *den = (dm_denoiser){ .ctx = g, .dim = d, .max_batch = nb, .eval = eval };
    return DM_OK;
}

void dm_guided_denoiser_free(dm_guided_denoiser *g)
{
    dm_free_aligned(g->x0u);
    dm_free_aligned(g->epsu);
    dm_free_aligned(g->grad);
    dm_free(g->ynull);
    g->x0u = g->epsu = g->grad = NULL;
    g->ynull = NULL;
}
