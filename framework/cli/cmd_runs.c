/* cmd_runs.c — `difflab runs`: the runs of the index, filtered, sorted, with chosen columns.
 *
 *   difflab runs [NAME|ID-PREFIX ...] [--status S[,S]] [--sweep NAME] [--tag KEY[=VALUE]]
 *                [--where SQL] [--cols KEY[,KEY]] [--sort [-]COL[,[-]COL]] [--csv|--json]
 *
 * Columns: run_id, name, status (a run whose record says running but whose lock no process
 * holds is "dead"), seed, sweep (the sweeps that list it), created, wall_s, loss (the last point
 * of the series), sampler (its spec's), nfe, swd, mmd2, fd of its main sample set (run_summary:
 * the run's own sampler with its own settings; empty when that sampler has no evals, never
 * another sampler's added later by `difflab sample`), then the --cols: tag.KEY (the run's tag), a
 * spec key (its value), an eval metric (the main sample set's eval of it) or a training series
 * (its last point), looked up in that order in the index. The table output rounds numbers (4 significant digits); --csv and
 * --json give them as stored. Rows are sorted by --sort, then by created and run_id. */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "report/runlist.h"

#define MAX_COLS 64

typedef struct col {
    char name[128];
    char *expr;     /* SQL over runs r and run_summary s (sqlite3_mprintf'd) */
    dm_runlist_kind kind;  /* how the table output formats it */
} col;

typedef struct runs_q {
    col cols[MAX_COLS];
    int n;
} runs_q;

static dm_status add_col(runs_q *q, const char *name, dm_runlist_kind kind, char *expr, char *err)
{
    if (!expr)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    if (q->n >= MAX_COLS) {
        sqlite3_free(expr);
        return dm_err(err, DM_E_INPUT, "runs: more than %d columns", MAX_COLS);
    }
    snprintf(q->cols[q->n].name, sizeof q->cols[q->n].name, "%s", name);
    q->cols[q->n].expr = expr;
    q->cols[q->n++].kind = kind;
    return DM_OK;
}

/* Whether `sql` (one %Q for key) finds a row in the index. */
static int exists(sqlite3 *db, const char *sql, const char *key)
{
    char *text = sqlite3_mprintf(sql, key);
    sqlite3_stmt *st = NULL;
    int found = text && sqlite3_prepare_v2(db, text, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    sqlite3_free(text);
    return found;
}

static dm_status default_cols(runs_q *q, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < dm_runlist_n_cols && !st; i++)
        st = add_col(q, dm_runlist_cols[i].name, dm_runlist_cols[i].kind,
                     sqlite3_mprintf("%s", dm_runlist_cols[i].expr), err);
    return st;
}

/* --cols KEY[,KEY]: a spec key, an eval metric or a training series, in that order. */
static dm_status extra_cols(runs_q *q, sqlite3 *db, const char *list, char *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        dm_status st;
        for (int i = 0; i < q->n; i++)
            if (strcmp(q->cols[i].name, k) == 0)
                return dm_err(err, DM_E_INPUT, "runs --cols: '%s' is a column already", k);
        if (strncmp(k, "tag.", 4) == 0 && k[4])
            st = add_col(q, k, DM_RUNLIST_TEXT,
                         sqlite3_mprintf("(SELECT t.value FROM tags t WHERE t.run_id = r.run_id AND t.key = %Q)", k + 4),
                         err);
        else if (exists(db, "SELECT 1 FROM params WHERE key = %Q LIMIT 1", k))
            st = add_col(q, k, DM_RUNLIST_TEXT,
                         sqlite3_mprintf("(SELECT coalesce(p.int_value, p.real_value, p.text_value) FROM params p"
                                         " WHERE p.run_id = r.run_id AND p.key = %Q)", k), err);
        else if (exists(db, "SELECT 1 FROM evals WHERE metric = %Q LIMIT 1", k))
            st = add_col(q, k, DM_RUNLIST_NUM, sqlite3_mprintf(DM_RUNLIST_MAIN_EVAL("%Q"), k), err);
        else if (exists(db, "SELECT 1 FROM metrics WHERE key = %Q LIMIT 1", k))
            st = add_col(q, k, DM_RUNLIST_NUM,
                         sqlite3_mprintf("(SELECT value FROM last_metrics m WHERE m.run_id = r.run_id AND m.key = %Q)", k),
                         err);
        else
            st = dm_err(err, DM_E_INPUT, "runs --cols: '%s' is not a spec key, an eval metric or a training "
                        "series of any run in the index (`difflab keys` lists the spec keys; `difflab query "
                        "\"SELECT DISTINCT metric FROM evals\"` the metrics)", k);
        if (st)
            return st;
    }
    return DM_OK;
}

/* Appends to *sql (an sqlite3 string) the text fmt; frees the old one. After a failure *sql is
 * NULL and stays NULL (every later append fails too), so one check at the end is enough. */
static int append(char **sql, const char *fmt, ...); /* sqlite3_mprintf formats: %Q, %w */
static int append(char **sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *more = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    char *joined = more && *sql ? sqlite3_mprintf("%s%s", *sql, more) : NULL;
    sqlite3_free(more);
    sqlite3_free(*sql);
    *sql = joined;
    return joined != NULL;
}

static const char *const statuses[] = { "running", "dead", "finished", "failed", "diverged", "interrupted", NULL };

/* The filters: *where over runs r (names, --sweep, --where), *outer over the columns (--status
 * on c2, the status shown). */
static dm_status filters(const dm_cli *cli, sqlite3 *db, char **where, char **outer, char *err)
{
    if (!append(where, " WHERE 1") || !append(outer, " WHERE 1"))
        return dm_err(err, DM_E_NOMEM, "out of memory");
    if (cli->n_args > 1) {
        append(where, " AND (0");
        for (int i = 1; i < cli->n_args; i++)
            append(where, " OR substr(r.name, 1, %d) = %Q OR substr(r.run_id, 1, %d) = %Q",
                   (int)strlen(cli->args[i]), cli->args[i], (int)strlen(cli->args[i]), cli->args[i]);
        append(where, ")");
    }
    for (int i = 0; i < cli->n_kv; i++) {
        const char *k = cli->kv[i][0], *v = cli->kv[i][1];
        if (strcmp(k, "sweep") == 0) {
            if (!exists(db, "SELECT 1 FROM sweep_runs WHERE sweep = %Q LIMIT 1", v))
                return dm_err(err, DM_E_INPUT, "runs --sweep: no sweep '%s' in the index", v);
            append(where, " AND r.run_id IN (SELECT run_id FROM sweep_runs WHERE sweep = %Q)", v);
        } else if (strcmp(k, "tag") == 0) {
            const char *eq = strchr(v, '=');
            char key[128];
            snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - v) : 0, v);
            if (eq)
                append(where, " AND r.run_id IN (SELECT run_id FROM tags WHERE key = %Q AND value = %Q)", key, eq + 1);
            else
                append(where, " AND r.run_id IN (SELECT run_id FROM tags WHERE key = %Q)", v);
        } else if (strcmp(k, "where") == 0) {
            append(where, " AND (%s)", v);
        } else if (strcmp(k, "status") == 0) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            append(outer, " AND (0");
            for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                int ok = 0;
                for (int j = 0; statuses[j]; j++)
                    ok |= strcmp(statuses[j], w) == 0;
                if (!ok)
                    return dm_err(err, DM_E_INPUT, "runs --status: unknown status '%s'; valid: running, dead, "
                                  "finished, failed, diverged, interrupted", w);
                append(outer, " OR c2 = %Q", w);
            }
            append(outer, ")");
        }
    }
    return *where && *outer ? DM_OK : dm_err(err, DM_E_NOMEM, "out of memory");
}

/* ORDER BY from --sort ([-]COL, COL a column), then created and run_id. */
static dm_status order(const dm_cli *cli, const runs_q *q, char **sql, char *err)
{
    append(sql, " ORDER BY");
    for (int i = 0; i < cli->n_kv; i++) {
        if (strcmp(cli->kv[i][0], "sort") != 0)
            continue;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", cli->kv[i][1]);
        for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            const int desc = w[0] == '-';
            const char *name = w + desc;
            int c = 0;
            while (c < q->n && strcmp(q->cols[c].name, name) != 0)
                c++;
            if (c == q->n)
                return dm_err(err, DM_E_INPUT, "runs --sort: '%s' is not a column (the columns: run_id, name, "
                              "status, seed, sweep, created, wall_s, loss, sampler, nfe, swd, mmd2, fd and the "
                              "--cols; -COL sorts descending)", name);
            /* NULLs last either way */
            append(sql, " c%d IS NULL, c%d%s,", c, c, desc ? " DESC" : "");
        }
    }
    append(sql, " c5, c0");
    return *sql ? DM_OK : dm_err(err, DM_E_NOMEM, "out of memory");
}

dm_status dm_cli_runs(dm_cli *cli, char *err)
{
    runs_q q = { .n = 0 };
    dm_index *ix = NULL;
    char *where = sqlite3_mprintf("%s", ""), *outer = sqlite3_mprintf("%s", ""), *sql = sqlite3_mprintf("%s", "");
    dm_status st = !where || !outer || !sql ? dm_err(err, DM_E_NOMEM, "out of memory") : dm_cli_open_index(cli, 1, &ix, err);
    if (st)
        goto out;
    sqlite3 *db = dm_index_db(ix);
    if ((st = dm_runlist_register(db, cli->results, err)) || (st = default_cols(&q, err)))
        goto out;
    for (int i = 0; i < cli->n_kv && !st; i++)
        if (strcmp(cli->kv[i][0], "cols") == 0)
            st = extra_cols(&q, db, cli->kv[i][1], err);
    if (st || (st = filters(cli, db, &where, &outer, err)))
        goto out;
    /* Inner: raw values c0..; outer: the --status filter, names and (table) rounding. */
    append(&sql, "SELECT");
    for (int c = 0; c < q.n; c++) {
        const char *fmt = "%s c%d AS \"%w\"";
        if (cli->fmt == DM_QUERY_TABLE && q.cols[c].kind == DM_RUNLIST_NUM)
            fmt = "%s iif(c%d IS NULL, NULL, printf('%%.4g', c%d)) AS \"%w\"";
        else if (cli->fmt == DM_QUERY_TABLE && q.cols[c].kind == DM_RUNLIST_WALL)
            fmt = "%s iif(c%d IS NULL, NULL, printf('%%.1f', c%d)) AS \"%w\"";
        if (strstr(fmt, "iif"))
            append(&sql, fmt, c ? "," : "", c, c, q.cols[c].name);
        else
            append(&sql, fmt, c ? "," : "", c, q.cols[c].name);
    }
    append(&sql, " FROM (SELECT");
    for (int c = 0; c < q.n; c++)
        append(&sql, "%s %s AS c%d", c ? "," : "", q.cols[c].expr, c);
    append(&sql, " FROM runs r LEFT JOIN run_summary s ON s.run_id = r.run_id%s)%s", where, outer);
    if (!sql) {
        st = dm_err(err, DM_E_NOMEM, "out of memory");
        goto out;
    }
    if ((st = order(cli, &q, &sql, err)))
        goto out;
    st = dm_index_query(ix, sql, cli->fmt, cli->out, err);
out:
    for (int c = 0; c < q.n; c++)
        sqlite3_free(q.cols[c].expr);
    sqlite3_free(where);
    sqlite3_free(outer);
    sqlite3_free(sql);
    dm_index_close(ix);
    return st;
}
