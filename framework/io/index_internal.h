/* index_internal.h — what the parts of the index module (io/index*.c) share; included by them
 * only. The connection (struct dm_index), the retry of transient lock failures with backoff,
 * SQLite failures as dm_status, the lock file, and the schema steps run on opening. Where and why
 * each unit of work is retried: the top of index.c. */
#ifndef DM_IO_INDEX_INTERNAL_H
#define DM_IO_INDEX_INTERNAL_H

#include <sqlite3.h>
#include <sys/types.h>

#include "io/index.h"

struct dm_index {
    sqlite3 *db;
    char *path;
    int readonly;
    int private_file;   /* dm_index_create_tmp: no lock file, never replaced under us */
    int last_rc;        /* extended SQLite code of the last failure (for dm_ix_with_retry) */
    int have_id;
    dev_t dev;          /* the file this connection opened */
    ino_t ino;
};

/* Transient failures: another connection holds a lock we need, or SQLite gave up on its own
 * short internal retries (SQLITE_PROTOCOL). */
static inline int dm_ix_retryable(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_PROTOCOL;
}

typedef struct dm_ix_backoff {
    double deadline;
    unsigned delay_us;
    unsigned seed;
} dm_ix_backoff;

/* Attempts until `seconds` from now, the first wait about 1 ms. */
void dm_ix_backoff_init(dm_ix_backoff *b, double seconds);

/* Sleep before the next attempt: uniformly in [d/2, 3d/2) (so processes that collided spread
 * out), d doubling up to 250 ms. 0 when the deadline has passed. Each wait counts in
 * dm_index_retries(). */
int dm_ix_backoff_wait(dm_ix_backoff *b);

/* An SQLite failure as our status: what we were doing and SQLite's message; NOMEM kept apart.
 * The code is kept in ix->last_rc for dm_ix_with_retry (a ROLLBACK afterwards would overwrite
 * it). */
dm_status dm_ix_sql_err(dm_index *ix, char *err, const char *what);

/* One unit of work on the index; must leave no transaction open when it fails. */
typedef dm_status (*dm_ix_op)(dm_index *ix, void *ctx, char *err);

/* Run op until it succeeds, fails for a reason other than a lock, or DM_INDEX_RETRY_S have
 * passed. */
dm_status dm_ix_with_retry(dm_index *ix, dm_ix_op op, void *ctx, char *err);

/* sqlite3_exec of sql; a failure is dm_ix_sql_err with what. */
dm_status dm_ix_exec(dm_index *ix, const char *sql, const char *what, char *err);

/* One integer from a one-row query. */
dm_status dm_ix_query_int(dm_index *ix, const char *sql, sqlite3_int64 *v, const char *what,
                          char *err);

/* flock() on "<index>.lock", shared while opening, exclusive while dm_index_replace swaps the
 * file (see the top of index_replace.c). With create the lock file is made if missing
 * (writers); without, a missing lock file means no lock (a read-only open). A file system
 * without flock() also means no lock. *fd holds the lock (close it to release), or is -1. */
dm_status dm_ix_lock(const char *path, int exclusive, int create, int *fd, char *err);

/* A new connection to path; private_file: dm_index_create_tmp's (no lock file, no WAL). */
dm_status dm_ix_new(const char *path, int readonly, int private_file, dm_index **out, char *err);

/* A write: op under dm_ix_with_retry, then made sure to have landed in the file the path names
 * now. If the index was replaced before or during the write, the connection is reopened on the
 * new file and op runs again (ops must be idempotent). */
dm_status dm_ix_write_op(dm_index *ix, dm_ix_op op, void *ctx, char *err);

/* The schema steps of opening (index_schema.c), in the order index.c runs them. */

/* The group views need sqrt(): registers ours where the library lacks it. */
dm_status dm_ix_ensure_sqrt(dm_index *ix, char *err);

/* dm_ix_op: the whole schema in one BEGIN IMMEDIATE transaction, unless another process created
 * it while we waited for the lock. */
dm_status dm_ix_create_schema(dm_index *ix, void *ctx, char *err);

/* dm_ix_op: an index of version 1 or 2 brought to the current version. */
dm_status dm_ix_migrate_schema(dm_index *ix, void *ctx, char *err);
/* A read-only connection to an index older than the tags and notes tables: empty TEMP ones, so
 * that queries of them work. */
dm_status dm_ix_temp_annot_tables(dm_index *ix, char *err);

/* dm_ix_op: the views of an index made before their current version (or before them); ctx
 * non-NULL on a read-only connection (TEMP views shadow the file's). */
dm_status dm_ix_ensure_views(dm_index *ix, void *ctx, char *err);

/* dm_ix_op: the program's metric_info rows (writable connections only). */
dm_status dm_ix_ensure_metric_info(dm_index *ix, void *ctx, char *err);

/* ---- index_params_view.c: the wide view run_params ---- */

/* Inside the caller's write transaction: run_params replaced by the view of schema's keys unless
 * it is that view already (dm_index_upsert_run). */
dm_status dm_ix_params_view_tx(dm_index *ix, const dm_schema *schema, char *err);

/* ---- index_guard.c: what `difflab query` may do (read, quickly) ---- */

#define DM_QUERY_SECONDS 10.0                 /* a statement's time limit */
#define DM_QUERY_MAX_LENGTH (16 * 1024 * 1024) /* the longest string or blob it may make */

typedef struct dm_ix_guard {
    double seconds, deadline;
    int old_length;
    int timed_out;       /* the progress handler stopped the statement */
    char refused[160];   /* what the authorizer refused, for the message */
} dm_ix_guard;

/* Install the read-only authorizer, the length limit and the time limit on ix's connection;
 * dm_ix_guard_end removes them. */
void dm_ix_guard_begin(dm_index *ix, dm_ix_guard *g);
void dm_ix_guard_end(dm_index *ix, dm_ix_guard *g);

#endif
