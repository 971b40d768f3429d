#include "train/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/index.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "io/spec.h"
#include "nn/model.h"
#include "train/features.h"
#include "train/guide.h"
#include "train/record.h"
#include "train/run.h"
#include "train/schema.h"
#include "train/trainer.h"

#define PATH_SIZE DM_PATH_SIZE
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

/* Sampler overrides first (--sampler, --steps), then the user's. The run's own sampler keys stay
 * unless --sampler (or sampler.type=) names another sampler: then that sampler's defaults apply
 * (spec_override.c). */
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
    dm_features feat;
    memset(&feat, 0, sizeof feat);
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
    if ((st = dm_runstore_find(cfg->results, target, dir, sizeof dir, id, sizeof id, err)))
        goto out;
    if ((st = dm_path_fmt(ck, sizeof ck, err, "%s/checkpoint.h5", dir)) ||
        (st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", cfg->results)))
        goto out;
    if ((st = dm_runstore_read(dir, h5, &rec, err)))
        goto out;
    const char *status = dm_runrec_attr(&rec, "status");
    if (!status || strcmp(status, "finished") != 0) {
        st = dm_err(err, DM_E_STATE, "run %s is %s, not finished: nothing to sample yet", id, status ? status : "of unknown status");
        goto out;
    }
    if ((st = dm_runstore_spec(h5, &rec, &dm_spec_schema, 0, NULL, &own, err)) ||
        (st = dm_runstore_spec(h5, &rec, &dm_spec_schema, n, over, &spec, err)) ||
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
    char feat_id[256] = "";
    if (dm_features_needed(spec) && (st = dm_features_check(cfg->results, spec, feat_id, sizeof feat_id, err)))
        goto out;
    if ((st = dm_trainer_init(&tr, spec, NULL, err)))
        goto out;
    tr.run_id = id;
    tr_ready = 1;
    if (dm_trainer_trains(&tr)) {
        if ((st = dm_runstore_read_ckpt(ck, &ck_data, err)) || (st = dm_trainer_restore(&tr, &ck_data, err)))
            goto out;
    }
    if (clf_id[0] && (st = dm_guide_attach(cfg->results, clf_id, &tr, &guide, err)))
        goto out;
    if (feat_id[0] && (st = dm_features_attach(cfg->results, feat_id, &tr, &feat, err)))
        goto out;
    dm_eval_result res;
    int64_t nfe;
    char set[256];
    if ((st = dm_sample_record(&tr, tr.sampler, tr.sampler_opts, &rec, 0, dir, &res, &nfe, set, err)) ||
        (st = dm_nll_record(&tr, &rec, err)))
        goto out;
    if ((st = dm_runlog_write(h5, &rec, err)))
        goto out;
    char abs[PATH_SIZE];
    if ((st = dm_index_open(ipath, 0, &ix, err)) ||
        (st = dm_index_upsert_run(ix, &rec, own, realpath(dir, abs) ? abs : dir, err))) {
        char msg[DM_ERR_SIZE];
        snprintf(msg, sizeof msg, "%s", err);
        dm_err(err, st, "%s; the samples are recorded in %s (/samples/%s): `difflab reindex` adds them to the index",
               msg, h5, set);
        goto out;
    }
    fprintf(cfg->out, "run %s: %s nfe %lld on %lld samples: swd %.4g mmd2 %.4g\n", id, tr.sampler->info.name,
            (long long)nfe, (long long)tr.eopt->n_samples, res.swd, res.mmd2);
    fprintf(cfg->out, "  written to %s (/samples/%s) and %s/%s.%s\n", h5, set, dir, set, tr.dim == 2 ? "svg" : "png");
out:
    dm_guide_free(&guide);
    dm_features_free(&feat);
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
