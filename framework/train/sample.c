#include "train/sample.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/samplers.h"
#include "eval/nll.h"
#include "io/index.h"
#include "io/png.h"
#include "io/runlog.h"
#include "io/spec.h"
#include "nn/model.h"
#include "train/run.h"
#include "train/schema.h"

#define PATH_SIZE DM_PATH_SIZE

static dm_eval_cfg eval_cfg(const dm_trainer *tr)
{
    return (dm_eval_cfg){ (uint64_t)tr->eopt->seed, (size_t)tr->eopt->swd_projections,
                          (size_t)tr->eopt->mmd_max };
}

dm_status dm_sample_record(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                           dm_runrec *rec, int baseline, const char *png_dir, dm_eval_result *res,
                           int64_t *nfe, char *set_name_out, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples, d = tr->dim, nr = (size_t)tr->eopt->n_ref;
    const dm_eval_cfg ec = eval_cfg(tr);
    dm_status st;
    char *settings = dm_opts_json(&sampler->info, sopts);
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
            !in_section(over[i], "run")) {
            dm_free(o);
            return dm_err(err, DM_E_INPUT,
                          "override '%s': sampling a finished run takes only sampler.*, eval.* and run.* keys "
                          "(the rest would describe another model: make a new run)", over[i]);
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
    if ((st = dm_trainer_init(&tr, spec, NULL, err)))
        goto out;
    tr_ready = 1;
    if (dm_trainer_trains(&tr)) {
        if ((st = dm_ckpt_read(ck, &ck_data, err)) || (st = dm_trainer_restore(&tr, &ck_data, err)))
            goto out;
    }
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
