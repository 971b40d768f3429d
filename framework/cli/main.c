/* difflab — the command line: `difflab [--results DIR] COMMAND [args] [options]`.
 *
 * The options and the commands that take each are the table below, the commands that of
 * commands.c (dm_cli_cmds): the parser, the check that an option belongs to the command it is
 * given with, `difflab --help` and `difflab COMMAND --help` all come from them. --results, --help and --version go with every command. Exit codes: 0
 * success, 2 bad input (an unknown command or option, an option of another command, a bad spec:
 * nothing written), 1 any other failure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/fault.h"

/* An option: its long name, its argument's name (NULL: a flag), the commands that take it
 * (space-separated; "*" every command) and one line of help. A name may have several entries,
 * one per meaning (--cols of table and of runs). */
typedef struct cli_opt {
    const char *name, *arg, *cmds, *doc;
} cli_opt;

/* Options with a field of their own in dm_cli are stored there (set_opt); the others go to
 * dm_cli.kv in command-line order, for the command to read. */
static const cli_opt opts[] = {
    { "results", "DIR", "*", "results folder (default $DIFFLAB_RESULTS or ./results)" },
    { "help", NULL, "*", "this help (with a command: that command's)" },
    { "version", NULL, "*", "print difflab's version" },
    { "new", NULL, "run", "a fresh repeat of inputs that already ran: <id>-r2, -r3, ..." },
    { "set", "KEY=VALUE", "run sample spec", "the same as a positional override" },
    { "sampler", "NAME", "sample table", "(sample) the sampler, with its own defaults; (table) only its evals (NAME[,NAME])" },
    { "steps", "N", "sample", "the sampler's steps (sampler.steps=N)" },
    { "csv", NULL, "query runs show table", "CSV output" },
    { "json", NULL, "query runs show", "JSON output" },
    { "quick", NULL, "sweep", "the sweep's quick: section applied, as <name>_quick (tests)" },
    { "grid", "SPEC", "sweep", "a sweep from the command line: the positional KEY=V1,V2,... are grid axes on SPEC "
                               "(values as YAML, of the key's type), seeds=N or seeds=A,B,... the replicates; written "
                               "to results/sweeps/<name>/sweep.yaml and expanded as a sweep file" },
    { "name", "NAME", "sweep", "(--grid) the sweep's name; default: the spec's name and the axis keys "
                               "(demo-train.lr), so more values or seeds extend the same sweep" },
    { "launcher", "slurm", "sweep", "submit the unfinished lines as one sbatch --array job" },
    { "partition", "P", "sweep", "(--launcher slurm) the partition" },
    { "time", "T", "sweep", "(--launcher slurm) the time limit of each task" },
    { "cpus", "C", "sweep", "(--launcher slurm) cores per task" },
    { "max-parallel", "K", "sweep", "(--launcher slurm) at most K tasks at once" },
    { "def", "FILE.yaml", "table", "a table definition file; options given here override it" },
    { "rows", "KEY[,KEY]", "table", "a spec param key (sampler.type, train.steps, ...) or an eval field: "
                                    "sampler, nfe, settings, settings.FIELD" },
    { "cols", "KEY", "table", "the column key (as --rows)" },
    { "metric", "NAME", "table", "an eval metric (swd, fd, nll, ...) or a training series (loss)" },
    { "sweep", "NAME", "table", "only the runs of a sweep (default: all runs)" },
    { "where", "SQL", "table", "an SQL condition on the runs table r, e.g. \"r.seed < 3\"" },
    { "sweep", "NAME", "runs", "only the runs of this sweep" },
    { "status", "S[,S]", "runs", "only runs in these states: running, dead, finished, failed, diverged, interrupted" },
    { "where", "SQL", "runs", "an SQL condition on the runs table r, e.g. \"r.seed < 3\"" },
    { "cols", "KEY[,KEY]", "runs", "more columns: spec keys (train.lr), metrics of the run's own sampler (fd, kid), "
                                   "training series (grad_norm)" },
    { "sort", "COL[,COL]", "runs", "order by these columns (-COL: descending); default: created" },
    { "tag", "KEY=VALUE", "runs", "only runs with this tag (repeatable; KEY alone: any value)" },
    { "agg", "last|mean|min|max", "table", "one value per run from its series or matching evals" },
    { "err", "std|sem", "table", "the error shown: standard deviation or standard error" },
    { "format", "md|latex|csv|html", "table", "Markdown (default), LaTeX booktabs, CSV (one line per cell), an HTML table" },
    { "nfe", "N[,N]", "table", "only evals at these NFE" },
    { "settings", "TEXT", "table", "only evals whose settings JSON holds TEXT" },
    { "merge", "KEY[,KEY]", "table", "pool runs whose specs differ in these keys (otherwise such a row is split)" },
    { "floor", NULL, "table", "add the row of the sampler exact (draws from the data)" },
    { "out", "DIR", "report", "the report folder (default: RESULTS/report)" },
    { "sweep", "NAME", "report", "a sweep's page and its runs' pages (repeatable)" },
    { "def", "FILE.yaml", "report", "the sweep page's tables from these definitions (repeatable; default: a table "
                                    "per metric over the sweep's axes)" },
};
#define N_OPTS (sizeof opts / sizeof *opts)

/* Whether option entry o goes with command name (a word of its cmds list, or "*"). */
static int takes(const cli_opt *o, const char *name)
{
    const size_t n = strlen(name);
    for (const char *p = o->cmds; *p;) {
        const size_t k = strcspn(p, " ");
        if ((k == 1 && *p == '*') || (k == n && strncmp(p, name, n) == 0))
            return 1;
        p += k + (p[k] == ' ');
    }
    return 0;
}

/* An option of every command (--results, --help, --version). */
static int global(const cli_opt *o) { return strcmp(o->cmds, "*") == 0; }

/* Whether an entry of option name goes with command cmd. */
static int takes_name(const char *name, const char *cmd)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0 && takes(&opts[i], cmd))
            return 1;
    return 0;
}

static const dm_cli_cmd *find_cmd(const char *name)
{
    for (const dm_cli_cmd *c = dm_cli_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* text from column `col` on (the cursor is there), wrapped at word boundaries before column 100
 * with later lines indented to col. */
static void put_wrapped(FILE *out, int col, const char *text)
{
    enum { WIDTH = 100 };
    int at = col;
    for (const char *p = text; *p;) {
        const int w = (int)strcspn(p, " ");
        if (at > col && at + 1 + w > WIDTH) {
            fprintf(out, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', out);
            at++;
        }
        fprintf(out, "%.*s", w, p);
        at += w;
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

static void print_opt(FILE *out, const cli_opt *o)
{
    char head[64];
    snprintf(head, sizeof head, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(out, "  %-26s", head);
    put_wrapped(out, 28, o->doc);
}

static void usage(FILE *out)
{
    fputs("usage: difflab [--results DIR] COMMAND [args] [options]\n\ncommands:\n", out);
    for (const dm_cli_cmd *c = dm_cli_cmds; c->name; c++) {
        fprintf(out, "  %-10s", c->name);
        put_wrapped(out, 12, c->doc);
    }
    fputs("\noptions of every command:\n", out);
    for (size_t i = 0; i < N_OPTS; i++)
        if (global(&opts[i]))
            print_opt(out, &opts[i]);
    fputs("\n`difflab COMMAND --help` shows a command's usage and options.\n", out);
}

static void cmd_usage(FILE *out, const dm_cli_cmd *c)
{
    fprintf(out, "usage: difflab %s [options]\n\n", c->usage);
    put_wrapped(out, 0, c->doc);
    fputs("\noptions:\n", out);
    for (size_t i = 0; i < N_OPTS; i++)
        if (takes(&opts[i], c->name) && !global(&opts[i]))
            print_opt(out, &opts[i]);
    for (size_t i = 0; i < N_OPTS; i++)
        if (global(&opts[i]))
            print_opt(out, &opts[i]);
}

/* "--new, --set" : the options command c takes, for messages. */
static void list_opts(const dm_cli_cmd *c, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTS && n < size; i++)
        if (takes(&opts[i], c->name) && !global(&opts[i]))
            n += (size_t)snprintf(buf + n, size - n, "%s--%s", n ? ", " : "", opts[i].name);
    if (n >= size)
        snprintf(buf + size - 4, 4, "...");
    if (!buf[0])
        snprintf(buf, size, "none but --results");
}

/* Stores option i's value in cli. */
static int set_opt(dm_cli *cli, const char **sets, int *n_sets, size_t i, const char *arg)
{
    const char *name = opts[i].name;
#define IS(s) (strcmp(name, s) == 0)
    if (IS("results")) cli->results = arg;
    else if (IS("new")) cli->new_repeat = 1;
    else if (IS("set")) sets[(*n_sets)++] = arg;
    else if (IS("sampler")) cli->sampler = arg;
    else if (IS("steps")) cli->steps = arg;
    else if (IS("csv")) cli->fmt = DM_QUERY_CSV;
    else if (IS("json")) cli->fmt = DM_QUERY_JSON;
    else if (IS("quick")) cli->quick = 1;
    else if (IS("grid")) cli->grid = arg;
    else if (IS("name")) cli->sweep_name = arg;
    else if (IS("launcher")) cli->launcher = arg;
    else if (IS("partition")) cli->partition = arg;
    else if (IS("time")) cli->time = arg;
    else if (IS("cpus")) cli->cpus = arg;
    else if (IS("max-parallel")) cli->max_parallel = arg;
    else {
        if (IS("def")) /* table's one definition; report's several (kv) */
            cli->table_def = arg;
        if (cli->n_kv >= DM_CLI_MAX_ARGS)
            return -1;
        cli->kv[cli->n_kv][0] = name;
        cli->kv[cli->n_kv++][1] = arg ? arg : "true"; /* a flag: --floor */
    }
#undef IS
    return 0;
}

int main(int argc, char **argv)
{
    struct option longopts[N_OPTS + 1];
    for (size_t i = 0; i < N_OPTS; i++)
        longopts[i] = (struct option){ opts[i].name, opts[i].arg ? required_argument : no_argument, NULL, 0x100 + (int)i };
    longopts[N_OPTS] = (struct option){ NULL, 0, NULL, 0 };
    dm_cli cli = { .results = getenv("DIFFLAB_RESULTS"), .fmt = DM_QUERY_TABLE, .out = stdout };
    char err[DM_ERR_SIZE] = "";
    int rc = 2, opt, help = 0, version = 0, n_sets = 0, n_given = 0;
    const char **sets = dm_calloc((size_t)argc + 1, sizeof *sets);
    size_t *given = dm_calloc((size_t)argc + 1, sizeof *given); /* options given, in order */
    if (!sets || !given) {
        fprintf(stderr, "difflab: out of memory\n");
        rc = 1;
        goto out;
    }
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1 || optind < argc) {
        if (opt == -1) {
            /* A positional argument: collect it and keep parsing options after it. */
            if (cli.n_args >= DM_CLI_MAX_ARGS) {
                fprintf(stderr, "difflab: too many arguments\n");
                goto out;
            }
            cli.args[cli.n_args++] = argv[optind++];
            continue;
        }
        if (opt == 'h') {
            help = 1;
            continue;
        }
        if (opt == ':' || opt == '?') {
            const char *bad = argv[optind - 1];
            if (opt == ':')
                fprintf(stderr, "difflab: option '%s' needs a value\n", bad);
            else
                fprintf(stderr, "difflab: unknown option '%s' (`difflab --help` lists the commands, "
                                "`difflab COMMAND --help` a command's options)\n", bad);
            goto out;
        }
        const size_t i = (size_t)(opt - 0x100);
        if (strcmp(opts[i].name, "help") == 0)
            help = 1;
        else if (strcmp(opts[i].name, "version") == 0)
            version = 1;
        else if (set_opt(&cli, sets, &n_sets, i, optarg)) {
            fprintf(stderr, "difflab: too many options\n");
            goto out;
        }
        given[n_given++] = i;
    }
    const dm_cli_cmd *c = cli.n_args ? find_cmd(cli.args[0]) : NULL;
    if (version) {
        printf("difflab %s\n", DIFFLAB_VERSION);
        rc = 0;
        goto out;
    }
    if (help) {
        if (c)
            cmd_usage(stdout, c);
        else
            usage(stdout);
        rc = 0;
        goto out;
    }
    if (!cli.n_args) {
        usage(stderr);
        goto out;
    }
    if (!c) {
        fprintf(stderr, "difflab: unknown command '%s'; valid:", cli.args[0]);
        for (const dm_cli_cmd *k = dm_cli_cmds; k->name; k++)
            fprintf(stderr, "%s %s", k == dm_cli_cmds ? "" : ",", k->name);
        fprintf(stderr, " (`difflab --help`)\n");
        goto out;
    }
    for (int g = 0; g < n_given; g++) {
        if (!takes_name(opts[given[g]].name, c->name)) {
            char list[512];
            list_opts(c, list, sizeof list);
            fprintf(stderr, "difflab %s: --%s is not an option of %s (its options: %s; `difflab %s --help`)\n",
                    c->name, opts[given[g]].name, c->name, list, c->name);
            goto out;
        }
    }
    if (!cli.results || !cli.results[0])
        cli.results = "results";
    cli.sets = sets;
    cli.n_sets = n_sets;
    /* The crash points of tests (core/fault.h): a value naming none is refused before anything runs. */
    dm_status st = dm_fault_check(err);
    if (!st)
        st = c->fn(&cli, err);
    if (st)
        fprintf(stderr, "difflab: %s\n", err);
    rc = dm_status_exit_code(st);
out:
    dm_free(sets);
    dm_free(given);
    return rc;
}
