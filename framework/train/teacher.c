#include "train/teacher.h"

#include <stdio.h>
#include <string.h>

#include "core/path.h"
#include "diffusion/schedules.h"
#include "nn/model.h"
#include "train/runref.h"
#include "train/schema.h"

/* The run id and folder that distill.teacher names. */
static dm_status resolve(const char *results, const dm_distill_opts *dist, char *id, size_t nid, char *dir,
                         size_t ndir, char *err)
{
    return dm_resolve_named_run(results, dist->teacher, dist->teacher_seed, "distill.teacher", id, nid, dir, ndir,
                                err);
}

/* Read the teacher's record and spec; check status and compatibility. */
/* A one-line description of the network spec sp builds for data of dimension dim (nn/net.h),
 * "analytic" for none: equal descriptions, equal parameter layouts. */
static dm_status net_desc(const dm_spec *sp, size_t dim, char *buf, size_t size, char *err)
{
    const dm_model_ops *m = (const dm_model_ops *)dm_spec_plugin(sp, "model");
    if (m->analytic) {
        snprintf(buf, size, "analytic");
        return DM_OK;
    }
    dm_net_cfg cfg = { .dim = (int)dim, .out_dim = (int)dim, .n_classes = 0 };
    dm_data_shape((const dm_data_ops *)dm_spec_plugin(sp, "data"), dm_spec_opts(sp, "data"), &cfg.c, &cfg.h, &cfg.w);
    dm_net net;
    dm_status st = dm_net_init(&net, m->net, dm_spec_opts(sp, "model"), &cfg, err);
    if (st)
        return st;
    dm_net_describe(&net, buf, size);
    dm_net_free(&net);
    return DM_OK;
}

static dm_status open_teacher(const char *results, const dm_spec *student, const char *dir, const char *id,
                              dm_spec **spec_out, char *err)
{
    dm_spec *spec = NULL;
    dm_status st = dm_runref_finished_spec(dir, id, "distill.teacher", &spec, err);
    if (st)
        goto out;
    if ((st = dm_trainer_check(spec, err))) {
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
        char a[256], b[256];
        if ((st = net_desc(student, ds, a, sizeof a, err)) || (st = net_desc(spec, dt, b, sizeof b, err)))
            goto out;
        if (strcmp(a, b) != 0) {
            st = dm_err(err, DM_E_INPUT, "distill.init_from_teacher: run %s has another network shape than the student: %s, "
                        "the student %s", id, b, a);
            goto out;
        }
    }
    (void)results;
    *spec_out = spec;
    spec = NULL;
out:
    dm_spec_free(spec);
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
    memset(t, 0, sizeof *t);
    snprintf(t->run_id, sizeof t->run_id, "%s", id);
    dm_status st = dm_runref_load(results, id, &t->spec, &t->tr, &t->tr_ready, err);
    if (!st && !(st = dm_model_denoiser_init(&t->tr, batch, 1, &t->md, &t->den, err)))
        t->den_ready = 1;
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
