/* table.h — ablation tables from the index (`difflab table`): one metric pivoted over row keys
 * and one column key, each cell mean ± std (or standard error) over the finished runs that fall
 * in it (the seed replicates), with n; the best cell of each column marked when it is apart from
 * the runner-up by more than the error; cells without a value show how many of their runs failed.
 *
 * Keys: a spec param key (`sampler.type`, `train.steps`, `seed`, ...; the params table, int, real
 * or text) or one of the eval fields `sampler`, `nfe`, `settings`.
 * Metric: an eval metric (evals.metric: swd, mmd2, nll, ...) or, when no eval has that name, a
 * training series (metrics.key: loss, grad_norm, ...). Each run gives one value per cell: --agg
 * (last, mean, min, max) reduces its series, or its several matching evals (the same metric at
 * several NFE when nfe is not a key; "last" is the last recorded).
 * Runs: status 'finished' give values; 'failed' and 'diverged' are counted per cell: they have no
 * evals, so their `sampler` is their spec's sampler.type (also for --sampler) and their `nfe`
 * and `settings` match every value (--nfe and --settings do not filter them). Other statuses (running, interrupted) are left out. The sampler 'noise' (the initial
 * noise baseline) is left out unless --sampler names it.
 * Best: by metric_info.lower_is_better (lower when the metric is not listed); marked only when
 * the best and the runner-up both have n >= 2 and |best - runner-up| > max(their errors). */
#ifndef DM_REPORT_TABLE_H
#define DM_REPORT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"
#include "io/index.h"

typedef enum dm_table_fmt { DM_TABLE_MD, DM_TABLE_LATEX, DM_TABLE_CSV } dm_table_fmt;
typedef enum dm_table_agg { DM_TABLE_LAST, DM_TABLE_MEAN, DM_TABLE_MIN, DM_TABLE_MAX } dm_table_agg;
typedef enum dm_table_errbar { DM_TABLE_STD, DM_TABLE_SEM } dm_table_errbar;

#define DM_TABLE_MAX_KEYS 8  /* row keys */
#define DM_TABLE_MAX_LIST 64 /* --sampler / --nfe values */

/* The options, by index into dm_table_def.origin; names as on the command line and in files. */
enum {
    DM_TOPT_SWEEP, DM_TOPT_ROWS, DM_TOPT_COLS, DM_TOPT_METRIC, DM_TOPT_WHERE, DM_TOPT_AGG,
    DM_TOPT_ERR, DM_TOPT_FORMAT, DM_TOPT_SAMPLER, DM_TOPT_NFE, DM_TOPT_SETTINGS, DM_TOPT_COUNT
};

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
    char *origin[DM_TOPT_COUNT];      /* where each option was set ("--rows", "FILE:3:7: rows") */
} dm_table_def;

void dm_table_def_init(dm_table_def *d);
void dm_table_def_free(dm_table_def *d);

/* Set one option by name (sweep rows cols metric where agg err format sampler nfe settings) from
 * its text; lists (rows, sampler, nfe) are comma-separated; an empty value unsets. A later set
 * replaces an earlier one. Errors are DM_E_INPUT starting with `origin`. */
dm_status dm_table_def_set(dm_table_def *d, const char *name, const char *value,
                           const char *origin, char *err);

/* Set the options found in a YAML mapping file (same names; lists may be YAML sequences). */
dm_status dm_table_def_load(dm_table_def *d, const char *path, char *err);

typedef struct dm_table_cell {
    size_t n;          /* finished runs with a value */
    size_t failed;     /* failed or diverged runs of the cell */
    double mean;       /* NaN when n = 0 */
    double std, err;   /* sample std (n - 1) and the error shown (std or std / sqrt(n)); NaN when n < 2 */
    int best;
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
    char **col_labels;   /* n_cols */
    dm_table_cell *cells; /* n_rows * n_cols, row-major */
    size_t n_multi;      /* eval metric: (run, cell) values reduced from several evals by agg */
} dm_table;

/* Build the pivot from the index. Bad definitions (missing metric or rows, unknown metric, key or
 * sweep, an eval field with a training metric, a bad --where) are DM_E_INPUT naming the option;
 * no matching run at all is DM_E_NOTFOUND. */
dm_status dm_table_build(dm_index *ix, const dm_table_def *d, dm_table **out, char *err);
void dm_table_free(dm_table *t);

/* Markdown (a caption line, then a pipe table; best in **bold**), LaTeX (a % caption, then a
 * booktabs tabular; best in \textbf{}), or CSV (one line per cell: row keys, col key, mean,
 * std|sem, n, failed, best; full precision). */
dm_status dm_table_write(const dm_table *t, dm_table_fmt fmt, FILE *out, char *err);

#endif
