#include "train/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/classifier_net.h"
#include "diffusion/samplers.h"
#include "eval/conditional.h"
#include "eval/nll.h"
#include "eval/posterior.h"
#include "io/index.h"
#include "io/png.h"
#include "io/runlog.h"
#include "io/spec.h"
#include "nn/model.h"
#include "train/run.h"
#include "train/guide.h"
#include "train/schema.h"

#define PATH_SIZE DM_PATH_SIZE

static dm_eval_cfg eval_cfg(const dm_trainer *tr)
{
    return (dm_eval_cfg){ (uint64_t)tr->eopt->seed, (size_t)tr->eopt->swd_projections,
                          (size_t)tr->eopt->mmd_max };
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

dm_status dm_sample_record(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                           dm_runrec *rec, int baseline, const char *png_dir, dm_eval_result *res,
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
        if ((st = dm_evaluate_record(&ec, x, n, tr->ref_x, nr, d, rec, "noise", 0, "{}", &base, err)))
            goto out;
    }
    if ((st = dm_trainer_sample(tr, sampler, sopts, x, nfe, err)))
        goto out;
    const char *set_name;
    if ((st = dm_runrec_add_samples(rec, sampler->info.name, *nfe, settings, (int64_t)n, (int64_t)d, x,
                                    &set_name, err)))
        goto out;
    if (set_name_out)
        snprintf(set_name_out, 256, "%s", set_name);
    if ((st = dm_evaluate_record(&ec, x, n, tr->ref_x, nr, d, rec, sampler->info.name, *nfe, settings, res, err)))
        goto out;
    if (dm_trainer_samples_conditional(tr) &&
        (st = cond_record(tr, x, n, rec, sampler->info.name, *nfe, settings, err)))
        goto out;
    if (png_dir && d == 2) {
        char path[PATH_SIZE];
        if ((st = dm_path_fmt(path, sizeof path, err, "%s/%s.png", png_dir, set_name)))
            goto out;
        st = dm_png_scatter(path, x, n, tr->ref_x, nr, d, 512, err);
    }
out:
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
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
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
    if ((st = noise_levels(s, LEVELS, ts, &nl, err)))
        goto out;
    if ((st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->eopt->seed, "eval.classifier"), err)) ||
        (st = dm_net_classifier_init(&nc, &clf, &tr->mlp, tr->eopt->use_ema ? tr->ema : tr->params, s, tr->param,
                                     tr->param_opts, tr->sigma_data, batch, err)))
        goto out;
    have_clf = 1;
    for (int l = 0; l < nl; l++) {
        const double t = ts[l], a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
        for (size_t q = 0; q < n * d; q++)
            xt[q] = (float)(a * tr->ref_x[q] + sg * dm_rng_normal(&rng));
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

dm_status dm_posterior_record(dm_trainer *tr, dm_runrec *rec, const char *png_dir, char *err)
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
        if (png_dir && d == 2) {
            double x[2];
            for (size_t j = 0; j < d; j++)
                x[j] = a * tr->ref_x[j] + sg * dm_rng_normal(&rng);
            dm_posterior_draw(&g, a, sg, x, DRAWS, &rng, draws);
            char path[PATH_SIZE];
            if ((st = dm_path_fmt(path, sizeof path, err, "%s/posterior_%02d.png", png_dir, l)) ||
                (st = dm_png_scatter(path, draws, DRAWS, tr->ref_x, (size_t)tr->eopt->n_ref, d, 384, err)))
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
    if (tr->sched.discrete)
        return vlb_record(tr, rec, err);
    double nll;
    int64_t nfe;
    dm_status st = dm_trainer_nll(tr, &nll, &nfe, err);
    if (st)
        return st;
    char settings[128], e[32], tol[32];
    dm_format_real(DM_NLL_EPS, e);
    dm_format_real(DM_NLL_TOL, tol);
    snprintf(settings, sizeof settings, "{\"eps\":%s,\"rtol\":%s,\"atol\":%s}", e, tol, tol);
    const int64_t n = tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref;
    if ((st = dm_runrec_add_eval(rec, "nll", "pf_ode", nfe, settings, n, nll, err)))
        return st;
    return dm_runrec_add_eval(rec, "bpd", "pf_ode", nfe, settings, n, dm_nll_bits_per_dim(-nll, tr->dim), err);
}

static int is_spec_file(const char *target)
{
    struct stat sb;
    size_t n = strlen(target);
    return (n > 5 && (strcmp(target + n - 5, ".yaml") == 0 || strcmp(target + n - 4, ".yml") == 0)) ||
           (stat(target, &sb) == 0 && S_ISREG(sb.st_mode));
}

/* The override sets a key of the section, or the whole section ("sampler={type: cm}"). */
static int in_section(const char *over, const char *section)
{
    const size_t n = strlen(section);
    return strncmp(over, section, n) == 0 && (over[n] == '.' || over[n] == '=');
}

/* Sampler overrides first (--sampler, --steps), then the user's; the run's own keys stay. */
static dm_status build_overrides(const dm_sample_cfg *cfg, int n_over, const char *const *over,
                                 char bufs[2][256], const char ***out, int *n_out, int only_sampling,
                                 char *err)
{
    const char **o = dm_calloc((size_t)n_over + 3, sizeof *o);
    int k = 0;
    if (!o)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    if (cfg->sampler) {
        snprintf(bufs[0], 256, "sampler.type=%s", cfg->sampler);
        o[k++] = bufs[0];
    }
    if (cfg->steps) {
        snprintf(bufs[1], 256, "sampler.steps=%s", cfg->steps);
        o[k++] = bufs[1];
    }
    for (int i = 0; i < n_over; i++) {
        if (only_sampling && !in_section(over[i], "sampler") && !in_section(over[i], "eval") &&
            !in_section(over[i], "run") && !in_section(over[i], "guidance")) {
            dm_free(o);
            return dm_err(err, DM_E_INPUT,
                          "override '%s': sampling a finished run takes only sampler.*, guidance.*, eval.* and run.* "
                          "keys (the rest would describe another model: make a new run)", over[i]);
        }
        o[k++] = over[i];
    }
    *out = o;
    *n_out = k;
    return DM_OK;
}

dm_status dm_find_run(const char *results, const char *pat, char *dir, size_t n, char *id, size_t nid,
                          char *err)
{
    char ipath[PATH_SIZE];
    dm_index *ix = NULL;
    dm_status st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", results);
    if (!st)
        st = dm_index_open(ipath, 1, &ix, err);
    if (st)
        return st;
    st = dm_index_find_run(ix, pat, id, nid, err);
    dm_index_close(ix);
    if (st)
        return st;
    return dm_path_fmt(dir, n, err, "%s/runs/%s", results, id);
}

dm_status dm_sample_cmd(const dm_sample_cfg *cfg, const char *target, int n_over,
                        const char *const *overrides, char *err)
{
    char bufs[2][256], dir[PATH_SIZE], id[512], h5[PATH_SIZE], ck[PATH_SIZE], ipath[PATH_SIZE];
    const char **over = NULL;
    int n = 0;
    dm_status st;
    dm_runrec rec;
    dm_spec *own = NULL, *spec = NULL;
    dm_trainer tr;
    int tr_ready = 0;
    dm_ckpt ck_data = { 0 };
    dm_index *ix = NULL;
    dm_guide guide;
    memset(&guide, 0, sizeof guide);
    dm_runrec_init(&rec);

    if (is_spec_file(target)) {
        /* An analytic model: sampling is the whole run. */
        if ((st = build_overrides(cfg, n_over, overrides, bufs, &over, &n, 0, err)))
            goto out;
        dm_spec *probe = NULL;
        if ((st = dm_spec_load_file(&dm_spec_schema, target, n, over, &probe, err)))
            goto out;
        const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(probe, "model");
        int analytic = mo->analytic;
        dm_spec_free(probe);
        if (!analytic) {
            st = dm_err(err, DM_E_INPUT,
                        "sample %s: model.type is not analytic, so there is nothing to sample before training; "
                        "`difflab run %s` trains it, then `difflab sample RUN` samples the run", target, target);
            goto out;
        }
        dm_run_cfg rc = { .results = cfg->results, .new_repeat = 0, .out = cfg->out };
        st = dm_run_spec_file(&rc, target, n, over, err);
        goto out;
    }

    if ((st = build_overrides(cfg, n_over, overrides, bufs, &over, &n, 1, err)))
        goto out;
    if ((st = dm_find_run(cfg->results, target, dir, sizeof dir, id, sizeof id, err)))
        goto out;
    if ((st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)) ||
        (st = dm_path_fmt(ck, sizeof ck, err, "%s/checkpoint.h5", dir)) ||
        (st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", cfg->results)))
        goto out;
    if ((st = dm_runlog_read(h5, &rec, err)))
        goto out;
    const char *status = dm_runrec_attr(&rec, "status");
    if (!status || strcmp(status, "finished") != 0) {
        st = dm_err(err, DM_E_STATE, "run %s is %s, not finished: nothing to sample yet", id, status ? status : "of unknown status");
        goto out;
    }
    char origin[PATH_SIZE];
    if ((st = dm_path_fmt(origin, sizeof origin, err, "%s/config", h5)))
        goto out;
    if ((st = dm_spec_load_text(&dm_spec_schema, rec.config_yaml, origin, 0, NULL, &own, err)) ||
        (st = dm_spec_load_text(&dm_spec_schema, rec.config_yaml, origin, n, over, &spec, err)) ||
        (st = dm_trainer_check(spec, err)))
        goto out;
    if (((const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss"))->classifier) {
        st = dm_err(err, DM_E_INPUT, "sample %s: run %s is a classifier (diffusion.loss xent): it has nothing to "
                    "sample; name it in guidance.classifier of a diffusion run", target, id);
        goto out;
    }
    /* Classifier guidance by a classifier run: checked before anything is written. */
    char clf_id[256] = "";
    if (dm_guide_needs_run(spec) && (st = dm_guide_check(cfg->results, spec, clf_id, sizeof clf_id, err)))
        goto out;
    if ((st = dm_trainer_init(&tr, spec, NULL, err)))
        goto out;
    tr_ready = 1;
    if (dm_trainer_trains(&tr)) {
        if ((st = dm_ckpt_read(ck, &ck_data, err)) || (st = dm_trainer_restore(&tr, &ck_data, err)))
            goto out;
    }
    if (clf_id[0] && (st = dm_guide_attach(cfg->results, clf_id, &tr, &guide, err)))
        goto out;
    dm_eval_result res;
    int64_t nfe;
    char set[256];
    if ((st = dm_sample_record(&tr, tr.sampler, tr.sampler_opts, &rec, 0, dir, &res, &nfe, set, err)) ||
        (st = dm_nll_record(&tr, &rec, err)))
        goto out;
    if ((st = dm_runlog_write(h5, &rec, err)))
        goto out;
    if ((st = dm_index_open(ipath, 0, &ix, err)))
        goto out;
    char abs[PATH_SIZE];
    if ((st = dm_index_upsert_run(ix, &rec, own, realpath(dir, abs) ? abs : dir, err)))
        goto out;
    fprintf(cfg->out, "run %s: %s nfe %lld on %lld samples: swd %.4g mmd2 %.4g\n", id, tr.sampler->info.name,
            (long long)nfe, (long long)tr.eopt->n_samples, res.swd, res.mmd2);
    fprintf(cfg->out, "  written to %s (/samples/%s)%s%s/%s.png\n", h5, set, tr.dim == 2 ? " and " : "",
            tr.dim == 2 ? dir : "", tr.dim == 2 ? set : "");
out:
    dm_guide_free(&guide);
    dm_index_close(ix);
    dm_ckpt_free(&ck_data);
    if (tr_ready)
        dm_trainer_free(&tr);
    dm_spec_free(spec);
    dm_spec_free(own);
    dm_runrec_free(&rec);
    dm_free(over);
    return st;
}
