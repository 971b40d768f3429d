#include "cli/commands.h"

#include <sqlite3.h>
#include <string.h>

#include "core/alloc.h"
#include "io/spec.h"
#include "train/run.h"
#include "train/schema.h"

static dm_status cmd_run(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "run: missing SPEC.yaml (usage: difflab run SPEC.yaml [key.path=value ...])");
    /* Overrides: positional key=value after the spec, then --set ones (later wins). */
    const int n_pos = cli->n_args - 2, n = n_pos + cli->n_sets;
    const char **over = dm_calloc((size_t)n + 1, sizeof *over);
    if (!over)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (int i = 0; i < n_pos; i++)
        over[i] = cli->args[2 + i];
    for (int i = 0; i < cli->n_sets; i++)
        over[n_pos + i] = cli->sets[i];
    dm_run_cfg cfg = { .results = cli->results, .new_repeat = cli->new_repeat, .out = cli->out };
    dm_status st = dm_run_spec_file(&cfg, cli->args[1], n, over, err);
    dm_free(over);
    return st;
}

static dm_status cmd_keys(dm_cli *cli, char *err)
{
    return dm_spec_print_keys(&dm_spec_schema, cli->n_args > 1 ? cli->args[1] : NULL, cli->out, err);
}

static dm_status open_index(dm_cli *cli, dm_index **ix, char *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.sqlite", cli->results);
    return dm_index_open(path, 1, ix, err);
}

static dm_status cmd_query(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "query: missing SQL (usage: difflab query \"SELECT ...\" [--csv|--json])");
    dm_index *ix = NULL;
    dm_status st = open_index(cli, &ix, err);
    if (!st)
        st = dm_index_query(ix, cli->args[1], cli->fmt, cli->out, err);
    dm_index_close(ix);
    return st;
}

static dm_status cmd_runs(dm_cli *cli, char *err)
{
    static const char sql[] =
        "SELECT r.run_id, r.status, r.seed, r.created, printf('%.1f', r.wall_s) AS wall_s,"
        " (SELECT printf('%.4g', value) FROM last_metrics m WHERE m.run_id = r.run_id AND m.key = 'loss') AS loss,"
        " (SELECT printf('%.4g', value) FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'swd'"
        "   AND e.sampler <> 'noise' ORDER BY e.rowid DESC LIMIT 1) AS swd,"
        " (SELECT printf('%.4g', value) FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'mmd2'"
        "   AND e.sampler <> 'noise' ORDER BY e.rowid DESC LIMIT 1) AS mmd2"
        " FROM runs r ORDER BY r.created, r.run_id";
    dm_index *ix = NULL;
    dm_status st = open_index(cli, &ix, err);
    if (!st)
        st = dm_index_query(ix, sql, cli->fmt, cli->out, err);
    dm_index_close(ix);
    return st;
}

/* The one run whose id equals or starts with `pat`. */
static dm_status resolve_run(dm_index *ix, const char *pat, char *id, size_t n, char *err)
{
    sqlite3_stmt *q = NULL;
    dm_status st = DM_OK;
    int found = 0;
    if (sqlite3_prepare_v2(dm_index_db(ix),
                           "SELECT run_id FROM runs WHERE run_id = ?1 OR substr(run_id, 1, length(?1)) = ?1"
                           " ORDER BY run_id = ?1 DESC, run_id LIMIT 2",
                           -1, &q, NULL) != SQLITE_OK)
        return dm_err(err, DM_E_IO, "index: %s", sqlite3_errmsg(dm_index_db(ix)));
    sqlite3_bind_text(q, 1, pat, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (found == 1 && strcmp(id, pat) != 0) {
            st = dm_err(err, DM_E_INPUT, "run '%s' is ambiguous: %s, %s, ...", pat, id, r);
            goto out;
        }
        if (found == 0)
            snprintf(id, n, "%s", r);
        found++;
    }
    if (!found)
        st = dm_err(err, DM_E_NOTFOUND, "no run '%s' in the index (difflab runs lists them)", pat);
out:
    sqlite3_finalize(q);
    return st;
}

static dm_status cmd_show(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "show: missing RUN (usage: difflab show RUN)");
    dm_index *ix = NULL;
    char id[512];
    dm_status st = open_index(cli, &ix, err);
    if (st || (st = resolve_run(ix, cli->args[1], id, sizeof id, err)))
        goto out;
    struct { const char *title, *sql; } parts[] = {
        { "run", "SELECT run_id, name, status, seed, config_hash, group_hash, created, finished, wall_s,"
                 " git_commit, git_dirty, host, cpu, n_params, params_sha256, path FROM runs WHERE run_id = %Q" },
        { "params", "SELECT key, coalesce(int_value, real_value, text_value) AS value FROM params"
                    " WHERE run_id = %Q ORDER BY key" },
        { "last_metrics", "SELECT key, step, printf('%%.6g', value) AS value FROM last_metrics WHERE run_id = %Q ORDER BY key" },
        { "evals", "SELECT metric, sampler, nfe, n_samples, printf('%%.6g', value) AS value, settings FROM evals"
                   " WHERE run_id = %Q ORDER BY sampler, metric" },
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char *sql = sqlite3_mprintf(parts[i].sql, id);
        if (!sql) {
            st = dm_err(err, DM_E_NOMEM, "out of memory");
            goto out;
        }
        /* JSON: one object with an array per part; otherwise titled sections. */
        if (cli->fmt == DM_QUERY_JSON)
            fprintf(cli->out, "%s\"%s\": ", i ? ",\n" : "{\n", parts[i].title);
        else
            fprintf(cli->out, "%s## %s\n", i ? "\n" : "", parts[i].title);
        st = dm_index_query(ix, sql, cli->fmt, cli->out, err);
        sqlite3_free(sql);
        if (st)
            goto out;
    }
    if (cli->fmt == DM_QUERY_JSON)
        fprintf(cli->out, "}\n");
out:
    dm_index_close(ix);
    return st;
}

typedef struct verb {
    const char *name;
    dm_status (*fn)(dm_cli *cli, char *err);
} verb;

static const verb verbs[] = {
    { "run", cmd_run }, { "keys", cmd_keys }, { "runs", cmd_runs },
    { "show", cmd_show }, { "query", cmd_query }, { NULL, NULL },
};

dm_status dm_cli_dispatch(dm_cli *cli, char *err)
{
    for (const verb *v = verbs; v->name; v++)
        if (strcmp(v->name, cli->args[0]) == 0)
            return v->fn(cli, err);
    return dm_err(err, DM_E_INPUT, "unknown command '%s'; valid: run, keys, runs, show, query", cli->args[0]);
}
