#include "cli/commands.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "io/annotations.h"
#include "io/reindex.h"
#include "io/runstore.h"
#include "io/spec.h"
#include "train/run.h"
#include "train/runref.h"
#include "train/sample.h"
#include "train/schema.h"
#include "train/reproduce.h"
#include "train/slurm.h"
#include "train/sweep.h"
#include "train/trainer.h"

/* A spec refused for an override whose value is a comma list (train.lr=1e-3,3e-3, Hydra's multirun):
 * the message says where lists of values go. */
static dm_status grid_hint(dm_status st, const char *spec, int n, const char *const *over, char *err)
{
    for (int i = 0; st == DM_E_INPUT && i < n; i++) {
        const char *eq = strchr(over[i], '=');
        char label[512];
        snprintf(label, sizeof label, "override '%s'", over[i]);
        if (!eq || !dm_sweep_grid_is_list(eq + 1) || !strstr(err, label))
            continue;
        const size_t k = strlen(err);
        snprintf(err + k, DM_ERR_SIZE - k, " (a run per value is a sweep: difflab sweep --grid %s %s)", spec, over[i]);
        break;
    }
    return st;
}

/* The overrides of `run SPEC` and `spec SPEC`: the positional key=value after the spec, then the
 * --set ones (later wins); *n of them in a dm_calloc'd array (NULL: out of memory). */
static const char **spec_overrides(const dm_cli *cli, int *n)
{
    const int n_pos = cli->n_args - 2;
    *n = n_pos + cli->n_sets;
    const char **over = dm_calloc((size_t)*n + 1, sizeof *over);
    for (int i = 0; over && i < n_pos; i++)
        over[i] = cli->args[2 + i];
    for (int i = 0; over && i < cli->n_sets; i++)
        over[n_pos + i] = cli->sets[i];
    return over;
}

static dm_status cmd_run(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "run: missing SPEC.yaml (usage: difflab run SPEC.yaml [key.path=value ...])");
    int n;
    const char **over = spec_overrides(cli, &n);
    if (!over)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    dm_run_cfg cfg = { .results = cli->results, .new_repeat = cli->new_repeat, .out = cli->out };
    dm_status st = grid_hint(dm_run_spec_file(&cfg, cli->args[1], n, over, err), cli->args[1], n, over, err);
    dm_free(over);
    return st;
}

/* spec SPEC [key=value ...]: the spec resolved (base files merged, overrides applied, defaults
 * filled) and checked as `run` checks it, printed as the canonical YAML a run records, under its
 * run id and config_hash. Writes nothing. */
static dm_status cmd_spec(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "spec: missing SPEC.yaml (usage: difflab spec SPEC.yaml [key.path=value ...])");
    int n;
    const char **over = spec_overrides(cli, &n);
    if (!over)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    dm_spec *spec = NULL;
    char id[256], hash[65], *text = NULL;
    dm_status st = grid_hint(dm_spec_load_file(&dm_spec_schema, cli->args[1], n, over, &spec, err), cli->args[1],
                             n, over, err);
    if (!st && !(st = dm_trainer_check(spec, err)) && !(st = dm_run_id(spec, id, sizeof id, hash, err)) &&
        !(st = dm_spec_canonical(spec, 0, &text, err)))
        fprintf(cli->out, "# run_id: %s\n# config_hash: %s\n%s", id, hash, text);
    dm_free(text);
    dm_spec_free(spec);
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

static dm_status cmd_resume(dm_cli *cli, char *err)
{
    if (cli->n_args != 2)
        return dm_err(err, DM_E_INPUT, "resume: usage: difflab resume RUN (a run id or a unique prefix)");
    dm_run_cfg cfg = { .results = cli->results, .new_repeat = 0, .out = cli->out };
    return dm_run_resume(&cfg, cli->args[1], err);
}

static dm_status cmd_reproduce(dm_cli *cli, char *err)
{
    if (cli->n_args != 2)
        return dm_err(err, DM_E_INPUT, "reproduce: usage: difflab reproduce RUN (a run id or a unique prefix)");
    dm_run_cfg cfg = { .results = cli->results, .new_repeat = 0, .out = cli->out };
    return dm_run_reproduce(&cfg, cli->args[1], err);
}

/* sweep NAME|SWEEP.yaml --launcher slurm [--partition P --time T --cpus C --max-parallel K]: a
 * sweep file is expanded first (a no-op when it was), then its unfinished lines are submitted. */
static dm_status sweep_launch(dm_cli *cli, const char *usage, char *err)
{
    if (!cli->launcher)
        return dm_err(err, DM_E_INPUT, "sweep: --partition, --time, --cpus and --max-parallel need --launcher slurm");
    if (strcmp(cli->launcher, "slurm") != 0)
        return dm_err(err, DM_E_INPUT, "sweep: unknown launcher '%s'; valid: slurm (make runs a sweep locally: "
                      "make -f Makefile.runs SWEEP=NAME -j N)", cli->launcher);
    if (cli->n_args != 2 && !cli->grid)
        return dm_err(err, DM_E_INPUT, "sweep --launcher: %s", usage);
    dm_slurm_opts o = { .partition = cli->partition, .time = cli->time, .cpus = 1, .max_parallel = 0 };
    const char *nums[2] = { cli->cpus, cli->max_parallel };
    long *vals[2] = { &o.cpus, &o.max_parallel };
    for (int i = 0; i < 2; i++) {
        char *end;
        if (nums[i] && ((*vals[i] = strtol(nums[i], &end, 10)), *end || !*nums[i]))
            return dm_err(err, DM_E_INPUT, "--%s '%s': not an integer", i ? "max-parallel" : "cpus", nums[i]);
    }
    char name[128];
    const char *sweep = cli->args[1];
    struct stat sb;
    if (cli->grid) {   /* a grid: expand it first */
        dm_status st = dm_sweep_grid(cli->results, cli->grid, cli->n_args - 1, cli->args + 1, cli->sweep_name, name,
                                     sizeof name, cli->out, err);
        if (st)
            return st;
        sweep = name;
    } else if (stat(sweep, &sb) == 0 && S_ISREG(sb.st_mode)) {   /* a sweep file: expand it first */
        dm_status st = dm_sweep_expand(cli->results, sweep, cli->quick, name, sizeof name, cli->out, err);
        if (st)
            return st;
        sweep = name;
    }
    return dm_sweep_slurm(cli->results, sweep, &o, cli->out, err);
}

/* sweep SWEEP.yaml | sweep status NAME | sweep run NAME LINE [run.*=value ...] | sweep ... --launcher */
static dm_status cmd_sweep(dm_cli *cli, char *err)
{
    static const char usage[] = "usage: difflab sweep SWEEP.yaml [--quick] | sweep --grid SPEC KEY=V1,V2 ... [seeds=N] "
                                "[--name NAME] | sweep status NAME | sweep run NAME LINE [run.key=value ...]"
                                " | sweep NAME|SWEEP.yaml --launcher slurm [--partition P] [--time T] [--cpus C] [--max-parallel K]";
    if (cli->sweep_name && !cli->grid)
        return dm_err(err, DM_E_INPUT, "sweep: --name names a --grid sweep (a sweep file has its own name:)");
    if (cli->grid && cli->quick)
        return dm_err(err, DM_E_INPUT, "sweep --grid: --quick is for a sweep file's quick: section (give the short "
                      "settings as axes of one value: train.steps=50)");
    if (cli->grid && !(cli->launcher || cli->partition || cli->time || cli->cpus || cli->max_parallel))
        return dm_sweep_grid(cli->results, cli->grid, cli->n_args - 1, cli->args + 1, cli->sweep_name, NULL, 0,
                             cli->out, err);
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "sweep: %s", usage);
    const char *sub = cli->args[1];
    if (cli->launcher || cli->partition || cli->time || cli->cpus || cli->max_parallel)
        return sweep_launch(cli, usage, err);
    if (strcmp(sub, "status") == 0) {
        if (cli->n_args != 3)
            return dm_err(err, DM_E_INPUT, "sweep status: %s", usage);
        return dm_sweep_status(cli->results, cli->args[2], cli->out, err);
    }
    if (strcmp(sub, "run") == 0) {
        char *end;
        const long line = cli->n_args >= 4 ? strtol(cli->args[3], &end, 10) : -1;
        if (cli->n_args < 4 || *end || line < 0)
            return dm_err(err, DM_E_INPUT, "sweep run: NAME and a line number (%s)", usage);
        return dm_sweep_run_line(cli->results, cli->args[2], line, cli->n_args - 4, cli->args + 4, cli->out, err);
    }
    if (cli->n_args != 2)
        return dm_err(err, DM_E_INPUT, "sweep: %s", usage);
    return dm_sweep_expand(cli->results, sub, cli->quick, NULL, 0, cli->out, err);
}

static dm_status cmd_keys(dm_cli *cli, char *err)
{
    if (cli->n_args > 2)
        return dm_err(err, DM_E_INPUT, "keys: unexpected argument '%s' (usage: difflab keys [SECTION|PLUGIN])",
                      cli->args[2]);
    return dm_spec_print_keys(&dm_spec_schema, cli->n_args > 1 ? cli->args[1] : NULL, cli->out, err);
}

dm_status dm_cli_open_index(const dm_cli *cli, int readonly, dm_index **ix, char *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.sqlite", cli->results);
    dm_status st = dm_index_open(path, readonly, ix, err);
    /* run_params follows this difflab's key registry (a TEMP view on a read-only connection) */
    if (!st && (st = dm_index_params_view(*ix, &dm_spec_schema, err))) {
        dm_index_close(*ix);
        *ix = NULL;
    }
    return st;
}

static dm_status cmd_query(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "query: missing SQL (usage: difflab query \"SELECT ...\" [--csv|--json])");
    if (cli->n_args > 2)
        return dm_err(err, DM_E_INPUT, "query: unexpected argument '%s' (the SQL is one argument: quote it)",
                      cli->args[2]);
    dm_index *ix = NULL;
    dm_status st = dm_cli_open_index(cli, 1, &ix, err);
    if (!st)
        st = dm_index_query(ix, cli->args[1], cli->fmt, cli->out, err);
    dm_index_close(ix);
    return st;
}

static dm_status cmd_show(dm_cli *cli, char *err)
{
    if (cli->n_args < 2)
        return dm_err(err, DM_E_INPUT, "show: missing RUN (usage: difflab show RUN)");
    if (cli->n_args > 2)
        return dm_err(err, DM_E_INPUT, "show: unexpected argument '%s' (usage: difflab show RUN)", cli->args[2]);
    dm_index *ix = NULL;
    char id[512];
    dm_status st = dm_cli_open_index(cli, 1, &ix, err);
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
        { "tags", "SELECT key, value FROM tags WHERE run_id = %Q ORDER BY key" },
        { "notes", "SELECT time, text FROM notes WHERE run_id = %Q ORDER BY n" },
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

/* tag RUN KEY=VALUE... and note RUN TEXT: the run's annotations file first (the truth), then
 * its rows in the index, both under the run's annotation lock. */
typedef struct annot_ix {
    const dm_cli *cli;
    const char *id;
    int file_written;
} annot_ix;

static dm_status annot_index(void *ctx, const dm_annotations *a, char *err)
{
    annot_ix *c = ctx;
    dm_index *ix = NULL;
    c->file_written = 1;
    dm_status st = dm_cli_open_index(c->cli, 0, &ix, err);
    if (!st)
        st = dm_index_put_annotations(ix, c->id, a, err);
    dm_index_close(ix);
    return st;
}

static dm_status annotate(dm_cli *cli, int n_kv, const char *const *kv, const char *note, char *err)
{
    char dir[4096], id[512];
    dm_annotations a = { 0 };
    dm_status st = dm_runstore_find(cli->results, cli->args[1], dir, sizeof dir, id, sizeof id, err);
    if (st)
        return st;
    annot_ix c = { cli, id, 0 };
    st = dm_annotations_update(cli->results, id, dir, n_kv, kv, note, annot_index, &c, &a, err);
    if (st && c.file_written) {
        dm_err_prefix(err, "run %s: written to %s/annotations.yaml, but the index is not updated (`difflab "
                      "reindex` brings it up to date)", id, dir);
    } else if (!st) {
        fprintf(cli->out, "run %s: %zu tag%s", id, a.n_tags, a.n_tags == 1 ? "" : "s");
        for (size_t i = 0; i < a.n_tags; i++)
            fprintf(cli->out, "%s %s=%s", i ? "," : "", a.tags[i].key, a.tags[i].value);
        fprintf(cli->out, "; %zu note%s\n", a.n_notes, a.n_notes == 1 ? "" : "s");
    }
    dm_annotations_free(&a);
    return st;
}

static dm_status cmd_tag(dm_cli *cli, char *err)
{
    if (cli->n_args < 3)
        return dm_err(err, DM_E_INPUT, "tag: usage: difflab tag RUN KEY=VALUE [KEY=VALUE ...] (KEY= removes a tag)");
    return annotate(cli, cli->n_args - 2, cli->args + 2, NULL, err);
}

static dm_status cmd_note(dm_cli *cli, char *err)
{
    if (cli->n_args != 3)
        return dm_err(err, DM_E_INPUT, "note: usage: difflab note RUN \"TEXT\" (the text is one argument: quote it)");
    return annotate(cli, 0, NULL, cli->args[2], err);
}

/* Rebuild the index from the run files; skipped folders are listed on stderr and make the exit
 * code 1, the others are indexed all the same. */
static dm_status cmd_reindex(dm_cli *cli, char *err)
{
    if (cli->n_args > 1)
        return dm_err(err, DM_E_INPUT, "reindex takes no arguments (usage: difflab [--results DIR] reindex)");
    dm_reindex_stats s;
    fflush(cli->out);
    dm_status st = dm_reindex(cli->results, &dm_spec_schema, stderr, &s, err);
    if (st)
        return st;
    fprintf(cli->out, "reindexed %s/index.sqlite: %zu run%s indexed, %zu skipped\n", cli->results,
            s.n_indexed, s.n_indexed == 1 ? "" : "s", s.n_skipped);
    if (s.n_skipped)
        return dm_err(err, DM_E_IO, "%zu run folder%s skipped (listed above); the other runs are indexed",
                      s.n_skipped, s.n_skipped == 1 ? "" : "s");
    return DM_OK;
}

/* The commands: name, usage line, one line of help (main.c prints them), and the function. */
const dm_cli_cmd dm_cli_cmds[] = {
    { "run", "run SPEC.yaml [key.path=value ...]",
      "train, sample and evaluate a spec; the same inputs again is a no-op", cmd_run },
    { "sample", "sample RUN|SPEC [sampler.*|guidance.*|eval.*=value ...]",
      "sample a finished run (EMA weights) or an analytic-model spec; stores samples, evals and a picture "
      "(an SVG scatter, a PNG grid of images) with the run. Another sampler (--sampler, sampler.type=) starts from its own defaults", cmd_sample },
    { "resume", "resume RUN", "continue an interrupted or dead run from its last checkpoint", cmd_resume },
    { "reproduce", "reproduce RUN",
      "run a finished run again in a scratch folder: MATCH, or MISMATCH with the first quantity and step that differ",
      cmd_reproduce },
    { "keys", "keys [SECTION|PLUGIN]", "every spec key with type, default and doc (or one section / plug-in)",
      cmd_keys },
    { "spec", "spec SPEC.yaml [key.path=value ...]",
      "print the resolved spec (base files merged, overrides applied, defaults filled) as a run records it, "
      "with its run id and config_hash; checks it as run does and writes nothing", cmd_spec },
    { "runs", "runs [NAME|ID-PREFIX ...]",
      "list the runs of the index (those whose name or id starts with one of the words given): status "
      "(dead: no process holds its lock), sweeps, loss, and metrics of the run's own sampler", dm_cli_runs },
    { "show", "show RUN", "one run: provenance, params, metrics, evals", cmd_show },
    { "query", "query \"SQL\"", "run SQL on the index (read-only; views in docs/sql.md)", cmd_query },
    { "table", "table --rows KEY[,KEY] [--cols KEY] --metric NAME",
      "an ablation table from the index: mean ± error over seeds per cell, one config group per cell", dm_cli_table },
    { "sweep", "sweep SWEEP.yaml | sweep --grid SPEC KEY=V1,V2 ... [seeds=N] | sweep status NAME | "
               "sweep run NAME LINE [run.key=value ...] | sweep NAME|SWEEP.yaml --launcher slurm",
      "expand a sweep into results/sweeps/<name>/ (then make -f Makefile.runs SWEEP=<name> -j N); --grid: "
      "the sweep of the command line's axes; "
      "status: counts by state and the failed runs' errors; run: one manifest line (what make and Slurm "
      "call); --launcher slurm: submit the unfinished lines as one array job", cmd_sweep },
    { "tag", "tag RUN KEY=VALUE [KEY=VALUE ...]",
      "set tags of a run (KEY= removes one): in results/runs/<id>/annotations.yaml and the index's tags "
      "table; `runs --tag KEY=VALUE`, `--where` and `table --rows tag.KEY` use them", cmd_tag },
    { "note", "note RUN \"TEXT\"", "add a dated note to a run (annotations.yaml and the index's notes table)",
      cmd_note },
    { "report", "report [RUN ...] [--sweep NAME ...] [--def FILE.yaml ...] [--out DIR]",
      "a static HTML report (one folder, opens from disk): an index of runs with filters, a page per run "
      "(training curves, evals against NFE, pictures, provenance) and per sweep (tables, metrics against "
      "each axis, every cell's samples); with no RUN or --sweep: every run and sweep", dm_cli_report },
    { "reindex", "reindex", "rebuild the index from results/runs/*/run.h5 and annotations.yaml (atomic swap)",
      cmd_reindex },
    { NULL, NULL, NULL, NULL },
};
