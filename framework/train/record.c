#include "train/record.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/classifier_net.h"
#include "diffusion/ode_ref.h"
#include "diffusion/samplers.h"
#include "eval/conditional.h"
#include "eval/mixture_metrics.h"
#include "eval/mmd_scale.h"
#include "eval/model_err.h"
#include "eval/nll.h"
#include "eval/ode_err.h"
#include "eval/posterior.h"
#include "io/plot.h"
#include "io/png.h"
#include "train/record_features.h"
#include "train/schema.h"

#define PATH_SIZE DM_PATH_SIZE

static dm_eval_cfg eval_cfg(const dm_trainer *tr)
{
    return (dm_eval_cfg){ (uint64_t)tr->eopt->seed, (size_t)tr->eopt->swd_projections,
                          (size_t)tr->eopt->mmd_max };
}

/* dm_evaluate, then the evals rows "swd" and "mmd2" for (sampler, nfe, settings). */
static dm_status evaluate_record(const dm_eval_cfg *cfg, const float *x, size_t n, const float *ref, size_t n_ref,
                                 size_t d, dm_runrec *rec, const char *sampler, int64_t nfe,
                                 const char *settings_json, dm_eval_result *res, char *err)
{
    dm_status st = dm_evaluate(cfg, x, n, ref, n_ref, d, res, err);
    if (st)
        return st;
    if ((st = dm_runrec_add_eval(rec, "swd", sampler, nfe, settings_json, (int64_t)res->n_swd, res->swd, err)))
        return st;
    return dm_runrec_add_eval(rec, "mmd2", sampler, nfe, settings_json, (int64_t)res->n_mmd, res->mmd2, err);
}

/* The sampler's settings as JSON, with the guidance of guided samples appended:
 * {"steps":100,"guidance":"cfg","scale":2} (and "classifier":"<run id>"), so evals of one run at
 * several guidance scales are distinct rows that `difflab table --cols settings` can spread. */
static char *settings_json(const dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts)
{
    char *base = dm_opts_json(&sampler->info, sopts);
    if (!base || tr->guidance->kind == DM_GUIDE_NONE)
        return base;
    char scale[32], extra[512];
    dm_format_real(dm_guidance_scale(tr->guidance, tr->guidance_opts), scale);
    int k = snprintf(extra, sizeof extra, "\"guidance\":\"%s\",\"scale\":%s", tr->guidance->info.name, scale);
    if (tr->guidance->kind == DM_GUIDE_CLASSIFIER)
        snprintf(extra + k, sizeof extra - (size_t)k, ",\"classifier\":\"%s\"", tr->guide_clf_id);
    const size_t nb = strlen(base);
    char *out = dm_malloc(nb + strlen(extra) + 2);
    if (out) {
        memcpy(out, base, nb - 1);   /* without the closing brace */
        sprintf(out + nb - 1, "%s%s}", nb > 2 ? "," : "", extra);
    }
    dm_free(base);
    return out;
}

/* Class-conditional samples: cond_mmd2, class_share, class_var, class_entropy (eval/conditional.h). */
static dm_status cond_record(dm_trainer *tr, const float *x, size_t n, dm_runrec *rec, const char *sampler,
                             int64_t nfe, const char *settings, char *err)
{
    const size_t C = tr->n_classes;
    int32_t *y = dm_malloc(sizeof(int32_t) * n);
    dm_gmm g = { 0 };
    dm_status st = DM_OK;
    if (!y)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu labels", n);
    for (size_t i = 0; i < n; i++)
        y[i] = dm_trainer_sample_class(tr, i);
    /* The exact posterior, where the dataset is a mixture. */
    const dm_status gs = dm_data_gmm(tr->data, tr->data_opts, &g, NULL);
    if (gs == DM_E_NOMEM) {
        st = dm_err(err, gs, "out of memory for the mixture");
        goto out;
    }
    dm_cond_result r;
    if ((st = dm_cond_metrics(x, y, n, tr->ref_x, tr->ref_y, (size_t)tr->eopt->n_ref, tr->dim, C,
                              gs == DM_OK ? &g : NULL, (size_t)tr->eopt->mmd_max, &r, err)))
        goto out;
    const struct { const char *name; double v; } rows[] = {
        { "cond_mmd2", r.cond_mmd2 }, { "class_share", r.class_share },
        { "class_var", r.class_var }, { "class_entropy", r.class_entropy },
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
        if (!isnan(rows[k].v) && (st = dm_runrec_add_eval(rec, rows[k].name, sampler, nfe, settings, (int64_t)n,
                                                          rows[k].v, err)))
            goto out;
out:
    dm_gmm_free(&g);
    dm_free(y);
    return st;
}

/* The JSON object obj (from dm_opts_json) with one more member ("key":value) before its closing
 * brace; a new string, NULL without memory. */
static char *json_with(const char *obj, const char *member)
{
    const size_t nb = strlen(obj), nm = strlen(member);
    char *out = dm_malloc(nb + nm + 2);
    if (out) {
        memcpy(out, obj, nb - 1);
        sprintf(out + nb - 1, "%s%s}", nb > 2 ? "," : "", member);
    }
    return out;
}

/* ,"NAME":[v0,v1,...] of the kernel's DM_MMD_SCALES values, appended at *k in buf. */
static void put_list(char *buf, size_t size, size_t *k, const char *name, const double *v)
{
    *k += (size_t)snprintf(buf + *k, size - *k, ",\"%s\":[", name);
    for (int b = 0; b < DM_MMD_SCALES; b++) {
        char num[32];
        dm_format_real(v[b], num);
        *k += (size_t)snprintf(buf + *k, size - *k, "%s%s", b ? "," : "", num);
    }
    *k += (size_t)snprintf(buf + *k, size - *k, "]");
}

/* The sampler's settings with the kernel of mmd2_ms appended:
 * {...,"mmd_h":[0.1,0.231,...],"mmd_kappa":[0.0417,...]}. */
static char *with_kernel(const char *settings, const dm_mmd_kernel *kern)
{
    char list[2 * DM_MMD_SCALES * 34 + 64];
    size_t k = 0;
    put_list(list, sizeof list, &k, "mmd_h", kern->h);
    put_list(list, sizeof list, &k, "mmd_kappa", kern->kappa);
    const size_t ns = strlen(settings);
    char *out = dm_malloc(ns + k + 2);
    if (out) {
        memcpy(out, settings, ns - 1);   /* without the closing brace */
        sprintf(out + ns - 1, "%s}", list + (ns > 2 ? 0 : 1));   /* no comma after an empty "{" */
    }
    return out;
}

/* The reference set of rec with these settings, n rows of d (NULL if none). */
/* Add n samples x of the run's data as a sample set: images (the data's shape has H x W > 1) keep
 * their (C, H, W) in run.h5. */
static dm_status add_set(const dm_trainer *tr, dm_runrec *rec, const char *sampler, int64_t nfe, const char *settings,
                         size_t n, const float *x, const char **name, char *err)
{
    if (tr->shape[1] * tr->shape[2] > 1) {
        const int32_t shape[3] = { tr->shape[0], tr->shape[1], tr->shape[2] };
        return dm_runrec_add_image_samples(rec, sampler, nfe, settings, (int64_t)n, shape, x, name, err);
    }
    return dm_runrec_add_samples(rec, sampler, nfe, settings, (int64_t)n, (int64_t)tr->dim, x, name, err);
}

static const float *ode_ref_find(const dm_runrec *rec, const char *settings, size_t n, size_t d)
{
    for (size_t i = 0; i < rec->n_samples; i++) {
        const dm_sample_set *s = &rec->samples[i];
        if (strcmp(s->sampler, dm_ode_ref_sampler.info.name) == 0 && strcmp(s->settings_json, settings) == 0 &&
            s->n == (int64_t)n && s->d == (int64_t)d)
            return s->x;
    }
    return NULL;
}

/* eval.ode_err: the first m = min(eval.ode_err_n, n) samples x of `sampler` against the PF-ODE
 * reference over its span (diffusion/ode_ref.h), recorded as evals "ode_err" (mean) and
 * "ode_err_median" with the sampler's own (sampler, nfe, settings) and n = m. The reference is a
 * sample set "ode_ref" whose settings are its span, stepper, tolerances, n, the weights (ema,
 * weights or analytic) and the guidance: found in rec when an earlier sampler of the run made it
 * (run.h5 keeps it, so `difflab sample` reuses it), else solved through dm_trainer_sample (the
 * samplers' own denoiser, guidance, labels and noise streams) and added. */
static dm_status ode_err_record(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts, const float *x,
                                dm_runrec *rec, int64_t nfe, const char *settings, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples, d = tr->dim;
    const size_t m = (size_t)tr->eopt->ode_err_n < n ? (size_t)tr->eopt->ode_err_n : n;
    char *base = NULL, *ref_settings = NULL;
    float *buf = NULL;
    dm_ode_ref_opts ro;
    dm_status st = dm_ode_ref_opts_for(sampler, sopts, &tr->sched, DM_ODE_REF_TOL, (int64_t)m, &ro, err);
    if (st)
        return st;
    const char *model = tr->analytic          ? "\"model\":\"analytic\""
                        : tr->eopt->use_ema ? "\"model\":\"ema\""
                                            : "\"model\":\"weights\"";
    if (!(base = settings_json(tr, &dm_ode_ref_sampler, &ro)) || !(ref_settings = json_with(base, model))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the reference's settings");
        goto out;
    }
    const float *ref = ode_ref_find(rec, ref_settings, m, d);
    if (!ref) {
        int64_t ref_nfe;
        if (!(buf = dm_malloc_aligned(sizeof(float) * n * d))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory for the reference of %zu samples", n);
            goto out;
        }
        if ((st = dm_trainer_sample(tr, &dm_ode_ref_sampler, &ro, buf, &ref_nfe, err)) ||
            (st = add_set(tr, rec, dm_ode_ref_sampler.info.name, ref_nfe, ref_settings, m, buf, NULL, err)))
            goto out;
        ref = buf;
    }
    dm_ode_err_result r;
    if ((st = dm_ode_err(x, ref, m, d, tr->data_std, NULL, &r, err)) ||
        (st = dm_runrec_add_eval(rec, "ode_err", sampler->info.name, nfe, settings, (int64_t)m, r.mean, err)))
        goto out;
    st = dm_runrec_add_eval(rec, "ode_err_median", sampler->info.name, nfe, settings, (int64_t)m, r.median, err);
out:
    dm_free(base);
    dm_free(ref_settings);
    dm_free_aligned(buf);
    return st;
}

/* Metrics of a sample set at the data's scale: mmd2_ms (its kernel in its settings,
 * eval/mmd_scale.h) for every dataset, and on mixture data the exact-density metrics
 * data_nll, in_mode99, mode_recall, mode_chi2 (eval/mixture_metrics.h) against the distribution
 * the set was drawn for (labels: the balanced classes of a class-conditional set). */
static dm_status scale_mixture_record(dm_trainer *tr, const float *x, size_t n, int conditional, dm_runrec *rec,
                                      const char *sampler, int64_t nfe, const char *settings, char *err)
{
    const size_t d = tr->dim, nr = (size_t)tr->eopt->n_ref, cap = (size_t)tr->eopt->mmd_max;
    dm_gmm g = { 0 };
    int32_t *y = NULL;
    char *hs = NULL;
    dm_status st = dm_data_gmm(tr->data, tr->data_opts, &g, NULL);
    const int mixture = st == DM_OK;
    if (st == DM_E_NOMEM)
        return dm_err(err, st, "out of memory for the mixture");
    dm_mmd_kernel kern;
    double v;
    st = DM_OK;
    if (tr->shape[1] * tr->shape[2] > 1) /* images: mmd2_ms's finest kernels vanish in d = C H W; fd and kid */
        goto mixture_only;
    if ((st = dm_mmd_kernel_of(mixture ? &g : NULL, tr->ref_x, nr, d, &kern, err)) ||
        (st = dm_mmd2_ms(x, n < cap ? n : cap, tr->ref_x, nr < cap ? nr : cap, d, &kern, &v, err)))
        goto out;
    if (!(hs = with_kernel(settings, &kern))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the settings of mmd2_ms");
        goto out;
    }
    if ((st = dm_runrec_add_eval(rec, "mmd2_ms", sampler, nfe, hs, (int64_t)(n < cap ? n : cap), v, err)))
        goto out;
mixture_only:
    if (!mixture)
        goto out;
    if (conditional) {
        if (!(y = dm_malloc(sizeof(int32_t) * n))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory for %zu labels", n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            y[i] = dm_trainer_sample_class(tr, i);
    }
    dm_mix_result r;
    if ((st = dm_mixture_metrics(&g, x, y, n, &r, err)))
        goto out;
    const struct { const char *name; double v; } rows[] = {
        { "data_nll", r.data_nll }, { "in_mode99", r.in_mode99 },
        { "mode_recall", r.mode_recall }, { "mode_chi2", r.mode_chi2 },
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
        if ((st = dm_runrec_add_eval(rec, rows[k].name, sampler, nfe, settings, (int64_t)n, rows[k].v, err)))
            goto out;
out:
    dm_free(hs);
    dm_free(y);
    dm_gmm_free(&g);
    return st;
}

/* The image metrics in the feature network's space, with the requested labels of a conditional set. */
static dm_status features_record(dm_trainer *tr, const float *x, size_t n, dm_runrec *rec, const char *sampler,
                                 int64_t nfe, const char *settings, char *err)
{
    int32_t *y = NULL;
    if (dm_trainer_samples_conditional(tr)) {
        if (!(y = dm_malloc(sizeof(int32_t) * n)))
            return dm_err(err, DM_E_NOMEM, "out of memory for %zu labels", n);
        for (size_t i = 0; i < n; i++)
            y[i] = dm_trainer_sample_class(tr, i);
    }
    const dm_status st = dm_features_record(tr, x, n, y, rec, sampler, nfe, settings, err);
    dm_free(y);
    return st;
}

dm_status dm_sample_record(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                           dm_runrec *rec, int baseline, const char *pic_dir, dm_eval_result *res,
                           int64_t *nfe, char *set_name_out, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples, d = tr->dim, nr = (size_t)tr->eopt->n_ref;
    const dm_eval_cfg ec = eval_cfg(tr);
    dm_status st;
    char *settings = settings_json(tr, sampler, sopts);
    float *x = dm_malloc_aligned(sizeof(float) * n * d);
    if (!settings || !x) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for %zu samples", n);
        goto out;
    }
    if (baseline) {
        /* The sampler's own initial noise: how far from the data every sampler starts. */
        dm_rng *rngs;
        dm_eval_result base;
        if ((st = dm_rng_streams_new(dm_seed_derive((uint64_t)tr->root->seed, "eval.noise"), n, &rngs, err)))
            goto out;
        dm_sampler_init_noise(&tr->sched, n, d, rngs, x);
        dm_rng_streams_free(rngs, n);
        if ((st = evaluate_record(&ec, x, n, tr->ref_x, nr, d, rec, "noise", 0, "{}", &base, err)) ||
            (st = scale_mixture_record(tr, x, n, 0, rec, "noise", 0, "{}", err)) ||
            (tr->features && (st = dm_features_record(tr, x, n, NULL, rec, "noise", 0, "{}", err))))
            goto out;
    }
    /* Progress: network evaluations of items (cfg evaluates the model twice a step). */
    const int64_t want = sampler->nfe(sopts, &tr->sched);
    dm_trainer_phase_begin(tr, want > 0 ? want * (int64_t)n * (tr->guidance->kind == DM_GUIDE_CFG ? 2 : 1) : 0,
                           "sampling %s, %zu samples", sampler->info.name, n);
    st = dm_trainer_sample(tr, sampler, sopts, x, nfe, err);
    dm_trainer_phase_end(tr, st);
    if (st)
        goto out;
    dm_trainer_phase_begin(tr, 0, "metrics of %s nfe %lld", sampler->info.name, (long long)*nfe);
    const char *set_name;
    if ((st = add_set(tr, rec, sampler->info.name, *nfe, settings, n, x, &set_name, err)))
        goto out;
    if (set_name_out)
        snprintf(set_name_out, 256, "%s", set_name);
    if ((st = evaluate_record(&ec, x, n, tr->ref_x, nr, d, rec, sampler->info.name, *nfe, settings, res, err)) ||
        (st = scale_mixture_record(tr, x, n, dm_trainer_samples_conditional(tr), rec, sampler->info.name, *nfe,
                                   settings, err)))
        goto out;
    if (dm_trainer_samples_conditional(tr) &&
        (st = cond_record(tr, x, n, rec, sampler->info.name, *nfe, settings, err)))
        goto out;
    if (tr->features && (st = features_record(tr, x, n, rec, sampler->info.name, *nfe, settings, err)))
        goto out;
    if (pic_dir && (d == 2 || tr->shape[1] * tr->shape[2] > 1)) {
        char path[PATH_SIZE];
        if ((st = dm_path_fmt(path, sizeof path, err, "%s/%s.%s", pic_dir, set_name, d == 2 ? "svg" : "png")))
            goto out;
        if (d == 2) /* at most 2000 points of each set drawn; all counted when outside the view */
            st = dm_plot_scatter_file(path, set_name, x, n, "samples", tr->ref_x, nr, d, 2000, err);
        else /* the first 64 images, 8 x 8, each about 96 pixels wide */
            st = dm_png_grid(path, x, n < 64 ? n : 64, (size_t)tr->shape[0], (size_t)tr->shape[1],
                             (size_t)tr->shape[2], 8, tr->shape[2] < 96 ? 96 / tr->shape[2] : 1, err);
        if (st)
            goto out;
    }
    dm_trainer_phase_end(tr, DM_OK);
    /* Last: a new reference set may move the record's sample sets (set_name points into them). */
    if (tr->eopt->ode_err) {
        dm_trainer_phase_begin(tr, 0, "ode_err of %s: the RK45 reference", sampler->info.name);
        st = ode_err_record(tr, sampler, sopts, x, rec, *nfe, settings, err);
    }
out:
    dm_trainer_phase_end(tr, st); /* the metrics or ode_err phase, if one is open */
    dm_free(settings);
    dm_free_aligned(x);
    return st;
}

/* Up to L noise levels (ts, L + 1 doubles): the schedule's (L - 1)-step sampling grid with its
 * clean end replaced by the smallest time (discrete: the first step; continuous: t_min), without
 * repeats (a discrete grid may already end on the first step). *n gets their count. */
static dm_status noise_levels(const dm_schedule *s, int L, double *ts, int *n, char *err)
{
    dm_status st = s->ops->grid(s, L - 1, ts, err);
    if (st)
        return st;
    ts[L - 1] = s->discrete ? 0.0 : s->t_min;
    *n = 0;
    for (int l = 0; l < L; l++)
        if (*n == 0 || ts[l] != ts[*n - 1])
            ts[(*n)++] = ts[l];
    return DM_OK;
}

dm_status dm_classifier_record(dm_trainer *tr, dm_runrec *rec, char *err)
{
    const size_t n = (size_t)tr->eopt->n_ref, d = tr->dim, C = tr->n_classes;
    size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    const dm_schedule *s = &tr->sched;
    enum { LEVELS = 5 };
    double ts[LEVELS + 1];
    int nl = 0;
    dm_net_classifier nc;
    dm_classifier clf;
    dm_rng rng = { 0 };
    float *xt = dm_malloc_aligned(sizeof(float) * n * d);
    double *logp = dm_malloc(sizeof(double) * batch), *tb = dm_malloc(sizeof(double) * batch);
    int have_clf = 0;
    dm_status st;
    if (!xt || !logp || !tb) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the classifier's evaluation on %zu points", n);
        goto out;
    }
    if (tr->clean) { /* a classifier of clean items: its accuracy on the clean reference set */
        ts[0] = 0.0;
        nl = 1;
    } else if ((st = noise_levels(s, LEVELS, ts, &nl, err))) {
        goto out;
    }
    if ((st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->eopt->seed, "eval.classifier"), err)) ||
        (st = dm_net_classifier_init(&nc, &clf, &tr->net, tr->eopt->use_ema ? tr->ema : tr->params, s, tr->param,
                                     tr->param_opts, tr->sigma_data, batch, err)))
        goto out;
    have_clf = 1;
    nc.clean = tr->clean;
    batch = clf.max_batch; /* the network's cap (a cnn's 256) may be below eval.batch */
    for (int l = 0; l < nl; l++) {
        const double t = ts[l];
        if (tr->clean) {
            memcpy(xt, tr->ref_x, sizeof(float) * n * d);
        } else {
            const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
            for (size_t q = 0; q < n * d; q++)
                xt[q] = (float)(a * tr->ref_x[q] + sg * dm_rng_normal(&rng));
        }
        double xent = 0.0;
        size_t hits = 0;
        for (size_t i0 = 0; i0 < n; i0 += batch) {
            const size_t m = n - i0 < batch ? n - i0 : batch;
            for (size_t i = 0; i < m; i++)
                tb[i] = t;
            if ((st = clf.eval(clf.ctx, m, xt + i0 * d, tb, tr->ref_y + i0, logp, NULL, err)))
                goto out;
            for (size_t i = 0; i < m; i++) {
                xent -= logp[i];
                const float *lg = nc.F + i * C;   /* the logits of the pass just made */
                size_t best = 0;
                for (size_t k = 1; k < C; k++)
                    if (lg[k] > lg[best])
                        best = k;
                hits += (int32_t)best == tr->ref_y[i0 + i];
            }
        }
        char tj[32], settings[64];
        dm_format_real(t, tj);
        if (tr->clean)
            snprintf(settings, sizeof settings, "{\"clean\":true}");
        else
            snprintf(settings, sizeof settings, "{\"t\":%s}", tj);
        if ((st = dm_runrec_add_eval(rec, "accuracy", "classifier", 0, settings, (int64_t)n, (double)hits / (double)n,
                                     err)) ||
            (st = dm_runrec_add_eval(rec, "xent", "classifier", 0, settings, (int64_t)n, xent / (double)n, err)))
            goto out;
    }
out:
    if (have_clf)
        dm_net_classifier_free(&nc);
    dm_rng_free(&rng);
    dm_free_aligned(xt);
    dm_free(logp);
    dm_free(tb);
    return st;
}

dm_status dm_posterior_record(dm_trainer *tr, dm_runrec *rec, const char *pic_dir, char *err)
{
    if (!tr->eopt->posterior)
        return DM_OK;
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref), d = tr->dim;
    const int L = (int)tr->eopt->posterior_levels;
    const dm_schedule *s = &tr->sched;
    enum { DRAWS = 2000 };
    dm_gmm g = { 0 };
    dm_rng rng = { 0 };
    double *ts = dm_malloc(sizeof(double) * (size_t)(L + 1));
    float *draws = dm_malloc(sizeof(float) * DRAWS * d);
    dm_status st = ts && draws ? DM_OK : dm_err(err, DM_E_NOMEM, "out of memory for the posterior statistics");
    int nl = 0;
    if (st || (st = dm_data_gmm(tr->data, tr->data_opts, &g, err)) || (st = noise_levels(s, L, ts, &nl, err)))
        goto out;
    /* The run's own seed: replicates of a study see other noise. */
    if ((st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->root->seed, "eval.posterior"), err)))
        goto out;
    for (int l = 0; l < nl; l++) {
        const double t = ts[l], a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
        dm_posterior_stats ps;
        if ((st = dm_posterior_stats_at(&g, a, sg, tr->ref_x, n, tr->train_x, (size_t)tr->topt->n_data, &rng, &ps,
                                        err)))
            goto out;
        char tj[32], sj[32], settings[96];
        dm_format_real(t, tj);
        dm_format_real(sg / a, sj);
        snprintf(settings, sizeof settings, "{\"t\":%s,\"sigma\":%s}", tj, sj);
        const struct { const char *name; double v; } rows[] = {
            { "post_std", ps.std }, { "post_modes", ps.modes }, { "post_modes90", ps.modes90 },
            { "gap_data", ps.gap_data }, { "gap_mode", ps.gap_mode }, { "denoise_err", ps.err },
        };
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
            if ((st = dm_runrec_add_eval(rec, rows[k].name, "posterior", 0, settings, (int64_t)n, rows[k].v, err)))
                goto out;
        /* A picture: draws from the posterior of one noisy point (the first reference point, noised). */
        if (pic_dir && d == 2) {
            double x[2];
            for (size_t j = 0; j < d; j++)
                x[j] = a * tr->ref_x[j] + sg * dm_rng_normal(&rng);
            dm_posterior_draw(&g, a, sg, x, DRAWS, &rng, draws);
            char path[PATH_SIZE], title[96];
            snprintf(title, sizeof title, "p(x0 | x_t) of one noisy point, sigma/alpha = %.3g", sg / a);
            if ((st = dm_path_fmt(path, sizeof path, err, "%s/posterior_%02d.svg", pic_dir, l)) ||
                (st = dm_plot_scatter_file(path, title, draws, DRAWS, "posterior draws", tr->ref_x,
                                           (size_t)tr->eopt->n_ref, d, 2000, err)))
                goto out;
        }
    }
out:
    dm_gmm_free(&g);
    dm_rng_free(&rng);
    dm_free(ts);
    dm_free(draws);
    return st;
}

dm_status dm_model_err_record(dm_trainer *tr, dm_runrec *rec, char *err)
{
    if (!tr->eopt->model_err)
        return DM_OK;
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref), d = tr->dim;
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    const dm_reals *lv = &tr->eopt->model_err_levels;
    dm_gmm g = { 0 };
    dm_rng rng = { 0 };
    dm_model_denoiser md;
    dm_gmm_denoiser gd;
    dm_denoiser model, exact;
    int have_model = 0;
    float *eps = dm_malloc(sizeof(float) * n * d);
    dm_status st = eps ? DM_OK : dm_err(err, DM_E_NOMEM, "out of memory for model_err's %zu points", n);
    if (st || (st = dm_data_gmm(tr->data, tr->data_opts, &g, err)))
        goto out;
    /* eval.seed, as the reference points: every run is measured on the same noisy points, and one
     * draw of the noise serves every level (a level's value does not depend on the others). */
    if ((st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->eopt->seed, "eval.model_err"), err)))
        goto out;
    for (size_t q = 0; q < n * d; q++)
        eps[q] = (float)dm_rng_normal(&rng);
    if ((st = dm_model_denoiser_init(tr, batch, tr->eopt->use_ema, &md, &model, err)))
        goto out;
    have_model = 1;
    dm_gmm_denoiser_init(&gd, &exact, &g, &tr->sched, batch);
    /* A conditional model is compared on the reference points' own classes, with D*(x, t, y). */
    const int32_t *y = tr->conditional ? tr->ref_y : NULL;
    for (size_t l = 0; l < lv->n; l++) {
        double t, level, v;
        if ((st = dm_model_err_time(&tr->sched, lv->v[l], "eval.model_err_levels", &t, &level, err)) ||
            (st = dm_model_err(&model, &exact, &tr->sched, t, tr->ref_x, eps, y, n, &v, err)))
            goto out;
        char tj[32], sj[32], settings[96];
        dm_format_real(t, tj);
        dm_format_real(level, sj);
        snprintf(settings, sizeof settings, "{\"t\":%s,\"sigma\":%s}", tj, sj);
        if ((st = dm_runrec_add_eval(rec, "model_err", "model", 0, settings, (int64_t)n, v, err)))
            goto out;
    }
out:
    if (have_model)
        dm_model_denoiser_free(&md);
    dm_gmm_free(&g);
    dm_rng_free(&rng);
    dm_free(eps);
    return st;
}

/* The DDPM bound (discrete schedules): metrics vlb (nats per point) and vlb_bpd, sampler "ddpm"
 * (the reverse process it bounds), NFE T, the variance in the settings. */
static dm_status vlb_record(dm_trainer *tr, dm_runrec *rec, char *err)
{
    double vlb;
    int64_t nfe;
    dm_status st = dm_trainer_vlb(tr, &vlb, &nfe, err);
    if (st)
        return st;
    char settings[64];
    snprintf(settings, sizeof settings, "{\"variance\":\"%s\"}", dm_var_names[dm_trainer_reverse_variance(tr)]);
    const int64_t n = tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref;
    if ((st = dm_runrec_add_eval(rec, "vlb", "ddpm", nfe, settings, n, vlb, err)))
        return st;
    return dm_runrec_add_eval(rec, "vlb_bpd", "ddpm", nfe, settings, n, dm_nll_bits_per_dim(-vlb, tr->dim), err);
}

dm_status dm_nll_record(dm_trainer *tr, dm_runrec *rec, char *err)
{
    if (!tr->eopt->nll)
        return DM_OK;
    const int64_t n_pts = tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref;
    if (tr->sched.discrete) {
        dm_trainer_phase_begin(tr, n_pts * tr->sched.T, "the DDPM bound, %lld points", (long long)n_pts);
        const dm_status st = vlb_record(tr, rec, err);
        dm_trainer_phase_end(tr, st);
        return st;
    }
    double nll;
    int64_t nfe;
    dm_trainer_phase_begin(tr, 0, "likelihood (PF-ODE), %lld points", (long long)n_pts);
    dm_status st = dm_trainer_nll(tr, &nll, &nfe, err);
    dm_trainer_phase_end(tr, st);
    if (st)
        return st;
    double eps;
    if ((st = dm_trainer_nll_start(tr, &eps, err)))
        return st;
    /* With eval.nll_sigma the start is a noise level: recorded beside its time, so likelihoods of
     * different schedules compare only from the same sigma/alpha. */
    char settings[192], e[32], tol[32], sg[48] = "";
    dm_format_real(eps, e);
    dm_format_real(DM_NLL_TOL, tol);
    if (tr->eopt->nll_sigma > 0) {
        char v[32];
        dm_format_real(tr->eopt->nll_sigma, v);
        snprintf(sg, sizeof sg, ",\"sigma\":%s", v);
    }
    snprintf(settings, sizeof settings, "{\"eps\":%s%s,\"rtol\":%s,\"atol\":%s}", e, sg, tol, tol);
    const int64_t n = tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref;
    if ((st = dm_runrec_add_eval(rec, "nll", "pf_ode", nfe, settings, n, nll, err)))
        return st;
    return dm_runrec_add_eval(rec, "bpd", "pf_ode", nfe, settings, n, dm_nll_bits_per_dim(-nll, tr->dim), err);
}

