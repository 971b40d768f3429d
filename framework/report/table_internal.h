/* table_internal.h — what the parts of the table module share (table_def.c, table_query.c,
 * table_values.c, table_read.c, table_groups.c, table_floor.c, table_cells.c, table_stats.c,
 * table_render.c); included only by them. Not an API: see table.h.
 *
 * The build, in order (dm_table_build, table_cells.c):
 *   1. the definition checked against the index (table_query.c);
 *   2. the values read (table_read.c): one per (finished run, cell), reduced by --agg, with the
 *      run's seed and the identity of its evals (sampler, settings fields, sample count); the
 *      failed and diverged runs with their keys; the 'exact' evals for --floor; every run's
 *      params as its config descriptor (what must be equal to share a cell) and its data/eval
 *      signature (whose floor applies);
 *   3. the config groups (table_groups.c): a row whose cells hold several groups is split into
 *      one row per group, named by the keys in which they differ;
 *   4. the cells (table_cells.c): one value per seed (the mean of its repeats), then mean and
 *      spread over the seeds; the floor row (table_floor.c); the best of each column
 *      (table_stats.c). */
#ifndef DM_REPORT_TABLE_INTERNAL_H
#define DM_REPORT_TABLE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "report/table.h"

/* table_def.c: option names by DM_TOPT_*, --agg names by dm_table_agg. */
extern const char *const dm_table_opt_names[DM_TOPT_COUNT];
extern const char *const dm_table_agg_names[4];
int dm_table_all_blank(const char *s);

/* ------------------------------------------------------------ keys (table_query.c) ---- */

/* What a row, column or --merge key names once the metric's kind is known. With an eval metric
 * the sampler of a cell is the eval's: `sampler.type` is evals.sampler, `sampler.F` is the
 * field F of evals.settings. */
typedef enum dm_tkey_kind {
    DM_TKEY_PARAM,    /* a spec param (the params table) */
    DM_TKEY_SAMPLER,  /* evals.sampler */
    DM_TKEY_NFE,      /* evals.nfe */
    DM_TKEY_SETTINGS, /* evals.settings, the whole JSON */
    DM_TKEY_FIELD,    /* one field of evals.settings */
} dm_tkey_kind;

/* The eval fields as written: sampler, nfe, settings, settings.FIELD (refused with a training
 * series). */
int dm_table_is_eval_field(const char *key);
dm_tkey_kind dm_table_key_kind(const char *key, int training);
/* The settings field of a DM_TKEY_FIELD key (F of settings.F or sampler.F). */
const char *dm_table_key_field(const char *key);
/* A failed run has no evals: 1 when its value of the key is unknown (it matches every value). */
int dm_table_key_wild_for_failed(const char *key, int training);

/* A NULL sql is an allocation that failed while building it. */
dm_status dm_table_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err);
/* Checks of the definition against the index: sweep, where, metric, keys, merge keys, floor;
 * *training is 1 when the metric is a training series. */
dm_status dm_table_check_def(sqlite3 *db, const dm_table_def *d, const char *const *keys, size_t nk,
                             int *training, char *err);
/* The queries (sqlite3_free them); NULL when out of memory.
 * finished, training series: run_id, seed, the keys, count of values reduced, the reduced value
 *   (one row per run and cell);
 * finished, eval metric: run_id, seed, the keys, sampler, settings, n_samples, value (one row per
 *   eval, ordered by run, keys and the order recorded; table_read.c reduces them);
 * failed and diverged runs: run_id, seed, the keys;
 * floor: run_id, seed, settings, n_samples, value of the 'exact' evals of the finished runs;
 * params: run_id, key, int, real, text value of every run the table looks at. */
char *dm_table_finished_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training);
char *dm_table_failed_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training);
char *dm_table_floor_sql(const dm_table_def *d);
char *dm_table_params_sql(const dm_table_def *d);

/* ------------------------------------------------------------ table_values.c ---- */

/* A key value: NULL, a number (int or real; text is its display) or text; WILD matches any
 * (an unknown eval field of a failed run). */
enum { DM_TKV_NULL, DM_TKV_NUM, DM_TKV_TEXT, DM_TKV_WILD };
typedef struct dm_tkv {
    int kind;
    double d;
    char *s; /* display text (owned); NULL for NULL and WILD */
} dm_tkv;

/* Column c of a row; -1 when out of memory. */
int dm_tkv_read(dm_tkv *k, sqlite3_stmt *s, int c);
/* Order: NULL, numbers (by value), text (bytewise). */
int dm_tkv_cmp(const dm_tkv *a, const dm_tkv *b);
int dm_tkv_match(const dm_tkv *cell, const dm_tkv *run);
/* A column's value as display text into buf (reals: the shortest round trip); "" for NULL. */
void dm_tkv_text(sqlite3_stmt *s, int c, char *buf, size_t n);

/* An axis: distinct tuples of `width` values. */
typedef struct dm_taxis {
    size_t width, n, cap;
    dm_tkv *v; /* n * width */
} dm_taxis;

void dm_taxis_free(dm_taxis *a);
/* The index of tuple t (added if new; the axis copies the text). -1 when out of memory. */
long dm_taxis_add(dm_taxis *a, const dm_tkv *t);
/* order[k] = the index of the k-th smallest tuple; NULL when out of memory. */
size_t *dm_taxis_order(const dm_taxis *a);

/* A descriptor: key = value entries, sorted by key once sealed, with their canonical text (two
 * descriptors are equal when their texts are). */
typedef struct dm_tdesc {
    size_t n, cap;
    char **key, **val; /* owned */
    char *canon;       /* owned; set by dm_tdesc_seal */
} dm_tdesc;

int dm_tdesc_push(dm_tdesc *d, const char *key, const char *val); /* copies; -1 out of memory */
int dm_tdesc_seal(dm_tdesc *d);                                   /* -1 out of memory */
const char *dm_tdesc_get(const dm_tdesc *d, const char *key);     /* NULL when absent */
void dm_tdesc_free(dm_tdesc *d);

/* Distinct sealed descriptors. */
typedef struct dm_tpool {
    size_t n, cap;
    dm_tdesc *d;
} dm_tpool;

/* The index of d in the pool; d is consumed (kept, or freed when an equal one is there). -1
 * when out of memory (d freed). */
long dm_tpool_add(dm_tpool *p, dm_tdesc *d);
void dm_tpool_free(dm_tpool *p);

/* A growing list of owned strings (the notes). */
int dm_table_add_note(char ***v, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ the build state ---- */

typedef struct dm_trun {
    char *id;
    long long seed;
    long desc;  /* run descriptor (ctx->descs): the params a cell's runs must share */
    long sig;   /* data/eval signature (ctx->sigs): the params a floor must share */
} dm_trun;

/* One value of a finished run in one cell, or one 'exact' eval (the floor). */
typedef struct dm_trec {
    size_t row, col; /* base row and column (axis indices); unused for the floor */
    size_t run;      /* ctx->runs */
    long ident;      /* eval identity (ctx->idents); -1 for a training series */
    long group;      /* config group (table_groups.c) */
    size_t frow;     /* the table's row (table_groups.c) */
    double v;
} dm_trec;

/* A row of the table: a base row (its key values) and, when its cells hold several config
 * groups, the values of the keys in which they differ. */
typedef struct dm_tfrow {
    size_t base;   /* rows axis */
    char *sub;     /* those values, "\x1f"-separated ("" when the row is not split) */
    char *label;   /* "key=value, ..." ("" when not split) */
} dm_tfrow;

typedef struct dm_tseed {
    long long seed;
    size_t run;    /* the seed's first run (ctx->runs), to find cells that hold the same runs */
    double v;      /* the mean of the seed's repeats */
} dm_tseed;

typedef struct dm_tctx {
    sqlite3 *db;
    const dm_table_def *d;
    const char *keys[DM_TABLE_MAX_KEYS + 1];
    dm_tkey_kind kinds[DM_TABLE_MAX_KEYS + 1];
    size_t nk, nr;   /* keys: the row keys, then the column key */
    int training;
    dm_taxis rows, cols;
    dm_trun *runs;
    size_t n_runs, cap_runs, last_run;
    dm_trec *recs;
    size_t n_recs, cap_recs, n_multi;
    dm_tkv *fails;      /* n_fails * nk */
    size_t *fail_run;   /* n_fails */
    size_t n_fails, cap_fails;
    dm_trec *floor;     /* the 'exact' evals (--floor) */
    size_t n_floor, cap_floor;
    dm_tpool descs, idents, sigs;
    long *group_desc, *group_ident; /* n_groups */
    size_t n_groups, cap_groups;
    char ***split;      /* per base row: its split keys (NULL-terminated, sorted), or NULL */
    dm_tfrow *frows;
    size_t n_frows, cap_frows;
    char **notes;
    size_t n_notes;
    char *features[2];  /* the feature networks the evals name (settings "features"): the first, a second */
} dm_tctx;

/* table_read.c: step 2. */
dm_status dm_table_read(dm_tctx *c, char *err);
void dm_table_read_free(dm_tctx *c);

/* table_groups.c: step 3: every record's config group and table row (frows, in table order),
 * the failed runs' rows, the notes on split rows. */
dm_status dm_table_groups(dm_tctx *c, const size_t *rrank, char *err);
void dm_table_groups_free(dm_tctx *c);
/* The table rows a failed run counts in (frows indices into out, at most c->n_frows); -1 out of
 * memory. New rows are added for a failed run of a config no finished run has. */
long dm_table_failed_rows(dm_tctx *c, size_t f, size_t *out);

/* table_floor.c: the floor of every column from c->floor: one value per seed, the column's
 * runs' data/eval signature; cells[n_cols]. Notes for columns without one. */
dm_status dm_table_floor_cells(dm_tctx *c, dm_table *t, const size_t *crank, dm_table_cell *cells,
                               char *err);

/* table_cells.c: values by cell, seed and run; sorted, then reduced to one value per seed (the
 * mean of its repeats, summed in run order) with each cell's seeds at seeds[off[k] ..
 * off[k + 1]) and its repeats counted; then the mean and spread over the seeds (two passes). */
typedef struct dm_tval {
    size_t cell;
    long long seed;
    size_t run;
    double v;
} dm_tval;
void dm_tval_sort(dm_tval *v, size_t n);
void dm_table_seeds(const dm_tval *v, size_t n, size_t n_cells, dm_tseed *seeds, size_t *off,
                    size_t *repeats);
void dm_table_fill_cell(dm_table_cell *x, const dm_tseed *s, size_t n, dm_table_errbar eb);

/* table_stats.c: the best cell of each column (rows other than the floor), tested against the
 * runner-up; seeds[off[k] .. off[k + 1]) are cell k's. */
void dm_table_mark_best(dm_table *t, const dm_tseed *seeds, const size_t *off);

/* table_render.c: the shortest "%.*g" text that reads back to the same double. */
void dm_table_format_real(char *buf, size_t n, double v);

#endif
