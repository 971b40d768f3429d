/* sweep_status.c — the state of a sweep's lines from their run files: `difflab sweep status`
 * (which also brings the index's rows of the sweep's runs up to date) and the unfinished lines an
 * array launcher submits. */
#define _GNU_SOURCE 1   /* asprintf */
#include "train/sweep.h"
#include "train/sweep_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/index.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "io/spec.h"
#include "train/schema.h"

void dm_sweep_run_status(dm_runfile_vetter *v, const char *results, const char *id, char *status, size_t n, char *msg, size_t nmsg,
                         dm_runrec *keep)
{
    char h5[DM_PATH_SIZE], e[DM_ERR_SIZE];
    dm_runrec rec;
    status[0] = 0;
    if (msg)
        msg[0] = 0;
    if (dm_path_fmt(h5, sizeof h5, e, "%s/runs/%s/run.h5", results, id) || access(h5, F_OK) != 0)
        return;
    dm_runrec_init(&rec);
    if (dm_runstore_read_file(v, h5, &rec, e) == DM_OK) {
        const char *s = dm_runrec_attr(&rec, "status"), *m = dm_runrec_attr(&rec, "error");
        snprintf(status, n, "%s", s ? s : "unknown");
        if (msg && m)
            snprintf(msg, nmsg, "%s", m);
        if (keep) {
            *keep = rec;
            return;
        }
    } else {
        snprintf(status, n, "unreadable");
        if (msg)
            snprintf(msg, nmsg, "%s", e);
    }
    dm_runrec_free(&rec);
}

/* Bring the index's row of run `id` (line of sweep `name`) up to date from its record, unless the
 * row already has the record's status, heartbeat and wall time. The runs may have been written on
 * other hosts (Slurm) that never touch the index. *n_synced counts the rows written. */
static dm_status sync_run(dm_index *ix, sqlite3_stmt *get, const char *results, const char *name, const char *id,
                          const dm_runrec *rec, long *n_synced, char *err)
{
    const char *status = dm_runrec_attr(rec, "status"), *beat = dm_runrec_attr(rec, "heartbeat"),
               *wall = dm_runrec_attr(rec, "wall_s");
    int same = 0;
    sqlite3_bind_text(get, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(get) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(get, 0), *b = (const char *)sqlite3_column_text(get, 1);
        same = s && b && status && beat && strcmp(s, status) == 0 && strcmp(b, beat) == 0 &&
               (!wall || (sqlite3_column_type(get, 2) == SQLITE_FLOAT && sqlite3_column_double(get, 2) == strtod(wall, NULL)));
    }
    sqlite3_reset(get);
    if (same)
        return DM_OK;
    char origin[DM_PATH_SIZE], dir[DM_PATH_SIZE], abs[PATH_MAX];
    dm_spec *spec = NULL;
    dm_status st;
    if ((st = dm_path_fmt(dir, sizeof dir, err, "%s/runs/%s", results, id)) ||
        (st = dm_path_fmt(origin, sizeof origin, err, "%s/run.h5/config", dir)))
        return st;
    /* As `difflab sample` does: the params come from the spec recorded in the run. */
    if (rec->config_yaml &&
        (st = dm_spec_load_text(&dm_spec_schema, rec->config_yaml, origin, 0, NULL, &spec, err)))
        return st;
    st = dm_index_upsert_run(ix, rec, spec, realpath(dir, abs) ? abs : dir, err);
    dm_spec_free(spec);
    if (!st) {
        char *sql = sqlite3_mprintf("INSERT OR IGNORE INTO sweep_runs (sweep, run_id) VALUES (%Q, %Q)", name, id);
        if (!sql || sqlite3_exec(dm_index_db(ix), sql, NULL, NULL, NULL) != SQLITE_OK)
            st = dm_err(err, DM_E_IO, "cannot record run %s in sweep %s of the index", id, name);
        sqlite3_free(sql);
    }
    *n_synced += !st;
    return st;
}

dm_status dm_sweep_status(const char *results, const char *name, FILE *out, char *err)
{
    long n = 0, n_synced = 0;
    dm_status st = dm_sweep_n_lines(results, name, &n, err);
    if (st)
        return st;
    char ipath[DM_PATH_SIZE];
    dm_index *ix = NULL;
    sqlite3_stmt *get = NULL;
    if ((st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", results)) ||
        (st = dm_index_open(ipath, 0, &ix, err)))
        return st;
    if (sqlite3_prepare_v2(dm_index_db(ix), "SELECT status, heartbeat, wall_s FROM runs WHERE run_id = ?1", -1, &get,
                           NULL) != SQLITE_OK) {
        st = dm_err(err, DM_E_IO, "%s: %s", ipath, sqlite3_errmsg(dm_index_db(ix)));
        dm_index_close(ix);
        return st;
    }
    static const char *const states[] = { "queued", "running", "finished", "failed", "diverged", "interrupted", NULL };
    long count[6] = { 0 };
    char id[256], status[32], msg[DM_ERR_SIZE];
    char **failed = dm_calloc((size_t)n + 1, sizeof *failed);
    if (!failed)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    long nf = 0;
    dm_runfile_vetter vetter = DM_RUNFILE_VETTER_INIT;
    for (long i = 0; i < n && !st; i++) {
        if ((st = dm_sweep_manifest_line(results, name, i, id, sizeof id, NULL, err)))
            break;
        dm_runrec rec;
        dm_runrec_init(&rec);
        dm_sweep_run_status(&vetter, results, id, status, sizeof status, msg, sizeof msg, &rec);
        if (dm_runrec_attr(&rec, "run_id"))
            st = sync_run(ix, get, results, name, id, &rec, &n_synced, err);
        dm_runrec_free(&rec);
        int k = 0;
        if (!status[0])
            k = 0;
        else if (strcmp(status, "running") == 0)
            k = dm_runstore_is_live(results, id) ? 1 : 5;   /* no live process holds it: it died */
        else if (strcmp(status, "finished") == 0)
            k = 2;
        else if (strcmp(status, "failed") == 0 || strcmp(status, "unreadable") == 0)
            k = 3;
        else if (strcmp(status, "diverged") == 0)
            k = 4;
        else
            k = 5;
        count[k]++;
        if (k == 3 || k == 4) {
            if (asprintf(&failed[nf++], "  line %ld %s (%s): %s", i, id, status, msg[0] ? msg : "no message") < 0)
                failed[--nf] = NULL;
        }
    }
    if (!st) {
        fprintf(out, "sweep %s: %ld runs:", name, n);
        for (int k = 0; states[k]; k++)
            fprintf(out, " %ld %s%s", count[k], states[k], states[k + 1] ? "," : "\n");
        for (long i = 0; i < nf; i++)
            fprintf(out, "%s\n", failed[i]);
        if (n_synced)
            fprintf(out, "index: %ld run%s brought up to date from the run files\n", n_synced, n_synced == 1 ? "" : "s");
    }
    dm_runfile_vetter_end(&vetter);
    sqlite3_finalize(get);
    dm_index_close(ix);
    for (long i = 0; i < nf; i++)
        free(failed[i]);
    dm_free(failed);
    return st;
}

dm_status dm_sweep_unfinished(const char *results, const char *name, long **lines, long *n_lines, long *n_total,
                              long *n_failed, char *err)
{
    long n = 0;
    *lines = NULL;
    *n_lines = *n_failed = 0;
    dm_status st = dm_sweep_n_lines(results, name, &n, err);
    if (st)
        return st;
    *n_total = n;
    long *l = dm_calloc((size_t)n + 1, sizeof *l);
    if (!l)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    const char *retry = getenv("RETRY");
    const int retry_failed = retry && strcmp(retry, "1") == 0;
    char id[256], status[32], p[DM_PATH_SIZE];
    dm_runfile_vetter vetter = DM_RUNFILE_VETTER_INIT;
    for (long i = 0; i < n && !st; i++) {
        if ((st = dm_path_fmt(p, sizeof p, err, "%s/sweeps/%s/done/%ld", results, name, i)))
            break;
        if (access(p, F_OK) == 0)
            continue;
        if ((st = dm_sweep_manifest_line(results, name, i, id, sizeof id, NULL, err)))
            break;
        dm_sweep_run_status(&vetter, results, id, status, sizeof status, NULL, 0, NULL);
        if (strcmp(status, "finished") == 0 || strcmp(status, "diverged") == 0)
            continue;
        if (strcmp(status, "failed") == 0 && !retry_failed) {   /* as `sweep run`: only with RETRY=1 */
            ++*n_failed;
            continue;
        }
        l[(*n_lines)++] = i;
    }
    dm_runfile_vetter_end(&vetter);
    if (st) {
        dm_free(l);
        *n_lines = 0;
        return st;
    }
    *lines = l;
    return DM_OK;
}
