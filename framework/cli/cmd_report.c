/* cmd_report.c — `difflab report [RUN ...] [--sweep NAME ...] [--def FILE.yaml ...] [--out DIR]`:
 * the static HTML report (report/report.h), by default in RESULTS/report. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/path.h"
#include "report/report.h"

dm_status dm_cli_report(dm_cli *cli, char *err)
{
    dm_report_opts o = { .results = cli->results, .log = cli->out };
    char out[DM_PATH_SIZE];
    dm_status st;
    for (int i = 1; i < cli->n_args; i++) {
        if (o.n_runs >= DM_REPORT_MAX_ITEMS)
            return dm_err(err, DM_E_INPUT, "report: more than %d runs named", DM_REPORT_MAX_ITEMS);
        o.runs[o.n_runs++] = cli->args[i];
    }
    const char *out_dir = NULL;
    for (int i = 0; i < cli->n_kv; i++) {
        const char *k = cli->kv[i][0], *v = cli->kv[i][1];
        if (strcmp(k, "out") == 0) {
            out_dir = v;
        } else if (o.n_sweeps >= DM_REPORT_MAX_ITEMS || o.n_defs >= DM_REPORT_MAX_ITEMS) {
            return dm_err(err, DM_E_INPUT, "report: more than %d sweeps or definitions", DM_REPORT_MAX_ITEMS);
        } else if (strcmp(k, "sweep") == 0) {
            o.sweeps[o.n_sweeps++] = v;
        } else if (strcmp(k, "def") == 0) {
            o.defs[o.n_defs++] = v;
        }
    }
    if (!*(out_dir ? out_dir : "x"))
        return dm_err(err, DM_E_INPUT, "report --out: an empty folder name");
    if (!out_dir) {
        if ((st = dm_path_fmt(out, sizeof out, err, "%s/report", cli->results)))
            return st;
        out_dir = out;
    }
    o.out = out_dir;
    if ((st = dm_report_write(&o, err)))
        return st;
    fprintf(cli->out, "report written to %s/index.html\n", out_dir);
    return DM_OK;
}
