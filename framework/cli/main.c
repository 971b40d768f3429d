/* difflab — the command line.
 *
 *   difflab run SPEC.yaml [key.path=value ...] [--new]
 *   difflab sample RUN|SPEC [--sampler NAME] [--steps N] [key=value ...]
 *   difflab keys [SECTION|PLUGIN]
 *   difflab runs
 *   difflab show RUN
 *   difflab query "SQL" [--csv|--json]
 *   difflab sweep SWEEP.yaml | sweep NAME --launcher slurm [...] | sweep status NAME | sweep run NAME LINE
 *   difflab reindex
 *   difflab table --rows KEY[,KEY] [--cols KEY] --metric NAME [--sweep NAME] [--where SQL]
 *                 [--agg last|mean|min|max] [--err std|sem] [--sampler S[,S]] [--nfe N[,N]]
 *                 [--settings TEXT] [--format md|latex|csv] [--def FILE.yaml] [--merge KEY[,KEY]]
 *                 [--floor]
 *
 * Global options: --results DIR (default $DIFFLAB_RESULTS or ./results). Exit codes: 0 success,
 * 2 bad input (nothing written), 1 any other failure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/fault.h"

#define TOPT 0x100 /* getopt values of the table options */

static void usage(FILE *out)
{
    fputs("usage: difflab [--results DIR] <command> [args]\n"
          "\n"
          "commands:\n"
          "  run SPEC.yaml [key.path=value ...] [--new] [--set key=value]\n"
          "                          train, sample and evaluate a spec; same inputs again is a no-op\n"
          "  sample RUN|SPEC [--sampler NAME] [--steps N] [sampler.*|eval.*=value ...]\n"
          "                          sample a finished run (EMA weights) or an analytic-model spec;\n"
          "                          stores samples, evals and a PNG with the run\n"
          "  resume RUN              continue an interrupted or dead run from its last checkpoint\n"
          "  reproduce RUN           run a finished run again in a scratch folder: MATCH, or MISMATCH\n"
          "                          with the first quantity and step that differ\n"
          "  keys [NAME]             every spec key with type, default and doc (or one section / plug-in)\n"
          "  runs                    list the runs of the index\n"
          "  show RUN                one run: provenance, params, metrics, evals\n"
          "  query \"SQL\" [--csv|--json]  run SQL on the index (read-only; views in docs/sql.md)\n"
          "  table --rows KEY[,KEY] [--cols KEY] --metric NAME [options]\n"
          "                          an ablation table from the index: mean ± std over seeds per cell\n"
          "  sweep SWEEP.yaml        expand a sweep into results/sweeps/<name>/ (manifest, specs, make\n"
          "                          fragment); then: make -f Makefile.runs SWEEP=<name> -j N;\n"
          "                          --quick: its quick: section applied, as <name>_quick (tests)\n"
          "  sweep status NAME       counts of queued / running / finished / failed / diverged /\n"
          "                          interrupted runs, and the failed runs' errors\n"
          "  sweep run NAME LINE     run one manifest line (what make and Slurm call)\n"
          "  sweep NAME|SWEEP.yaml --launcher slurm [--partition P] [--time T] [--cpus C]\n"
          "        [--max-parallel K] submit the unfinished lines as one sbatch --array job; prints\n"
          "                          its id; `sweep status NAME` then brings the index up to date\n"
          "  reindex                 rebuild the index from results/runs/*/run.h5 (atomic swap)\n"
          "\n"
          "options:\n"
          "  --results DIR           results folder (default $DIFFLAB_RESULTS or ./results)\n"
          "  --new                   (run) a fresh repeat of inputs that already ran: <id>-r2, -r3, ...\n"
          "  --set key=value         (run) the same as a positional override\n"
          "  --csv, --json           (query) output format\n"
          "  --rows KEY[,KEY], --cols KEY\n"
          "                          (table) a spec param key (sampler.type, train.steps, ...) or an\n"
          "                          eval field: sampler, nfe, settings, settings.FIELD (scale, ...)\n"
          "  --metric NAME           (table) an eval metric (swd, mmd2, nll, ...) or a training series (loss)\n"
          "  --sweep NAME            (table) only the runs of a sweep (default: all runs)\n"
          "  --where SQL             (table) an SQL condition on the runs table r, e.g. \"r.seed < 3\"\n"
          "  --agg last|mean|min|max (table) one value per run from its series or matching evals\n"
          "  --err std|sem           (table) the error shown: standard deviation or standard error\n"
          "  --sampler S[,S], --nfe N[,N], --settings TEXT\n"
          "                          (table) only these evals (settings: a substring of the JSON)\n"
          "  --format md|latex|csv   (table) Markdown (default), LaTeX booktabs, CSV (one line per cell)\n"
          "  --def FILE.yaml         (table) a table definition file; options given here override it\n"
          "  --merge KEY[,KEY]       (table) pool runs whose specs differ in these keys (otherwise a\n"
          "                          row whose runs differ outside the row and column keys is split)\n"
          "  --floor                 (table) add the row of the sampler exact (draws from the data)\n"
          "  -h, --help              this help\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "results", required_argument, NULL, 'r' }, { "new", no_argument, NULL, 'n' },
        { "set", required_argument, NULL, 's' },     { "csv", no_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },          { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },       { "sampler", required_argument, NULL, 'S' },
        { "steps", required_argument, NULL, 'N' },
        /* sweep --launcher slurm */
        { "launcher", required_argument, NULL, 'L' }, { "partition", required_argument, NULL, 'P' },
        { "time", required_argument, NULL, 'T' },     { "cpus", required_argument, NULL, 'C' },
        { "max-parallel", required_argument, NULL, 'K' }, { "quick", no_argument, NULL, 'Q' },
        { "def", required_argument, NULL, 'D' },
        /* table options: TOPT + their index in table_opts[] */
        { "sweep", required_argument, NULL, TOPT + 0 },    { "rows", required_argument, NULL, TOPT + 1 },
        { "cols", required_argument, NULL, TOPT + 2 },     { "metric", required_argument, NULL, TOPT + 3 },
        { "where", required_argument, NULL, TOPT + 4 },    { "agg", required_argument, NULL, TOPT + 5 },
        { "err", required_argument, NULL, TOPT + 6 },      { "format", required_argument, NULL, TOPT + 7 },
        { "nfe", required_argument, NULL, TOPT + 8 },      { "settings", required_argument, NULL, TOPT + 9 },
        { "merge", required_argument, NULL, TOPT + 10 },   { "floor", no_argument, NULL, TOPT + 11 },
        { NULL, 0, NULL, 0 },
    };
    static const char *const table_opts[] = { "sweep", "rows", "cols", "metric", "where",
                                              "agg", "err", "format", "nfe", "settings",
                                              "merge", "floor" };
    dm_cli cli = { .results = getenv("DIFFLAB_RESULTS"), .fmt = DM_QUERY_TABLE, .out = stdout };
    char err[DM_ERR_SIZE] = "";
    int rc = 2, opt;
    const char **sets = dm_calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) {
        fprintf(stderr, "difflab: out of memory\n");
        return 1;
    }
    int n_sets = 0;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1 || optind < argc) {
        if (opt == -1) {
            /* A positional argument: collect it and keep parsing options after it. */
            cli.args[cli.n_args < DM_CLI_MAX_ARGS ? cli.n_args++ : cli.n_args] = argv[optind++];
            if (cli.n_args >= DM_CLI_MAX_ARGS) {
                fprintf(stderr, "difflab: too many arguments\n");
                goto out;
            }
            continue;
        }
        switch (opt) {
        case 'r': cli.results = optarg; break;
        case 'n': cli.new_repeat = 1; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'S': cli.sampler = optarg; break;
        case 'N': cli.steps = optarg; break;
        case 'L': cli.launcher = optarg; break;
        case 'P': cli.partition = optarg; break;
        case 'T': cli.time = optarg; break;
        case 'C': cli.cpus = optarg; break;
        case 'K': cli.max_parallel = optarg; break;
        case 'Q': cli.quick = 1; break;
        case 'c': cli.fmt = DM_QUERY_CSV; break;
        case 'j': cli.fmt = DM_QUERY_JSON; break;
        case 'h': usage(stdout); rc = 0; goto out;
        case 'V': printf("difflab %s\n", DIFFLAB_VERSION); rc = 0; goto out;
        case 'D': cli.table_def = optarg; break;
        default:
            if (opt >= TOPT && opt < TOPT + (int)(sizeof table_opts / sizeof *table_opts)) {
                if (cli.n_table_opts >= DM_CLI_MAX_ARGS) {
                    fprintf(stderr, "difflab: too many options\n");
                    goto out;
                }
                cli.table_opts[cli.n_table_opts][0] = table_opts[opt - TOPT];
                cli.table_opts[cli.n_table_opts++][1] = optarg ? optarg : "true"; /* --floor */
                break;
            }
            usage(stderr);
            goto out;
        }
    }
    if (!cli.results || !cli.results[0])
        cli.results = "results";
    if (cli.n_args == 0) {
        usage(stderr);
        goto out;
    }
    cli.sets = sets;
    cli.n_sets = n_sets;
    /* The crash points of tests (core/fault.h): a value naming none is refused before anything runs. */
    dm_status st = dm_fault_check(err);
    if (!st)
        st = dm_cli_dispatch(&cli, err);
    if (st)
        fprintf(stderr, "difflab: %s\n", err);
    rc = dm_status_exit_code(st);
out:
    dm_free(sets);
    return rc;
}
