/* index_write.c — the writers of results/index.sqlite: a run's rows replaced in one BEGIN
 * IMMEDIATE transaction (runs row from its attrs and hashes, params from its spec, metrics from
 * its series, evals), a run deleted, a run's status updated, a run's tags and notes replaced. Each is one dm_ix_op run through
 * dm_ix_write_op (index.c): retried on a transient lock failure, redone if `difflab reindex`
 * replaced the file meanwhile, so each must be idempotent and roll back on error. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "io/annotations.h"
#include "io/index.h"
#include "io/index_internal.h"

static dm_status prep(dm_index *ix, const char *sql, sqlite3_stmt **s, char *err)
{
    if (sqlite3_prepare_v2(ix->db, sql, -1, s, NULL) != SQLITE_OK)
        return dm_ix_sql_err(ix, err, "preparing a statement");
    return DM_OK;
}

/* Run a bound statement to completion and make it ready for the next bindings. */
static dm_status step_done(dm_index *ix, sqlite3_stmt *s, const char *what, char *err)
{
    int rc = sqlite3_step(s);
    dm_status st = rc == SQLITE_DONE ? DM_OK : dm_ix_sql_err(ix, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

static int bind_str(sqlite3_stmt *s, int i, const char *v)
{
    return v && *v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* An integer attribute: "12", "true"/"false" (git_dirty); anything else is kept as text. */
static int bind_int_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    if (!strcmp(v, "true") || !strcmp(v, "yes"))
        return sqlite3_bind_int(s, i, 1);
    if (!strcmp(v, "false") || !strcmp(v, "no"))
        return sqlite3_bind_int(s, i, 0);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*end && !errno)
        return sqlite3_bind_int64(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int bind_real_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    double x = strtod(v, &end);
    if (!*end)
        return sqlite3_bind_double(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static dm_status insert_run(dm_index *ix, const dm_runrec *r, const char *run_id,
                            const char *run_path, char *err)
{
    static const char *const text_attrs[] = {"name", "status", "created", "finished",
                                             "heartbeat", "git_commit"};
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix,
                        "INSERT INTO runs (run_id, name, status, created, finished, heartbeat, "
                        "git_commit, config_hash, group_hash, seed, git_dirty, host, cpu, path, "
                        "params_sha256, teacher, spec_yaml, n_params, wall_s, slurm_job_id, "
                        "slurm_array_job_id, slurm_array_task_id) VALUES "
                        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                        "?17, ?18, ?19, ?20, ?21, ?22)",
                        &s, err);
    if (st)
        return st;
    int rc = sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    for (int i = 0; i < 6; ++i)
        rc |= bind_str(s, 2 + i, dm_runrec_attr(r, text_attrs[i]));
    rc |= bind_str(s, 8, r->config_hash);
    rc |= bind_str(s, 9, r->group_hash);
    /* SQLite integers are signed 64-bit: a seed above 2^63 reads back negative. */
    rc |= sqlite3_bind_int64(s, 10, (sqlite3_int64)r->seed);
    rc |= bind_int_attr(s, 11, dm_runrec_attr(r, "git_dirty"));
    rc |= bind_str(s, 12, dm_runrec_attr(r, "host"));
    rc |= bind_str(s, 13, dm_runrec_attr(r, "cpu"));
    rc |= bind_str(s, 14, run_path ? run_path : dm_runrec_attr(r, "path"));
    rc |= bind_str(s, 15, dm_runrec_attr(r, "params_sha256"));
    rc |= bind_str(s, 16, dm_runrec_attr(r, "teacher"));
    rc |= bind_str(s, 17, r->config_yaml);
    rc |= bind_int_attr(s, 18, dm_runrec_attr(r, "n_params"));
    rc |= bind_real_attr(s, 19, dm_runrec_attr(r, "wall_s"));
    rc |= bind_int_attr(s, 20, dm_runrec_attr(r, "slurm_job_id"));   /* provenance.c, under Slurm */
    rc |= bind_int_attr(s, 21, dm_runrec_attr(r, "slurm_array_job_id"));
    rc |= bind_int_attr(s, 22, dm_runrec_attr(r, "slurm_array_task_id"));
    st = rc != SQLITE_OK ? dm_ix_sql_err(ix, err, "binding the runs row")
                         : step_done(ix, s, "inserting the runs row", err);
    sqlite3_finalize(s);
    return st;
}

typedef struct param_ctx {
    dm_index *ix;
    sqlite3_stmt *s;
    const char *run_id;
} param_ctx;

static dm_status insert_param(void *ctx, const dm_spec_kv *kv, char *err)
{
    param_ctx *c = ctx;
    int rc = sqlite3_bind_text(c->s, 1, c->run_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(c->s, 2, kv->key, -1, SQLITE_STATIC);
    switch (kv->type) {
    case DM_OPT_INT:
    case DM_OPT_BOOL: rc |= sqlite3_bind_int64(c->s, 3, kv->i); break;
    case DM_OPT_REAL: rc |= sqlite3_bind_double(c->s, 4, kv->r); break;
    default:
        if (kv->text)
            rc |= sqlite3_bind_text(c->s, 5, kv->text, -1, SQLITE_STATIC);
        break;
    }
    if (rc != SQLITE_OK)
        return dm_ix_sql_err(c->ix, err, "binding a params row");
    return step_done(c->ix, c->s, "inserting a params row", err);
}

static dm_status insert_series_evals(dm_index *ix, const dm_runrec *r, const char *run_id,
                                     char *err)
{
    sqlite3_stmt *m = NULL, *e = NULL;
    dm_status st;
    if ((st = prep(ix, "INSERT INTO metrics (run_id, key, step, wall_s, value) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)", &m, err)) ||
        (st = prep(ix, "INSERT INTO evals (run_id, metric, sampler, nfe, settings, n_samples, "
                       "value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &e, err)))
        goto out;
    for (size_t i = 0; i < r->n_series; ++i) {
        const dm_series *s = &r->series[i];
        for (size_t k = 0; k < s->n; ++k) {
            int rc = sqlite3_bind_text(m, 1, run_id, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_text(m, 2, s->name, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_int64(m, 3, s->step[k]);
            rc |= sqlite3_bind_double(m, 4, s->wall_s[k]); /* NaN is stored as NULL */
            rc |= sqlite3_bind_double(m, 5, s->value[k]);
            if (rc != SQLITE_OK) {
                st = dm_ix_sql_err(ix, err, "binding a metrics row");
                goto out;
            }
            if ((st = step_done(ix, m, "inserting a metrics row", err)))
                goto out;
        }
    }
    for (size_t i = 0; i < r->n_evals; ++i) {
        const dm_eval *v = &r->evals[i];
        int rc = sqlite3_bind_text(e, 1, run_id, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 2, v->metric, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 3, v->sampler, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 4, v->nfe);
        rc |= sqlite3_bind_text(e, 5, v->settings_json, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 6, v->n_samples);
        rc |= sqlite3_bind_double(e, 7, v->value);
        if (rc != SQLITE_OK) {
            st = dm_ix_sql_err(ix, err, "binding an evals row");
            goto out;
        }
        if ((st = step_done(ix, e, "inserting an evals row", err)))
            goto out;
    }
out:
    sqlite3_finalize(m);
    sqlite3_finalize(e);
    return st;
}

typedef struct upsert_ctx {
    const dm_runrec *r;
    const dm_spec *spec;
    const char *run_path, *run_id;
} upsert_ctx;

static const char *const run_deletes[] = {
    "DELETE FROM params WHERE run_id = ?1", "DELETE FROM metrics WHERE run_id = ?1",
    "DELETE FROM evals WHERE run_id = ?1", "DELETE FROM runs WHERE run_id = ?1"};

static dm_status delete_rows(dm_index *ix, const char *run_id, char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    for (size_t i = 0; i < sizeof run_deletes / sizeof *run_deletes && !st; ++i) {
        if ((st = prep(ix, run_deletes[i], &s, err)))
            break;
        if (sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC) != SQLITE_OK)
            st = dm_ix_sql_err(ix, err, "binding a run id");
        else
            st = step_done(ix, s, "deleting the old rows", err);
        sqlite3_finalize(s);
        s = NULL;
    }
    return st;
}

/* The run's tags and notes rows (inside the caller's transaction). */
static dm_status delete_annotations(dm_index *ix, const char *run_id, char *err)
{
    char *sql = sqlite3_mprintf("DELETE FROM tags WHERE run_id = %Q; DELETE FROM notes WHERE run_id = %Q", run_id,
                                run_id);
    if (!sql)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    const dm_status st = dm_ix_exec(ix, sql, "deleting the tags and notes", err);
    sqlite3_free(sql);
    return st;
}

/* One transaction: every row of the run deleted and written again. */
static dm_status upsert_op(dm_index *ix, void *ctx, char *err)
{
    const upsert_ctx *u = ctx;
    dm_status st = DM_OK;
    sqlite3_stmt *s = NULL;
    int began = 0;
    if ((st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err)))
        goto out;
    began = 1;
    if ((st = delete_rows(ix, u->run_id, err)) ||
        (st = insert_run(ix, u->r, u->run_id, u->run_path, err)))
        goto out;
    if (u->spec) {
        if ((st = prep(ix, "INSERT INTO params (run_id, key, int_value, real_value, text_value) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)", &s, err)))
            goto out;
        param_ctx c = {ix, s, u->run_id};
        if ((st = dm_spec_foreach(u->spec, insert_param, &c, err)) ||
            (st = dm_ix_params_view_tx(ix, dm_spec_get_schema(u->spec), err)))
            goto out;
    }
    if ((st = insert_series_evals(ix, u->r, u->run_id, err)))
        goto out;
    st = dm_ix_exec(ix, "COMMIT", "committing", err);
out:
    sqlite3_finalize(s);
    if (st && began)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_upsert_run(dm_index *ix, const dm_runrec *r, const dm_spec *spec,
                              const char *run_path, char *err)
{
    const char *run_id = dm_runrec_attr(r, "run_id");
    if (!run_id || !*run_id)
        return dm_err(err, DM_E_INPUT, "cannot index a run record without a run_id attribute");
    upsert_ctx u = {r, spec, run_path, run_id};
    dm_status st = dm_ix_write_op(ix, upsert_op, &u, err);
    if (st)
        dm_err_prefix(err, "indexing run %s", run_id);
    return st;
}

/* Every row of the run, its tags and notes too (an upsert keeps those). */
static dm_status delete_op(dm_index *ix, void *ctx, char *err)
{
    dm_status st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err);
    if (st)
        return st;
    if ((st = delete_annotations(ix, ctx, err)) || (st = delete_rows(ix, ctx, err)) ||
        (st = dm_ix_exec(ix, "COMMIT", "committing", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_delete_run(dm_index *ix, const char *run_id, char *err)
{
    dm_status st = dm_ix_write_op(ix, delete_op, (void *)run_id, err);
    if (st)
        dm_err_prefix(err, "removing run %s from the index", run_id);
    return st;
}

typedef struct status_ctx {
    const char *run_id, *status;
} status_ctx;

static dm_status status_op(dm_index *ix, void *ctx, char *err)
{
    /* finished = when the run stopped for good; a resumed (running) run has not. */
    static const char sql[] =
        "UPDATE runs SET status = ?2, heartbeat = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), "
        "finished = CASE WHEN ?2 IN ('finished', 'diverged', 'failed') "
        "THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHEN ?2 = 'running' THEN NULL "
        "ELSE finished END WHERE run_id = ?1";
    const status_ctx *c = ctx;
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix, sql, &s, err);
    if (st)
        goto out;
    if ((sqlite3_bind_text(s, 1, c->run_id, -1, SQLITE_STATIC) |
         sqlite3_bind_text(s, 2, c->status, -1, SQLITE_STATIC)) != SQLITE_OK) {
        st = dm_ix_sql_err(ix, err, "binding the status");
        goto out;
    }
    if ((st = step_done(ix, s, "updating the status", err)))
        goto out;
    if (sqlite3_changes(ix->db) == 0)
        st = dm_err(err, DM_E_NOTFOUND, "no run %s in the index %s", c->run_id, ix->path);
out:
    sqlite3_finalize(s);
    return st;
}

dm_status dm_index_set_status(dm_index *ix, const char *run_id, const char *status, char *err)
{
    status_ctx c = {run_id, status};
    return dm_ix_write_op(ix, status_op, &c, err);
}

typedef struct annot_ctx {
    const char *run_id;
    const dm_annotations *a;
} annot_ctx;

/* One transaction: the run's tags and notes rows deleted and written again. */
static dm_status annot_op(dm_index *ix, void *ctx, char *err)
{
    const annot_ctx *c = ctx;
    sqlite3_stmt *tag = NULL, *note = NULL;
    dm_status st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err);
    if (st)
        return st;
    if ((st = delete_annotations(ix, c->run_id, err)) ||
        (st = prep(ix, "INSERT INTO tags (run_id, key, value) VALUES (?1, ?2, ?3)", &tag, err)) ||
        (st = prep(ix, "INSERT INTO notes (run_id, n, time, text) VALUES (?1, ?2, ?3, ?4)", &note, err)))
        goto out;
    for (size_t i = 0; i < c->a->n_tags && !st; i++) {
        if ((sqlite3_bind_text(tag, 1, c->run_id, -1, SQLITE_STATIC) |
             sqlite3_bind_text(tag, 2, c->a->tags[i].key, -1, SQLITE_STATIC) |
             sqlite3_bind_text(tag, 3, c->a->tags[i].value, -1, SQLITE_STATIC)) != SQLITE_OK)
            st = dm_ix_sql_err(ix, err, "binding a tag");
        else
            st = step_done(ix, tag, "inserting a tag", err);
    }
    for (size_t i = 0; i < c->a->n_notes && !st; i++) {
        if ((sqlite3_bind_text(note, 1, c->run_id, -1, SQLITE_STATIC) | sqlite3_bind_int64(note, 2, (sqlite3_int64)i + 1) |
             sqlite3_bind_text(note, 3, c->a->notes[i].time, -1, SQLITE_STATIC) |
             sqlite3_bind_text(note, 4, c->a->notes[i].text, -1, SQLITE_STATIC)) != SQLITE_OK)
            st = dm_ix_sql_err(ix, err, "binding a note");
        else
            st = step_done(ix, note, "inserting a note", err);
    }
    if (!st)
        st = dm_ix_exec(ix, "COMMIT", "committing", err);
out:
    sqlite3_finalize(tag);
    sqlite3_finalize(note);
    if (st)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_put_annotations(dm_index *ix, const char *run_id, const dm_annotations *a, char *err)
{
    annot_ctx c = { run_id, a };
    dm_status st = dm_ix_write_op(ix, annot_op, &c, err);
    if (st)
        dm_err_prefix(err, "indexing the tags and notes of run %s", run_id);
    return st;
}
