#define _GNU_SOURCE 1   /* nftw, mkdtemp */
#include "train/reproduce.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/path.h"
#include "io/atomic.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "train/provenance.h"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static const dm_series *find_series(const dm_runrec *r, const char *name)
{
    for (size_t i = 0; i < r->n_series; i++)
        if (strcmp(r->series[i].name, name) == 0)
            return &r->series[i];
    return NULL;
}

static const dm_eval *find_eval(const dm_runrec *r, const dm_eval *e)
{
    for (size_t i = 0; i < r->n_evals; i++) {
        const dm_eval *f = &r->evals[i];
        if (strcmp(f->metric, e->metric) == 0 && strcmp(f->sampler, e->sampler) == 0 && f->nfe == e->nfe &&
            strcmp(f->settings_json ? f->settings_json : "", e->settings_json ? e->settings_json : "") == 0)
            return f;
    }
    return NULL;
}

static void warn_attr(FILE *out, const dm_runrec *was, const dm_runrec *now, const char *key, const char *what)
{
    const char *a = dm_runrec_attr(was, key), *b = dm_runrec_attr(now, key);
    if (a && b && strcmp(a, b) != 0)
        fprintf(out, "warning: %s differs: recorded '%s', now '%s'\n", what, a, b);
}

/* The first difference as a message in msg; 0 if none. */
static int first_difference(const dm_runrec *was, const dm_runrec *now, char *msg, size_t n)
{
    int64_t best_step = INT64_MAX;
    msg[0] = 0;
    for (size_t i = 0; i < was->n_series; i++) {
        const dm_series *a = &was->series[i], *b = find_series(now, a->name);
        if (!b) {
            snprintf(msg, n, "metric %s: recorded, not reproduced", a->name);
            return 1;
        }
        const size_t m = a->n < b->n ? a->n : b->n;
        for (size_t k = 0; k < m; k++)
            if (a->step[k] != b->step[k] || memcmp(&a->value[k], &b->value[k], sizeof(double)) != 0) {
                if (a->step[k] < best_step) {
                    best_step = a->step[k];
                    snprintf(msg, n, "metric %s at step %lld: recorded %.17g, reproduced %.17g (point %zu)", a->name,
                             (long long)a->step[k], a->value[k], b->value[k], k);
                }
                break;
            }
        if (a->n != b->n && m < a->n + b->n && best_step == INT64_MAX)
            snprintf(msg, n, "metric %s: %zu points recorded, %zu reproduced", a->name, a->n, b->n);
    }
    if (msg[0])
        return 1;
    const char *pa = dm_runrec_attr(was, "params_sha256"), *pb = dm_runrec_attr(now, "params_sha256");
    if (pa && (!pb || strcmp(pa, pb) != 0)) {
        snprintf(msg, n, "params_sha256 after the last step: recorded %.16s..., reproduced %.16s...", pa, pb ? pb : "none");
        return 1;
    }
    for (size_t i = 0; i < was->n_evals; i++) {
        const dm_eval *e = &was->evals[i], *f = find_eval(now, e);
        if (!f || memcmp(&e->value, &f->value, sizeof(double)) != 0) {
            snprintf(msg, n, "eval %s of %s (nfe %lld): recorded %.17g, reproduced %s%.17g", e->metric, e->sampler,
                     (long long)e->nfe, e->value, f ? "" : "nothing ", f ? f->value : 0.0);
            return 1;
        }
    }
    return 0;
}

dm_status dm_run_reproduce(const dm_run_cfg *cfg, const char *pat, char *err)
{
    char dir[DM_PATH_SIZE], id[256], h5[DM_PATH_SIZE], scratch[] = "/tmp/difflab-reproduce-XXXXXX";
    char spec[DM_PATH_SIZE + 16], h5b[DM_PATH_SIZE + 300];
    dm_runrec was, now;
    dm_runrec_init(&was);
    dm_runrec_init(&now);
    int made = 0;
    dm_status st = dm_runstore_find(cfg->results, pat, dir, sizeof dir, id, sizeof id, err);
    if (!st)
        st = dm_runstore_read(dir, h5, &was, err);
    if (st)
        goto out;
    const char *status = dm_runrec_attr(&was, "status");
    if (!status || strcmp(status, "finished") != 0) {
        st = dm_err(err, DM_E_STATE, "run %s is %s: only a finished run can be reproduced", id, status ? status : "?");
        goto out;
    }
    const char *teacher = dm_runrec_attr(&was, "teacher");
    if (teacher && teacher[0] && strcmp(teacher, "analytic") != 0) {
        st = dm_err(err, DM_E_INPUT, "run %s distills teacher run %s: reproducing a student with its teacher is not "
                    "supported yet (reproduce the teacher; the student's inputs are its spec and the teacher's files)",
                    id, teacher);
        goto out;
    }
    const char *clf = dm_runrec_attr(&was, "classifier");
    if (clf && clf[0] && strcmp(clf, "analytic") != 0) {
        st = dm_err(err, DM_E_INPUT, "run %s is guided by classifier run %s: reproducing a run with its classifier is "
                    "not supported yet (reproduce the classifier; the run's inputs are its spec and the classifier's "
                    "files)", id, clf);
        goto out;
    }
    if (!mkdtemp(scratch)) {
        st = dm_err(err, DM_E_IO, "cannot make a scratch folder %s", scratch);
        goto out;
    }
    made = 1;
    snprintf(spec, sizeof spec, "%s/spec.yaml", scratch);
    if ((st = dm_write_file_atomic(spec, was.config_yaml, strlen(was.config_yaml), err)))
        goto out;
    fprintf(stderr, "reproducing run %s in %s\n", id, scratch);
    FILE *quiet = fopen("/dev/null", "w");
    dm_run_cfg rc = { .results = scratch, .new_repeat = 0, .out = quiet ? quiet : stderr };
    st = dm_run_spec_file(&rc, spec, 0, NULL, err);
    if (quiet)
        fclose(quiet);
    if (st)
        goto out;
    snprintf(h5b, sizeof h5b, "%s/runs/%s/run.h5", scratch, dm_runrec_attr(&was, "run_id") ? dm_runrec_attr(&was, "run_id") : id);
    if ((st = dm_runstore_read_file(NULL, h5b, &now, err)))
        goto out;
    warn_attr(cfg->out, &was, &now, "git_commit", "the git commit");
    warn_attr(cfg->out, &was, &now, "cpu", "the CPU model");
    warn_attr(cfg->out, &was, &now, "build_flags", "the build flags");
    warn_attr(cfg->out, &was, &now, "blas", "the BLAS build");
    const char *d0 = dm_runrec_attr(&was, "git_dirty"), *d1 = dm_runrec_attr(&now, "git_dirty");
    if ((d0 && strcmp(d0, "1") == 0) || (d1 && strcmp(d1, "1") == 0))
        fprintf(cfg->out, "warning: the source tree had uncommitted changes (%s)\n",
                d0 && strcmp(d0, "1") == 0 ? "when the run was made" : "now");
    char msg[1024];
    if (first_difference(&was, &now, msg, sizeof msg)) {
        fprintf(cfg->out, "MISMATCH: %s\n", msg);
        st = dm_err(err, DM_E_STATE, "run %s does not reproduce: %s", id, msg);
    } else {
        fprintf(cfg->out, "MATCH: run %s reproduces (%zu metric series, params_sha256, %zu evals)\n", id, was.n_series,
                was.n_evals);
    }
out:
    if (made)
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    dm_runrec_free(&was);
    dm_runrec_free(&now);
    return st;
}
