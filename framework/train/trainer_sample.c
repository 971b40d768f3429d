/* trainer_sample.c — the trained (or analytic) model used: as a denoiser, sampled with a sampler
 * and guidance, and its likelihood (PF-ODE NLL, the DDPM bound). */
#include "train/trainer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "diffusion/samplers.h"
#include "eval/nll.h"
#include "eval/vlb.h"

void dm_trainer_phase_begin(dm_trainer *tr, int64_t total, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    dm_phase_begin(&tr->phase, (dm_progress_mode)tr->ropt->progress, stderr, tr->run_id, total,
                   "network evaluations", "%s", what);
}

void dm_trainer_phase_end(dm_trainer *tr, dm_status st) { dm_phase_close(&tr->phase, st == DM_OK); }

/* The model denoiser's callbacks: the model's, each call's n items added to the open phase. */
static dm_status count_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                            float *eps, char *err)
{
    dm_model_denoiser *md = ctx;
    dm_phase_add(md->phase, (int64_t)n);
    return md->inner.eval(md->inner.ctx, n, x, t, y, x0, eps, err);
}

static dm_status count_div(void *ctx, size_t n, const float *x, const double *t, float *x0, double *div, char *err)
{
    dm_model_denoiser *md = ctx;
    dm_phase_add(md->phase, (int64_t)n);
    return md->inner.eval_div(md->inner.ctx, n, x, t, x0, div, err);
}

static dm_status count_hutch(void *ctx, size_t n, const float *x, const double *t, const float *z, float *x0,
                             double *zjz, char *err)
{
    dm_model_denoiser *md = ctx;
    dm_phase_add(md->phase, (int64_t)n);
    return md->inner.eval_hutch(md->inner.ctx, n, x, t, z, x0, zjz, err);
}

static dm_status count_var(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                           float *eps, float *v, char *err)
{
    dm_model_denoiser *md = ctx;
    dm_phase_add(md->phase, (int64_t)n);
    return md->inner.eval_var(md->inner.ctx, n, x, t, y, x0, eps, v, err);
}

dm_status dm_model_denoiser_init(dm_trainer *tr, size_t batch, int use_ema, dm_model_denoiser *md,
                                 dm_denoiser *den, char *err)
{
    md->net = !tr->analytic;
    if (!md->net) {
        dm_gmm_denoiser_init(&md->gd, &md->inner, &tr->gmm, &tr->sched, batch);
    } else {
        dm_status st = dm_net_denoiser_init(&md->nd, &md->inner, &tr->net, use_ema ? tr->ema : tr->params,
                                            &tr->sched, tr->param, tr->param_opts, tr->sigma_data, batch, err);
        if (st)
            return st;
    }
    md->phase = &tr->phase;
    *den = md->inner;
    den->ctx = md;
    den->eval = count_eval;
    den->eval_div = md->inner.eval_div ? count_div : NULL;
    den->eval_hutch = md->inner.eval_hutch ? count_hutch : NULL;
    den->eval_var = md->inner.eval_var ? count_var : NULL;
    return DM_OK;
}

void dm_model_denoiser_free(dm_model_denoiser *md)
{
    if (md->net)
        dm_net_denoiser_free(&md->nd);
    md->net = 0;
}

static dm_status model_denoiser_init(dm_trainer *tr, size_t batch, dm_model_denoiser *md, dm_denoiser *den,
                                     char *err)
{
    return dm_model_denoiser_init(tr, batch, tr->eopt->use_ema, md, den, err);
}

static void model_denoiser_free(dm_model_denoiser *md) { dm_model_denoiser_free(md); }

/* Data that are not a mixture: n of the run's training items, drawn without replacement (a
 * partial Fisher-Yates shuffle from stream "eval.exact" of the run seed; a row with a label from
 * the items of its class). Real data disjoint from the reference set (the test split of data read
 * from files): the floor of every metric. */
static dm_status exact_from_train(dm_trainer *tr, const int32_t *labels, float *x, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples, nd = (size_t)tr->topt->n_data, d = tr->dim;
    const size_t C = labels ? tr->n_classes : 1;
    size_t *idx = dm_malloc(sizeof(size_t) * nd), *start = dm_calloc(C + 1, sizeof(size_t));
    size_t *taken = dm_calloc(C, sizeof(size_t));
    dm_rng rng = { 0 };
    dm_status st = DM_OK;
    if (!idx || !start || !taken) {
        st = dm_err(err, DM_E_NOMEM, "sampler exact: out of memory for %zu training items", nd);
        goto out;
    }
    /* The items grouped by class (one group without labels), in index order. */
    for (size_t k = 0; k < nd; k++)
        start[(labels ? (size_t)tr->train_y[k] : 0) + 1]++;
    for (size_t c = 0; c < C; c++)
        start[c + 1] += start[c];
    for (size_t k = 0; k < nd; k++)
        idx[start[labels ? (size_t)tr->train_y[k] : 0] + taken[labels ? (size_t)tr->train_y[k] : 0]++] = k;
    memset(taken, 0, sizeof(size_t) * C);
    if ((st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->root->seed, "eval.exact"), err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (labels && (labels[i] < 0 || (size_t)labels[i] >= C)) {
            st = dm_err(err, DM_E_INTERNAL, "sampler exact: row %zu asks for class %d of %zu", i, (int)labels[i], C);
            goto out;
        }
        const size_t c = labels ? (size_t)labels[i] : 0, m = start[c + 1] - start[c];
        if (taken[c] == m) {
            st = labels ? dm_err(err, DM_E_INPUT, "sampler exact: %zu samples need more than the %zu training items of "
                                 "class %zu (train.n_data %zu); draw fewer (eval.n_samples)", n, m, c, nd)
                        : dm_err(err, DM_E_INPUT, "sampler exact: %zu samples are more than the %zu training items "
                                 "(train.n_data); draw fewer (eval.n_samples)", n, nd);
            goto out;
        }
        size_t *g = idx + start[c];
        const size_t j = taken[c] + (size_t)dm_rng_int(&rng, m - taken[c]), pick = g[j];
        g[j] = g[taken[c]];
        g[taken[c]++] = pick;
        memcpy(x + i * d, tr->train_x + pick * d, sizeof(float) * d);
    }
out:
    dm_rng_free(&rng);
    dm_free(idx);
    dm_free(start);
    dm_free(taken);
    return st;
}

/* The exact pseudo-sampler: draws from the data. On mixture data the mixture (the trainer's own
 * for an analytic model) in the sampler's carrier denoiser, with the rows' labels; on other data
 * the run's training items (exact_from_train). No model and no guidance (a class-conditional set
 * draws p(x0 | y) whatever the guidance scale). */
static dm_status exact_sample(dm_trainer *tr, const void *sopts, const int32_t *labels, dm_rng *rngs, float *x,
                              int64_t *nfe, char *err)
{
    dm_gmm own = { 0 };
    dm_status st = tr->gmm.k ? DM_OK : dm_data_gmm(tr->data, tr->data_opts, &own, err);
    if (st == DM_E_INPUT) {
        *nfe = 0;
        return exact_from_train(tr, labels, x, err);
    }
    if (st)
        return st;
    dm_denoiser carrier;
    dm_sampler_exact_denoiser(&carrier, tr->gmm.k ? &tr->gmm : &own);
    carrier.y = labels;
    st = dm_sampler_sample(&dm_sampler_exact, sopts, &carrier, &tr->sched, (size_t)tr->eopt->n_samples, rngs, x, nfe,
                           err);
    dm_gmm_free(&own);
    return st;
}

dm_status dm_trainer_sample(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                            float *x, int64_t *nfe, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples;
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    dm_model_denoiser md;
    dm_denoiser den, gden;
    dm_guided_denoiser gd = { 0 };
    dm_rng *rngs;
    int32_t *labels = NULL;
    const int kind = tr->guidance->kind;
    dm_status st = dm_rng_streams_new(dm_seed_derive((uint64_t)tr->root->seed, "eval.noise"), n, &rngs, err);
    if (st)
        return st;
    if (dm_trainer_samples_conditional(tr)) {
        if (!(labels = dm_malloc(sizeof(int32_t) * n))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory for %zu labels", n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            labels[i] = dm_trainer_sample_class(tr, i);
    }
    if (sampler == &dm_sampler_exact) {
        st = exact_sample(tr, sopts, labels, rngs, x, nfe, err);
        goto out;
    }
    if ((st = model_denoiser_init(tr, batch, &md, &den, err)))
        goto out;
    const dm_denoiser *use = &den;
    if (kind != DM_GUIDE_NONE) {
        st = dm_guided_denoiser_init(&gd, &gden, &den, kind, dm_guidance_scale(tr->guidance, tr->guidance_opts),
                                     tr->guide_clf, &tr->sched, err);
        use = &gden;
    }
    if (!st) {
        dm_denoiser run = *use;
        run.y = labels;
        st = dm_sampler_sample(sampler, sopts, &run, &tr->sched, n, rngs, x, nfe, err);
    }
    dm_guided_denoiser_free(&gd);
    model_denoiser_free(&md);
out:
    dm_free(labels);
    dm_rng_streams_free(rngs, n);
    return st;
}

int dm_trainer_samples_conditional(const dm_trainer *tr)
{
    return !tr->classifier && (tr->conditional || tr->guidance->kind != DM_GUIDE_NONE);
}

dm_status dm_trainer_set_classifier(dm_trainer *tr, const dm_classifier *clf, char *err)
{
    if (clf->dim != tr->dim)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier's data have dimension %zu, the model's %zu",
                      clf->dim, tr->dim);
    if (clf->n_classes != tr->n_classes)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier has %zu classes, the dataset %zu",
                      clf->n_classes, tr->n_classes);
    if (clf->max_batch < (size_t)tr->eopt->batch && clf->max_batch < (size_t)tr->eopt->n_samples)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier takes batches of %zu, below eval.batch",
                      clf->max_batch);
    tr->guide_clf = clf;
    return DM_OK;
}

dm_status dm_trainer_nll_start(const dm_trainer *tr, double *eps, char *err)
{
    *eps = DM_NLL_EPS;
    return tr->eopt->nll_sigma > 0 ? dm_schedule_t_at_ratio(&tr->sched, tr->eopt->nll_sigma, "eval.nll_sigma", eps, err)
                                   : DM_OK;
}

dm_status dm_trainer_nll(dm_trainer *tr, double *nll, int64_t *nfe, char *err)
{
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref);
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    const size_t d = tr->dim;
    dm_model_denoiser md;
    dm_denoiser den;
    dm_status st;
    double eps;
    if ((st = dm_trainer_nll_start(tr, &eps, err)))
        return st;
    /* From a noise level (eval.nll_sigma): the density of y = x_t / alpha = x0 + (sigma/alpha) eps
     * at y = x0, the same blurred data for every schedule. With q_t the density of x_t,
     * log p_y(x0) = log q_t(alpha x0) + d log alpha, so the flow starts at alpha x0. */
    const double a = tr->eopt->nll_sigma > 0 ? tr->sched.ops->alpha(&tr->sched, eps) : 1.0;
    double *logp = dm_malloc(sizeof(double) * n);
    float *x0 = a != 1.0 ? dm_malloc_aligned(sizeof(float) * n * d) : NULL;
    if (!logp || (a != 1.0 && !x0)) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for %zu log-likelihoods", n);
        goto out;
    }
    for (size_t q = 0; x0 && q < n * d; q++)
        x0[q] = (float)(a * tr->ref_x[q]);
    if (!(st = model_denoiser_init(tr, batch, &md, &den, err))) {
        /* score_sde's likelihood settings: from t = 1e-5 (or eval.nll_sigma), rtol = atol = 1e-5
         * (FORMULAS.md, RK45). The Hutchinson probes (above 2-D) come from eval.seed, as the
         * reference points: every run estimates on the same points with the same probes. */
        st = dm_nll_pfode(&den, &tr->sched, x0 ? x0 : tr->ref_x, n, eps, DM_NLL_TOL, DM_NLL_TOL,
                          dm_seed_derive((uint64_t)tr->eopt->seed, "eval.hutchinson"), logp, nfe, err);
        model_denoiser_free(&md);
    }
    if (!st) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += logp[i];
        *nll = -(sum / (double)n + (double)d * log(a));
    }
out:
    dm_free(logp);
    dm_free_aligned(x0);
    return st;
}

int dm_trainer_reverse_variance(const dm_trainer *tr)
{
    if (tr->sampler == &dm_sampler_ddpm)
        return ((const dm_ddpm_sampler_opts *)tr->sampler_opts)->variance;
    return tr->loss_variance >= 0 ? tr->loss_variance : DM_VAR_BETA;
}

dm_status dm_trainer_vlb(dm_trainer *tr, double *vlb, int64_t *nfe, char *err)
{
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref);
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    dm_model_denoiser md;
    dm_denoiser den;
    dm_rng *rngs;
    double *bound = dm_malloc(sizeof(double) * n);
    if (!bound)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu bounds", n);
    /* The noise comes from eval.seed, as the reference points: runs compare on the same draws. */
    dm_status st = dm_rng_streams_new(dm_seed_derive((uint64_t)tr->eopt->seed, "eval.vlb"), n, &rngs, err);
    if (st) {
        dm_free(bound);
        return st;
    }
    if (!(st = model_denoiser_init(tr, batch, &md, &den, err))) {
        st = dm_vlb(&den, &tr->sched, dm_trainer_reverse_variance(tr), tr->ref_x, n, rngs, bound, NULL, NULL, err);
        model_denoiser_free(&md);
    }
    if (!st) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += bound[i];
        *vlb = sum / (double)n;
        *nfe = tr->sched.T;
    }
    dm_rng_streams_free(rngs, n);
    dm_free(bound);
    return st;
}

