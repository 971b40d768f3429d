/* index.h — results/index.sqlite, the derived, rebuildable index of runs.
 *
 * Tables: runs, sweep_runs, params (typed: int_value / real_value / text_value), metrics,
 * evals, metric_info, tags and notes (io/annotations.h); views: last_metrics (last value per run and key), group_evals and
 * group_metrics (mean, std, n per group_hash across seeds: one value per seed, repeats counted
 * apart), run_summary, group_summary, students, and run_params (one typed column per param key). Schema version in PRAGMA user_version.
 * Writers use WAL, a busy timeout, and one short BEGIN IMMEDIATE transaction per run upsert;
 * a lock met where SQLite's busy handler does not apply is retried with backoff (index.c says
 * where and why), so many processes can open and write it at the same instant.
 * The files under results/runs/ are the source of truth: dm_index_upsert_run replaces every row
 * of a run, so re-indexing is idempotent, and `difflab reindex` (io/reindex.h) rebuilds the
 * whole file and swaps it in with dm_index_replace. Next to the index live its -wal and -shm
 * (SQLite's) and "<index>.lock" (flock, serializing opening against that swap). */
#ifndef DM_IO_INDEX_H
#define DM_IO_INDEX_H

#include <stdio.h>

#include "io/runrec.h"
#include "io/spec.h"

typedef struct dm_index dm_index;

#define DM_INDEX_SCHEMA_VERSION 3   /* 2: runs.slurm_job_id, slurm_array_job_id, slurm_array_task_id;
                                       3: tables tags and notes */
#define DM_INDEX_BUSY_MS 10000   /* SQLite's busy handler: how long one statement waits */
#define DM_INDEX_RETRY_S 30      /* transient lock failures are retried for this long in all */

/* readonly: open with SQLITE_OPEN_READONLY (for `difflab query`), never creating the file.
 * A file that is not a SQLite database is DM_E_IO naming the path. */
dm_status dm_index_open(const char *path, int readonly, dm_index **out, char *err);
void dm_index_close(dm_index *ix);

/* The view run_params (index_params_view.c): one row per run (run_id, name, seed, status,
 * config_hash, group_hash, created) and one column per key of schema, named by the dotted key
 * and typed by its declaration (int and bool: INTEGER, real: REAL, the others TEXT), NULL where
 * a run lacks the key. Made from schema's key list and marked with its hash: replaced on a
 * writable connection when the index's view is of another list (or absent), shadowed by a TEMP
 * view on a read-only one. dm_index_upsert_run does it with its spec's schema. */
dm_status dm_index_params_view(dm_index *ix, const dm_schema *schema, char *err);

/* Replace all rows of the run r (run_id = its "run_id" attr) in one transaction: runs row from
 * its attrs and hashes, params from spec (dm_spec_foreach), metrics from its series, evals; with
 * a spec, run_params made the view of its schema's keys (dm_index_params_view) in the same
 * transaction. */
dm_status dm_index_upsert_run(dm_index *ix, const dm_runrec *r, const dm_spec *spec,
                              const char *run_path, char *err);

/* Replace the tags and notes rows of a run by a's (its annotations file's content). */
struct dm_annotations;
dm_status dm_index_put_annotations(dm_index *ix, const char *run_id, const struct dm_annotations *a, char *err);

/* Delete every row of a run, its tags and notes included (no error if there is none). */
dm_status dm_index_delete_run(dm_index *ix, const char *run_id, char *err);

/* The status in the runs row of run_id into status (n bytes), "" if the index has no such row. */
dm_status dm_index_run_status(dm_index *ix, const char *run_id, char *status, size_t n, char *err);

/* Update only runs.status (and heartbeat / finished times) of a run. */
dm_status dm_index_set_status(dm_index *ix, const char *run_id, const char *status, char *err);

typedef enum dm_query_fmt { DM_QUERY_TABLE, DM_QUERY_CSV, DM_QUERY_JSON } dm_query_fmt;

/* Run one SQL statement and print its rows (aligned table with a header, CSV with a header, or a
 * JSON array of objects). An SQL error is DM_E_INPUT with SQLite's message. */
dm_status dm_index_query(dm_index *ix, const char *sql, dm_query_fmt fmt, FILE *out, char *err);

/* The run whose id equals `pat`, or the one run whose id starts with it: its id into id (n
 * bytes). DM_E_NOTFOUND if none, DM_E_INPUT if the prefix is ambiguous (naming two). */
dm_status dm_index_find_run(dm_index *ix, const char *pat, char *id, size_t n, char *err);

/* A new index in a private file that no other process opens (it is removed first if it
 * exists): no lock file, an in-memory journal and no fsync while it fills. Only for
 * dm_index_replace. */
dm_status dm_index_create_tmp(const char *path, dm_index **out, char *err);

/* Called by dm_index_replace while nothing can commit to the old index nor open it: add to
 * fresh what changed on disk while it was built. */
typedef dm_status (*dm_index_catch_up_fn)(void *ctx, dm_index *fresh, char *err);

/* Put fresh (from dm_index_create_tmp; consumed: closed, and its file removed on failure) in
 * place of the index at path, atomically: readers see the old index or the new one, never a
 * half-built one. Stale -wal/-shm/-journal files of the old index are removed first (they
 * must never be paired with the new file); connections that had the old file open keep
 * reading it, and a write through them lands in the new file (it is redone there). catch_up
 * may be NULL. A missing, corrupt or foreign old file is simply replaced. */
dm_status dm_index_replace(dm_index *fresh, const char *path, dm_index_catch_up_fn catch_up,
                           void *ctx, char *err);

/* How many times this process waited and retried after a transient lock failure (tests). */
long dm_index_retries(void);

/* The underlying handle, for callers that need a prepared statement of their own. */
struct sqlite3 *dm_index_db(dm_index *ix);

#endif
