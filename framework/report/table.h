/* table.h — ablation tables from the index (`difflab table`): one metric pivoted over row keys
 * and one column key, each cell mean ± std (or standard error) over the seeds that fall in it,
 * with n; the best cell of each column marked only when a t-test across seeds says it beats the
 * runner-up; cells without a value show how many of their runs failed.
 *
 * Keys: a spec param key (`train.steps`, `seed`, ...; the params table, int, real or text) or
 * one of the eval fields `sampler`, `nfe`, `settings`, `settings.FIELD`. With an eval metric the
 * sampler is the eval's, not the spec's: `sampler.type` is evals.sampler and `sampler.FIELD` is
 * settings.FIELD (a run sampled later with `difflab sample` by another sampler or at other steps
 * files those evals under their own sampler and steps).
 * Metric: an eval metric (evals.metric: swd, mmd2, nll, ...) or, when no eval has that name, a
 * training series (metrics.key: loss, grad_norm, ...). Each run gives one value per cell: --agg
 * (last, mean, min, max) reduces its series, or its several matching evals (the same metric at
 * several NFE when nfe is not a key; "last" is the last recorded).
 *
 * What shares a cell (docs/sql.md, "Ablation tables"):
 * - Config groups: runs share a cell only when their resolved specs are equal once the row and
 *   column keys, the --merge keys, the keys outside config_hash (name, seed, run.*) and the
 *   sampler and guidance sections are set aside (the latter say how the run's own final samples
 *   were drawn: an eval carries its own sampler and settings, and training never reads them);
 *   evals, only when their sampler, settings and sample count are equal as well. A cell holding
 *   several groups splits its row: one row per group, labelled (`config`) by the keys in which
 *   they differ, and a note names those keys. --merge KEY pools them on purpose.
 * - Seeds: the replicates are the distinct seeds (runs.seed) of one group; runs of one group and
 *   seed (a `--new` repeat, a run that differs only in its name) are repeats: their values are
 *   averaged into the seed's one value and counted as repeats, never as replicates.
 * Runs: status 'finished' give values; 'failed' and 'diverged' are counted per cell: they have no
 * evals, so their sampler keys are their spec's (also for --sampler), their `nfe` and `settings`
 * match every value (--nfe and --settings do not filter them). Other statuses (running,
 * interrupted) are left out. The samplers 'noise' (the initial-noise baseline) and 'exact' (draws
 * from the data distribution: the floor) are left out unless --sampler names them; --floor adds
 * the floor as a row of its own.
 * Best: by metric_info.lower_is_better (lower when the metric is not listed); the cell with the
 * best mean is marked only when it beats the runner-up by a one-sided t-test at DM_TABLE_ALPHA:
 * a paired t-test over the per-seed differences when the two cells hold the same runs (samplers
 * or NFEs evaluated on the same runs), else Welch's test; both need n >= 2 (table_stats.c). */
#ifndef DM_REPORT_TABLE_H
#define DM_REPORT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"
#include "io/index.h"

typedef enum dm_table_fmt { DM_TABLE_MD, DM_TABLE_LATEX, DM_TABLE_CSV, DM_TABLE_HTML } dm_table_fmt;
typedef enum dm_table_agg { DM_TABLE_LAST, DM_TABLE_MEAN, DM_TABLE_MIN, DM_TABLE_MAX } dm_table_agg;
typedef enum dm_table_errbar { DM_TABLE_STD, DM_TABLE_SEM } dm_table_errbar;

#define DM_TABLE_MAX_KEYS 8  /* row keys */
#define DM_TABLE_MAX_LIST 64 /* --sampler / --nfe values */

/* The options, by index into dm_table_def.origin; names as on the command line and in files. */
enum {
    DM_TOPT_SWEEP, DM_TOPT_ROWS, DM_TOPT_COLS, DM_TOPT_METRIC, DM_TOPT_WHERE, DM_TOPT_AGG,
    DM_TOPT_ERR, DM_TOPT_FORMAT, DM_TOPT_SAMPLER, DM_TOPT_NFE, DM_TOPT_SETTINGS, DM_TOPT_MERGE,
    DM_TOPT_FLOOR, DM_TOPT_COUNT
};

/* The level of the test that marks the best cell of a column. */
#define DM_TABLE_ALPHA 0.05

/* A table definition. Every string is owned (dm_table_def_free). */
typedef struct dm_table_def {
    char *sweep;                      /* NULL: all runs */
    char *rows[DM_TABLE_MAX_KEYS];
    int n_rows;
    char *col;                        /* NULL: one column, the metric */
    char *metric;
    char *where;                      /* an SQL condition on the runs table (alias r), or NULL */
    dm_table_agg agg;
    dm_table_errbar errbar;
    dm_table_fmt fmt;
    char *samplers[DM_TABLE_MAX_LIST]; /* eval filters */
    int n_samplers;
    long long nfes[DM_TABLE_MAX_LIST];
    int n_nfes;
    char *settings;                   /* a substring of evals.settings */
    char *merges[DM_TABLE_MAX_KEYS];  /* keys whose values may differ within a cell (pooled on purpose) */
    int n_merges;
    int floor;                        /* add the row of the 'exact' evals (the floor) */
    char *origin[DM_TOPT_COUNT];      /* where each option was set ("--rows", "FILE:3:7: rows") */
} dm_table_def;

void dm_table_def_init(dm_table_def *d);
void dm_table_def_free(dm_table_def *d);

/* Set one option by name (sweep rows cols metric where agg err format sampler nfe settings merge
 * floor) from its text; lists (rows, sampler, nfe, merge) are comma-separated; floor is a boolean
 * (true/false, yes/no, 1/0); an empty value unsets. A later set
 * replaces an earlier one. Errors are DM_E_INPUT starting with `origin`. */
dm_status dm_table_def_set(dm_table_def *d, const char *name, const char *value,
                           const char *origin, char *err);

/* Set the options found in a YAML mapping file (same names; lists may be YAML sequences). */
dm_status dm_table_def_load(dm_table_def *d, const char *path, char *err);

typedef struct dm_table_cell {
    size_t n;          /* seeds with a value (the replicates) */
    size_t repeats;    /* finished runs beyond one per seed, averaged into their seed's value */
    size_t failed;     /* failed or diverged runs of the cell */
    double mean;       /* NaN when n = 0 */
    double std, err;   /* sample std (n - 1) over the seeds' values and the error shown (std or
                        * std / sqrt(n)); NaN when n < 2 */
    double p;          /* the best mean of its column: the one-sided p-value of its test against
                        * the runner-up; NaN when no test ran (n < 2, no runner-up, a floor) */
    int paired;        /* that test: 1 paired over per-seed differences (the same runs), 0 Welch */
    int best;          /* p < DM_TABLE_ALPHA */
} dm_table_cell;

typedef struct dm_table {
    char *metric;
    int training;        /* 1: a training series, 0: an eval metric */
    int lower_is_better;   /* 1, 0, or -1: a descriptive metric (no best) */
    dm_table_agg agg;
    dm_table_errbar errbar;
    size_t n_row_keys;
    char **row_keys;     /* n_row_keys names */
    char *col_key;       /* NULL: one column named after the metric */
    size_t n_rows, n_cols;
    char **row_labels;   /* n_rows * n_row_keys, display text of each row's key values */
    char **row_config;   /* n_rows: the config group of a split row ("" when its row holds one
                          * group; "floor" for the floor row) */
    int has_config;      /* some row is split: Markdown and LaTeX get a `config` column */
    int has_floor;       /* the last row is the floor (--floor): never marked */
    char **col_labels;   /* n_cols */
    dm_table_cell *cells; /* n_rows * n_cols, row-major */
    size_t n_multi;      /* eval metric: (run, cell) values reduced from several evals by agg */
    char **notes;        /* n_notes lines for stderr: rows split by config, floors not found */
    size_t n_notes;
} dm_table;

/* Build the pivot from the index. Bad definitions (missing metric or rows, unknown metric, key or
 * sweep, an eval field with a training metric, a bad --where) are DM_E_INPUT naming the option;
 * no matching run at all is DM_E_NOTFOUND. */
dm_status dm_table_build(dm_index *ix, const dm_table_def *d, dm_table **out, char *err);
void dm_table_free(dm_table *t);

/* Markdown (a caption line, then a pipe table; best in **bold**), LaTeX (a % caption, then a
 * booktabs tabular; best in \textbf{}), CSV (one line per cell: row keys, col key, mean,
 * std|sem, n, failed, best, repeats, p, config; full precision), or an HTML <table
 * class="ablation"> (the caption as <caption>; each value cell a <td class="cell"> with
 * data-mean, data-err and data-n at full precision, class "best" when marked). */
dm_status dm_table_write(const dm_table *t, dm_table_fmt fmt, FILE *out, char *err);

/* The tests behind the best mark (table_stats.c; GSL's t distribution). One-sided p-values of
 * "x is greater than y":
 * Welch's test from two samples' means, sample variances (n - 1) and sizes (both n >= 2):
 *   t = (mx - my) / sqrt(vx/nx + vy/ny), Welch–Satterthwaite degrees of freedom
 *   df = (vx/nx + vy/ny)^2 / ((vx/nx)^2/(nx - 1) + (vy/ny)^2/(ny - 1)), p = P(T_df >= t);
 * the paired test from the m >= 2 differences d_i = x_i - y_i of the same seeds:
 *   t = mean(d) / (sd(d) / sqrt(m)), df = m - 1, p = P(T_df >= t).
 * With no spread at all, p is 0 when x is greater and 1 when not; NaN for too few values. */
double dm_table_welch_p(double mx, double vx, size_t nx, double my, double vy, size_t ny);
double dm_table_paired_p(const double *d, size_t m);

#endif
