/* commands.h — the verbs of the difflab program. Each returns a dm_status with its message in err;
 * main prints it and maps it to the exit code. */
#ifndef DM_CLI_COMMANDS_H
#define DM_CLI_COMMANDS_H

#include <stdio.h>

#include "core/status.h"
#include "io/index.h"

#define DM_CLI_MAX_ARGS 256

typedef struct dm_cli {
    const char *results;
    int new_repeat;
    dm_query_fmt fmt;
    FILE *out;
    const char *args[DM_CLI_MAX_ARGS];   /* positional: args[0] is the verb */
    int n_args;
    const char *sampler, *steps;         /* sample: --sampler NAME, --steps N */
    const char **sets;                   /* --set key=value */
    int n_sets;
    /* sweep NAME --launcher slurm: --partition, --time, --cpus, --max-parallel (NULL: not given) */
    const char *launcher, *partition, *time, *cpus, *max_parallel;
    int quick;                           /* sweep SWEEP.yaml --quick: the sweep's quick: variant */
    const char *grid, *sweep_name;       /* sweep --grid SPEC KEY=V1,V2 ... [--name NAME] */
    const char *table_def;               /* table: --def FILE.yaml */
    /* The other options (table's, runs'), (name, value) in command-line order ("true" for a
     * flag); main has checked that each is an option of the command. */
    const char *kv[DM_CLI_MAX_ARGS][2];
    int n_kv;
} dm_cli;

/* A command: its name, usage line and one line of help, and the function that runs it. */
typedef struct dm_cli_cmd {
    const char *name, *usage, *doc;
    dm_status (*fn)(dm_cli *cli, char *err);
} dm_cli_cmd;

/* Every command, ended by an entry whose name is NULL (commands.c). */
extern const dm_cli_cmd dm_cli_cmds[];

/* The index of cli->results (readonly: as `difflab query` opens it). */
dm_status dm_cli_open_index(const dm_cli *cli, int readonly, dm_index **ix, char *err);

/* difflab table (cmd_table.c). */
dm_status dm_cli_table(dm_cli *cli, char *err);
/* difflab report (cmd_report.c). */
dm_status dm_cli_report(dm_cli *cli, char *err);
/* difflab runs (cmd_runs.c). */
dm_status dm_cli_runs(dm_cli *cli, char *err);

#endif
