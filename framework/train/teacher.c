#include "train/teacher.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/path.h"
#include "diffusion/schedules.h"
#include "io/runlog.h"
#include "nn/model.h"
#include "train/run.h"
#include "train/sample.h"
#include "train/schema.h"

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

dm_status dm_resolve_named_run(const char *results, const char *name, int64_t seed, const char *key, char *id,
                               size_t nid, char *dir, size_t ndir, char *err)
{
    if (!is_file(name)) {
        dm_status st = dm_find_run(results, name, dir, ndir, id, nid, err);
        if (st)
            dm_err_prefix(err, "%s: '%s' is neither a spec file nor a run of the index", key, name);
        return st;
    }
    char seedo[64], hash[65];
    snprintf(seedo, sizeof seedo, "seed=%lld", (long long)seed);
    const char *over[1] = { seedo };
    dm_spec *spec = NULL;
    dm_status st = dm_spec_load_file(&dm_spec_schema, name, 1, over, &spec, err);
    if (!st)
        st = dm_run_id(spec, id, nid, hash, err);
    dm_spec_free(spec);
    if (st) {
        dm_err_prefix(err, "%s: the spec '%s'", key, name);
        return st;
    }
    if ((st = dm_path_fmt(dir, ndir, err, "%s/runs/%s", results, id)))
        return st;
    char h5[DM_PATH_SIZE];
    if ((st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)))
        return st;
    if (!is_file(h5))
        return dm_err(err, DM_E_NOTFOUND,
                      "%s: the run %s (spec %s, seed %lld) does not exist in %s: run `difflab run %s seed=%lld` first",
                      key, id, name, (long long)seed, results, name, (long long)seed);
    return DM_OK;
}

/* The run id and folder that distill.teacher names. */
static dm_status resolve(const char *results, const dm_distill_opts *dist, char *id, size_t nid, char *dir,
                         size_t ndir, char *err)
{
    return dm_resolve_named_run(results, dist->teacher, dist->teacher_seed, "distill.teacher", id, nid, dir, ndir,
                                err);
}

/* Read the teacher's record and spec; check status and compatibility. */
static dm_status open_teacher(const char *results, const dm_spec *student, const char *dir, const char *id,
                              dm_spec **spec_out, char *err)
{
    char h5[DM_PATH_SIZE], origin[DM_PATH_SIZE + 16];
    dm_runrec rec;
    dm_runrec_init(&rec);
    dm_spec *spec = NULL;
    dm_status st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir);
    if (!st && (st = dm_runlog_read(h5, &rec, err)))
        dm_err_prefix(err, "distill.teacher: run %s", id);
    if (st)
        goto out;
    const char *status = dm_runrec_attr(&rec, "status");
    if (!status || strcmp(status, "finished") != 0) {
        st = dm_err(err, DM_E_STATE, "distill.teacher: run %s is %s, not finished: finish it first (difflab run)", id,
                    status ? status : "of unknown status");
        goto out;
    }
    snprintf(origin, sizeof origin, "%s/config", h5);
    if ((st = dm_spec_load_text(&dm_spec_schema, rec.config_yaml, origin, 0, NULL, &spec, err)) ||
        (st = dm_trainer_check(spec, err))) {
        dm_err_prefix(err, "distill.teacher: run %s", id);
        goto out;
    }
    const dm_data_ops *sd = (const dm_data_ops *)dm_spec_plugin(student, "data");
    const dm_data_ops *td = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const size_t ds = sd->dim(dm_spec_opts(student, "data")), dt = td->dim(dm_spec_opts(spec, "data"));
    if (ds != dt) {
        st = dm_err(err, DM_E_INPUT, "distill.teacher: run %s has data of dimension %zu (%s), the student %zu (%s)", id,
                    dt, td->info.name, ds, sd->info.name);
        goto out;
    }
    const dm_plugin *ts = dm_spec_plugin(spec, "diffusion.schedule");
    if (ts != &dm_schedule_edm.info) {
        st = dm_err(err, DM_E_INPUT, "distill.teacher: run %s has the schedule '%s'; distillation steps the "
                    "teacher's ODE in sigma, so it needs one with sigma = t (edm)", id, ts->name);
        goto out;
    }
    /* Starting from the teacher's weights needs the same network. */
    const dm_distill_opts *dist = dm_spec_opts(student, "distill");
    if (dist->init_from_teacher) {
        const dm_model_ops *sm = (const dm_model_ops *)dm_spec_plugin(student, "model");
        const dm_model_ops *tm = (const dm_model_ops *)dm_spec_plugin(spec, "model");
        dm_mlp_cfg a = { 0 }, b = { 0 };
        if (!tm->analytic) {
            sm->mlp_cfg(dm_spec_opts(student, "model"), (int)ds, (int)ds, &a);
            tm->mlp_cfg(dm_spec_opts(spec, "model"), (int)dt, (int)dt, &b);
        }
        if (tm->analytic || memcmp(&a, &b, sizeof a) != 0) {
            st = dm_err(err, DM_E_INPUT, "distill.init_from_teacher: run %s has another network shape than the "
                        "student (%s)", id, tm->analytic ? "it is analytic" : "model width, depth, nfreq or outputs differ");
            goto out;
        }
    }
    (void)results;
    *spec_out = spec;
    spec = NULL;
out:
    dm_spec_free(spec);
    dm_runrec_free(&rec);
    return st;
}

dm_status dm_teacher_check(const char *results, const dm_spec *student, char *id, size_t nid, char *err)
{
    const dm_distill_opts *dist = dm_spec_opts(student, "distill");
    char dir[DM_PATH_SIZE];
    dm_spec *spec = NULL;
    dm_status st = resolve(results, dist, id, nid, dir, sizeof dir, err);
    if (!st)
        st = open_teacher(results, student, dir, id, &spec, err);
    dm_spec_free(spec);
    return st;
}

dm_status dm_teacher_load(const char *results, const char *id, size_t batch, dm_teacher *t, char *err)
{
    char dir[DM_PATH_SIZE], ck[DM_PATH_SIZE], rid[256];
    memset(t, 0, sizeof *t);
    snprintf(t->run_id, sizeof t->run_id, "%s", id);
    dm_status st = dm_find_run(results, id, dir, sizeof dir, rid, sizeof rid, err);
    if (st)
        return st;
    dm_runrec rec;
    dm_runrec_init(&rec);
    char h5[DM_PATH_SIZE], origin[DM_PATH_SIZE + 16];
    if ((st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)) || (st = dm_runlog_read(h5, &rec, err)))
        goto out;
    snprintf(origin, sizeof origin, "%s/config", h5);
    if ((st = dm_spec_load_text(&dm_spec_schema, rec.config_yaml, origin, 0, NULL, &t->spec, err)) ||
        (st = dm_trainer_init(&t->tr, t->spec, NULL, err)))
        goto out;
    t->tr_ready = 1;
    if (dm_trainer_trains(&t->tr)) {
        dm_ckpt c = { 0 };
        if ((st = dm_path_fmt(ck, sizeof ck, err, "%s/checkpoint.h5", dir)) || (st = dm_ckpt_read(ck, &c, err)))
            goto out;
        st = dm_trainer_restore(&t->tr, &c, err);
        dm_ckpt_free(&c);
        if (st)
            goto out;
    }
    if ((st = dm_model_denoiser_init(&t->tr, batch, 1, &t->md, &t->den, err)))
        goto out;
    t->den_ready = 1;
out:
    dm_runrec_free(&rec);
    if (st)
        dm_err_prefix(err, "distill.teacher: loading run %s", id);
    return st;
}

void dm_teacher_free(dm_teacher *t)
{
    if (t->den_ready)
        dm_model_denoiser_free(&t->md);
    if (t->tr_ready)
        dm_trainer_free(&t->tr);
    dm_spec_free(t->spec);
    memset(t, 0, sizeof *t);
}
