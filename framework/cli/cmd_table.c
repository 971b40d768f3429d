/* cmd_table.c — `difflab table`: an ablation table from the index (read-only).
 *
 *   difflab table [--def FILE.yaml] --rows KEY[,KEY] [--cols KEY] --metric NAME [--sweep NAME]
 *                 [--where SQL] [--agg last|mean|min|max] [--err std|sem]
 *                 [--sampler NAME[,NAME]] [--nfe N[,N]] [--settings TEXT] [--format md|latex|csv]
 *                 [--merge KEY[,KEY]] [--floor]
 *
 * A --def file sets the same options (YAML mapping); the command line overrides it. Notes go to
 * stderr: rows split by config (the keys their runs differ in), columns without a floor, runs
 * whose several evals one cell reduced. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "report/table.h"

dm_status dm_cli_table(dm_cli *cli, char *err)
{
    dm_table_def d;
    dm_table *t = NULL;
    dm_index *ix = NULL;
    dm_status st = DM_OK;
    dm_table_def_init(&d);
    if (cli->n_args > 1) {
        st = dm_err(err, DM_E_INPUT, "table: unexpected argument '%s' (a definition file is given "
                    "with --def FILE.yaml)", cli->args[1]);
        goto out;
    }
    if (cli->table_def && (st = dm_table_def_load(&d, cli->table_def, err)))
        goto out;
    if (cli->fmt == DM_QUERY_CSV && (st = dm_table_def_set(&d, "format", "csv", "--csv", err)))
        goto out;
    if (cli->sampler && (st = dm_table_def_set(&d, "sampler", cli->sampler, "--sampler", err)))
        goto out;
    for (int i = 0; i < cli->n_kv; ++i) {
        if (strcmp(cli->kv[i][0], "def") == 0) /* read above */
            continue;
        char origin[64];
        snprintf(origin, sizeof origin, "--%s", cli->kv[i][0]);
        if ((st = dm_table_def_set(&d, cli->kv[i][0], cli->kv[i][1], origin, err)))
            goto out;
    }
    if ((st = dm_cli_open_index(cli, 1, &ix, err)) || (st = dm_table_build(ix, &d, &t, err)))
        goto out;
    st = dm_table_write(t, d.fmt, cli->out, err);
    for (size_t i = 0; !st && i < t->n_notes; ++i)
        fprintf(stderr, "difflab: note: %s\n", t->notes[i]);
    if (!st && t->n_multi)
        fprintf(stderr, "difflab: note: %zu run%s had several matching evals in one cell (other "
                "NFE or settings), reduced by --agg %s; --nfe, --settings or nfe as a key keep "
                "them apart\n", t->n_multi, t->n_multi == 1 ? "" : "s",
                (const char *const[]){"last", "mean", "min", "max"}[t->agg]);
out:
    dm_table_free(t);
    dm_index_close(ix);
    dm_table_def_free(&d);
    return st;
}
