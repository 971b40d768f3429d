#include "cli/commands.h"

#include <sqlite3.h>
#include <string.h>

#include "core/alloc.h"
#include "io/spec.h"
#include "train/run.h"
#include "train/sample.h"
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

static dm_status cmd_sample(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT,
                      "sample: missing RUN or SPEC (usage: difflab sample RUN|SPEC [--sampler NAME] [--steps N] [key=value ...])");
    const int n_pos = cli->n_args - 2, n = n_pos + cli->n_sets;
    const char **over = dm_calloc((size_t)n + 1, sizeof *over);
    if (!over)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (int i = 0; i < n_pos; i++)
        over[i] = cli->args[2 + i];
    for (int i = 0; i < cli->n_sets; i++)
        over[n_pos + i] = cli->sets[i];
    dm_sample_cfg cfg = { .results = cli->results, .sampler = cli->sampler, .steps = cli->steps, .out = cli->out };
    dm_status st = dm_sample_cmd(&cfg, cli->args[1], n, over, err);
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

static dm_status cmd_show(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "show: missing RUN (usage: difflab show RUN)");
    dm_index *ix = NULL;
    char id[512];
    dm_status st = open_index(cli, &ix, err);
    if (st || (st = dm_index_find_run(ix, cli->args[1], id, sizeof id, err)))
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
    { "run", cmd_run }, { "sample", cmd_sample }, { "keys", cmd_keys }, { "runs", cmd_runs },
    { "show", cmd_show }, { "query", cmd_query }, { "table", dm_cli_table }, { NULL, NULL },
};

dm_status dm_cli_dispatch(dm_cli *cli, char *err)
{
    for (const verb *v = verbs; v->name; v++)
        if (strcmp(v->name, cli->args[0]) == 0)
            return v->fn(cli, err);
    return dm_err(err, DM_E_INPUT, "unknown command '%s'; valid: run, sample, keys, runs, show, query, table", cli->args[0]);
}
