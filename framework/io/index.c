/* index.c — results/index.sqlite: opening (WAL, busy timeout, schema check), the per-run upsert
 * in one BEGIN IMMEDIATE transaction, status updates, `difflab query` output, and the atomic
 * replacement of the whole file by `difflab reindex`.
 *
 * The index is derived data: dm_index_upsert_run deletes and re-inserts every row of a run, so
 * re-indexing from the run files is idempotent. Every writer rolls back on error so that the
 * database is never left locked.
 *
 * Concurrency (many runs finishing at once, `make -j N`, Slurm arrays on one node):
 *
 * - WAL mode: readers never block writers nor the other way round; writers take turns.
 * - A busy timeout of DM_INDEX_BUSY_MS: SQLite's busy handler sleeps and retries whenever a lock
 *   it needs is held by another connection, but only where SQLite can do so without deadlock,
 *   i.e. when the statement starts a transaction. It is NOT called when a connection that already
 *   has a read transaction needs a write lock. That happens inside `PRAGMA journal_mode = WAL` on
 *   a new file: the conversion reads page 1, then asks for a write lock, and gets SQLITE_BUSY at
 *   once if another process is converting or creating the schema at that instant (provoked in
 *   tests/test_index.c). The first opening of a fresh results folder by 16 runs at once is
 *   exactly that moment. SQLITE_PROTOCOL (a WAL read lock still unobtainable after SQLite's own
 *   ~100 tries, under heavy contention) is transient in the same way.
 * - So every unit of work (the opening sequence, the schema creation, each upsert transaction,
 *   each status update, the first step of a query) runs in with_retry(): on SQLITE_BUSY,
 *   SQLITE_LOCKED or SQLITE_PROTOCOL it rolls back what it did and starts over after a jittered,
 *   doubling sleep (1 ms up to 250 ms) until DM_INDEX_RETRY_S seconds have passed. A busy error
 *   therefore reaches the user only if the index stayed busy that long, and then as "the index
 *   stayed busy", never as SQLite's "database is locked".
 * - The schema is created in one BEGIN IMMEDIATE transaction that checks user_version again
 *   once it holds the write lock: of several processes that all saw version 0, one creates it
 *   and the others find it done.
 *
 * Replacement by `difflab reindex` (dm_index_replace): the new index is built in a private file
 * and renamed over index.sqlite. A connection keeps using the file it opened, so three things
 * are needed for that to lose nothing and corrupt nothing:
 *
 * - SQLite finds the -wal and -shm files by NAME. A stale index.sqlite-wal holding frames of the
 *   old database would be replayed into the new one (SQLite's documented "mispaired hot
 *   journal" corruption), and a process that opened index.sqlite just before the rename but
 *   opens the -wal/-shm just after would pair the old file with the new database's WAL. So the
 *   old -wal, -shm and -journal are removed before the rename, and opening is serialized
 *   against the swap with flock() on "<index>.lock": dm_index_open holds a shared lock from
 *   before sqlite3_open_v2 until its connection has bound its WAL files (first read, schema
 *   creation); the swap holds the exclusive lock. Connections opened earlier keep their open
 *   descriptors to the old (now unlinked) files and stay consistent. On close SQLite checkpoints
 *   and deletes the -wal by name only if the database file was not moved (databaseIsUnmoved()),
 *   and only if it is the last connection, which it cannot be while the swap holds its own
 *   connection to the old file.
 * - During the swap the old index is write-locked (BEGIN IMMEDIATE), and dm_index_replace's
 *   caller is called back at that moment to add what changed on disk while the new index was
 *   being built (no one can commit to the old index until the rename is done).
 * - A writer whose connection still points at the replaced file would commit into the void.
 *   So every write checks after its commit whether the path still names the file the
 *   connection opened (device and inode); if not, it reopens and writes again (the upsert is
 *   idempotent). Any commit before the swap's write lock is seen by the catch-up; any commit
 *   after it lands in the old file and is then redone in the new one.
 *
 * The lock file is never removed or replaced; flock() needs a local file system (so does WAL). */
#include "io/index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/path.h"

extern const char dm_index_schema_sql[]; /* index_schema.c */
extern const char dm_index_views_sql[];
extern const char dm_index_metric_info_sql[];
extern const char dm_index_views_temp_sql[];

struct dm_index {
    sqlite3 *db;
    char *path;
    int readonly;
    int private_file;   /* dm_index_create_tmp: no lock file, never replaced under us */
    int last_rc;        /* extended SQLite code of the last failure (for with_retry) */
    int have_id;
    dev_t dev;          /* the file this connection opened */
    ino_t ino;
};

sqlite3 *dm_index_db(dm_index *ix)
{
    return ix->db;
}

/* ----------------------------------------------------------------- retry, backoff ---- */

static long g_retries; /* dm_index_retries() */

long dm_index_retries(void)
{
    return __atomic_load_n(&g_retries, __ATOMIC_RELAXED);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Transient failures: another connection holds a lock we need, or SQLite gave up on its own
 * short internal retries (SQLITE_PROTOCOL). */
static int retryable(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_PROTOCOL;
}

typedef struct backoff {
    double deadline;
    unsigned delay_us;
    unsigned seed;
} backoff;

static void backoff_init(backoff *b, double seconds)
{
    b->deadline = mono_now() + seconds;
    b->delay_us = 1000;
    b->seed = (unsigned)getpid() * 2654435761u ^ (unsigned)(uint64_t)(mono_now() * 1e6);
}

/* Sleep before the next attempt: uniformly in [d/2, 3d/2) (so processes that collided spread
 * out), d doubling up to 250 ms. 0 when the deadline has passed. */
static int backoff_wait(backoff *b)
{
    double now = mono_now();
    if (now >= b->deadline)
        return 0;
    unsigned d = b->delay_us / 2 + (unsigned)(rand_r(&b->seed) % b->delay_us);
    if (now + 1e-6 * d > b->deadline)
        d = (unsigned)((b->deadline - now) * 1e6) + 1;
    usleep(d);
    b->delay_us = b->delay_us >= 125000 ? 250000 : 2 * b->delay_us;
    __atomic_fetch_add(&g_retries, 1, __ATOMIC_RELAXED);
    return 1;
}

/* An SQLite failure as our status: what we were doing and SQLite's message; NOMEM kept apart.
 * The code is kept in ix->last_rc for with_retry (a ROLLBACK afterwards would overwrite it). */
static dm_status sql_err(dm_index *ix, char *err, const char *what)
{
    int rc = sqlite3_extended_errcode(ix->db);
    ix->last_rc = rc;
    if (rc == SQLITE_NOMEM)
        return dm_err(err, DM_E_NOMEM, "index %s: out of memory %s", ix->path, what);
    if (retryable(rc))
        return dm_err(err, DM_E_IO, "index %s: %s failed: the index stayed busy (other processes "
                      "writing to it) for over %d s", ix->path, what, DM_INDEX_RETRY_S);
    return dm_err(err, DM_E_IO, "index %s: %s failed: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

typedef dm_status (*ix_op)(dm_index *ix, void *ctx, char *err);

/* Run op until it succeeds, fails for a reason other than a lock, or DM_INDEX_RETRY_S have
 * passed. op must leave no transaction open when it fails. */
static dm_status with_retry(dm_index *ix, ix_op op, void *ctx, char *err)
{
    backoff b;
    backoff_init(&b, DM_INDEX_RETRY_S);
    for (;;) {
        ix->last_rc = SQLITE_OK;
        dm_status st = op(ix, ctx, err);
        if (st != DM_E_IO || !retryable(ix->last_rc) || !backoff_wait(&b))
            return st;
    }
}

static dm_status exec(dm_index *ix, const char *sql, const char *what, char *err)
{
    if (sqlite3_exec(ix->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_err(ix, err, what);
    return DM_OK;
}

/* One integer from a one-row query. */
static dm_status query_int(dm_index *ix, const char *sql, sqlite3_int64 *v, const char *what,
                           char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        st = sql_err(ix, err, what);
        goto out;
    }
    *v = sqlite3_column_int64(s, 0);
out:
    sqlite3_finalize(s);
    return st;
}

/* SQLite's own sqrt (SQLITE_ENABLE_MATH_FUNCTIONS) has the same semantics: NULL for NULL or
 * a negative argument. */
static void sqrt_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    double x = sqlite3_value_double(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || x < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, sqrt(x));
}

/* The group views need sqrt(); register ours only where the library lacks it. */
static dm_status ensure_sqrt(dm_index *ix, char *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(ix->db, "SELECT sqrt(4.0)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_finalize(s);
        return DM_OK;
    }
    if (sqlite3_create_function(ix->db, "sqrt", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                sqrt_fn, NULL, NULL) != SQLITE_OK)
        return sql_err(ix, err, "registering sqrt()");
    return DM_OK;
}

static dm_status create_schema(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    dm_status st = DM_OK;
    sqlite3_int64 version = 0;
    int began = 0;
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting the schema transaction", err)))
        goto out;
    began = 1;
    /* Another process may have created it while we waited for the lock. */
    if ((st = query_int(ix, "PRAGMA user_version", &version, "reading the schema", err)) ||
        version != 0)
        goto out;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", DM_INDEX_SCHEMA_VERSION);
    if ((st = exec(ix, dm_index_schema_sql, "creating the schema", err)) ||
        (st = exec(ix, pragma, "setting the schema version", err)))
        goto out;
out:
    if (began) {
        if (st)
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        else if ((st = exec(ix, "COMMIT", "committing the schema", err)))
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return st;
}

/* Bring a version-1 index (written before the Slurm columns) to the current version: ALTER TABLE
 * adds the columns, which CREATE TABLE IF NOT EXISTS would not. Old rows get NULLs there (a
 * reindex fills them from the run files). */
static dm_status migrate_schema(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    dm_status st = DM_OK;
    sqlite3_int64 version = 0;
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting the schema migration", err)))
        return st;
    /* Another process may have migrated it while we waited for the lock. */
    if (!(st = query_int(ix, "PRAGMA user_version", &version, "reading the schema", err)) && version == 1)
        st = exec(ix, "ALTER TABLE runs ADD COLUMN slurm_job_id INTEGER;"
                      "ALTER TABLE runs ADD COLUMN slurm_array_job_id INTEGER;"
                      "ALTER TABLE runs ADD COLUMN slurm_array_task_id INTEGER;"
                      "PRAGMA user_version = 2;",
                  "adding the Slurm columns (schema version 1 -> 2)", err);
    if (st)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    else if ((st = exec(ix, "COMMIT", "committing the schema migration", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* The summary views (run_summary, group_summary, students) of an index made before them: added
 * for good on a writable connection, as TEMP views on a read-only one. */
static dm_status ensure_views(dm_index *ix, void *ctx, char *err)
{
    const int readonly = ctx != NULL;
    sqlite3_int64 n = 0;
    dm_status st = query_int(ix, "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND "
                                 "name IN ('run_summary', 'group_summary', 'students')", &n,
                             "looking for the summary views", err);
    if (st || n == 3)
        return st;
    if (readonly)
        return exec(ix, dm_index_views_temp_sql, "adding the summary views", err);
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting the views transaction", err)))
        return st;
    if ((st = exec(ix, dm_index_views_sql, "adding the summary views", err)) ||
        (st = exec(ix, "COMMIT", "committing the summary views", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* The program's metric_info rows in an index an older program wrote (a no-op write when they are
 * up to date). Writable connections only: a read-only one reads what is there. */
static dm_status ensure_metric_info(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    return exec(ix, dm_index_metric_info_sql, "updating metric_info", err);
}

/* flock() on "<index>.lock", shared while opening, exclusive while dm_index_replace swaps the
 * file (see the top of this file). With create the lock file is made if missing (writers);
 * without, a missing lock file means no lock (a read-only open). A file system without flock()
 * also means no lock. *fd holds the lock (close it to release), or is -1. */
static dm_status lock_index(const char *path, int exclusive, int create, int *fd, char *err)
{
    char lp[DM_PATH_SIZE];
    dm_status st = dm_path_fmt(lp, sizeof lp, err, "%s.lock", path);
    *fd = -1;
    if (st)
        return st;
    int f;
    do
        f = open(lp, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0666);
    while (f < 0 && errno == EINTR);
    if (f < 0)
        return create ? dm_err(err, DM_E_IO, "cannot open the index lock file %s: %s", lp,
                               strerror(errno))
                      : DM_OK;
    backoff b;
    backoff_init(&b, DM_INDEX_RETRY_S);
    for (;;) {
        if (flock(f, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
            *fd = f;
            return DM_OK;
        }
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            close(f);
            return DM_OK;
        }
        if (!backoff_wait(&b)) {
            close(f);
            return exclusive ? dm_err(err, DM_E_IO, "index %s: other processes kept opening it "
                                      "for over %d s; not replaced", path, DM_INDEX_RETRY_S)
                             : dm_err(err, DM_E_IO, "index %s: `difflab reindex` kept replacing "
                                      "it for over %d s", path, DM_INDEX_RETRY_S);
        }
    }
}

typedef struct header {
    sqlite3_int64 n_objects, version;
} header;

static dm_status read_header(dm_index *ix, void *ctx, char *err)
{
    header *h = ctx;
    dm_status st;
    if ((st = query_int(ix, "SELECT count(*) FROM sqlite_master", &h->n_objects,
                        "reading the schema", err)) ||
        (st = query_int(ix, "PRAGMA user_version", &h->version, "reading the schema", err))) {
        int ec = ix->last_rc & 0xff;
        if (ec == SQLITE_NOTADB || ec == SQLITE_CORRUPT)
            st = dm_err(err, DM_E_IO, "%s is not a difflab index (file is not a database)",
                        ix->path);
    }
    return st;
}

/* A text result of a one-row statement equals want. */
static dm_status query_is(dm_index *ix, const char *sql, const char *want, const char *what,
                          char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        st = sql_err(ix, err, what);
    else if (strcmp((const char *)sqlite3_column_text(s, 0), want) != 0)
        st = dm_err(err, DM_E_IO, "index %s: %s failed: got '%s'", ix->path, what,
                    (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return st;
}

static dm_status set_wal(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    sqlite3_int64 ignored;
    return query_int(ix, "PRAGMA journal_mode = WAL", &ignored, "switching to WAL mode", err);
}

/* Open ix->path into ix->db: check it, make it WAL, create the schema if new. Holds the shared
 * lock of the lock file until the connection has bound its -wal and -shm files, and records
 * which file it opened. */
static dm_status open_conn(dm_index *ix, char *err)
{
    dm_status st = DM_OK;
    header h = {0, 0};
    int lock_fd = -1;
    if (!ix->private_file && (st = lock_index(ix->path, 0, !ix->readonly, &lock_fd, err)))
        return st;
    int flags = ix->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(ix->path, &ix->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM || !ix->db)
            st = dm_err(err, DM_E_NOMEM, "out of memory opening index %s", ix->path);
        else
            st = dm_err(err, DM_E_IO, "cannot open index %s: %s", ix->path,
                        sqlite3_errmsg(ix->db));
        goto out;
    }
    sqlite3_busy_timeout(ix->db, DM_INDEX_BUSY_MS);
    /* Read before writing anything: a file that is not a database fails here, untouched. */
    if ((st = with_retry(ix, read_header, &h, err)))
        goto out;
    /* An empty database is one a writer has just created and not yet given its schema (the
     * schema transaction commits atomically): for a reader, nothing is indexed yet. */
    if (h.version == 0 && h.n_objects == 0 && ix->readonly) {
        st = dm_err(err, DM_E_NOTFOUND, "index %s is empty: run something first", ix->path);
        goto out;
    }
    if (h.version > DM_INDEX_SCHEMA_VERSION || (h.version == 0 && h.n_objects > 0)) {
        st = h.version > DM_INDEX_SCHEMA_VERSION
                 ? dm_err(err, DM_E_STATE, "index %s has schema version %lld, newer than this "
                          "difflab's %d: update difflab or rebuild it with `difflab reindex`",
                          ix->path, (long long)h.version, DM_INDEX_SCHEMA_VERSION)
                 : dm_err(err, DM_E_IO, "%s is not a difflab index (a database without "
                          "difflab's schema)", ix->path);
        goto out;
    }
    /* A private file (dm_index_create_tmp) is filled by one process and may be lost in a crash:
     * no WAL, no fsync until dm_index_replace makes it durable. */
    if (ix->private_file)
        st = exec(ix, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF",
                  "setting up the new index", err);
    else if (!ix->readonly)
        st = with_retry(ix, set_wal, NULL, err);
    if (st || (st = exec(ix, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) ||
        (st = ensure_sqrt(ix, err)))
        goto out;
    if (h.version == 0 && (st = with_retry(ix, create_schema, NULL, err)))
        goto out;
    if (h.version == 1 && !ix->readonly && (st = with_retry(ix, migrate_schema, NULL, err)))
        goto out;
    if ((st = with_retry(ix, ensure_views, ix->readonly ? (void *)ix : NULL, err)))
        goto out;
    if (!ix->readonly && !ix->private_file && (st = with_retry(ix, ensure_metric_info, NULL, err)))
        goto out;
    /* Under the lock no swap can happen: the path names the file just opened. */
    struct stat sb;
    ix->have_id = stat(ix->path, &sb) == 0;
    if (ix->have_id) {
        ix->dev = sb.st_dev;
        ix->ino = sb.st_ino;
    }
out:
    if (lock_fd >= 0)
        close(lock_fd);
    return st;
}

static dm_status index_new(const char *path, int readonly, int private_file, dm_index **out,
                           char *err)
{
    dm_status st = DM_OK;
    dm_index *ix = NULL;
    struct stat sb;
    *out = NULL;
    if (readonly && stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return dm_err(err, DM_E_NOTFOUND, "no index at %s: run something first", path);
        return dm_err(err, DM_E_IO, "cannot open index %s: %s", path, strerror(errno));
    }
    ix = dm_calloc(1, sizeof *ix);
    if (!ix || !(ix->path = dm_strdup(path))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory opening index %s", path);
        goto out;
    }
    ix->readonly = readonly;
    ix->private_file = private_file;
    if ((st = open_conn(ix, err)))
        goto out;
    *out = ix;
    ix = NULL;
out:
    dm_index_close(ix);
    return st;
}

dm_status dm_index_open(const char *path, int readonly, dm_index **out, char *err)
{
    return index_new(path, readonly, 0, out, err);
}

void dm_index_close(dm_index *ix)
{
    if (!ix)
        return;
    sqlite3_close_v2(ix->db); /* v2: a caller's unfinalized statement keeps it alive, no leak */
    dm_free(ix->path);
    dm_free(ix);
}

/* The path no longer names the file this connection opened: `difflab reindex` put a new index
 * in its place (or someone removed it). */
static int index_moved(dm_index *ix)
{
    struct stat sb;
    if (ix->readonly || ix->private_file || !ix->have_id)
        return 0;
    if (stat(ix->path, &sb) != 0)
        return errno == ENOENT;
    return sb.st_dev != ix->dev || sb.st_ino != ix->ino;
}

static dm_status reopen(dm_index *ix, char *err)
{
    sqlite3_close_v2(ix->db);
    ix->db = NULL;
    ix->have_id = 0;
    return open_conn(ix, err);
}

/* A write: op under with_retry, then made sure to have landed in the file the path names now.
 * If the index was replaced before or during the write, the connection is reopened on the new
 * file and op runs again (ops are idempotent). SQLITE_READONLY_DBMOVED is how SQLite refuses a
 * write to a renamed-over database in rollback-journal mode. */
static dm_status write_op(dm_index *ix, ix_op op, void *ctx, char *err)
{
    dm_status st;
    for (int k = 0;; ++k) {
        if (index_moved(ix) && (st = reopen(ix, err)))
            return st;
        st = with_retry(ix, op, ctx, err);
        int moved = index_moved(ix) || (st && ix->last_rc == SQLITE_READONLY_DBMOVED);
        if (!moved || k == 3)
            return st;
    }
}

/* ------------------------------------------------------------------------- writers ---- */

static dm_status prep(dm_index *ix, const char *sql, sqlite3_stmt **s, char *err)
{
    if (sqlite3_prepare_v2(ix->db, sql, -1, s, NULL) != SQLITE_OK)
        return sql_err(ix, err, "preparing a statement");
    return DM_OK;
}

/* Run a bound statement to completion and make it ready for the next bindings. */
static dm_status step_done(dm_index *ix, sqlite3_stmt *s, const char *what, char *err)
{
    int rc = sqlite3_step(s);
    dm_status st = rc == SQLITE_DONE ? DM_OK : sql_err(ix, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

static int bind_str(sqlite3_stmt *s, int i, const char *v)
{
    return v && *v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* An integer attribute: "12", "true"/"false" (git_dirty); anything else is kept as text. */
static int bind_int_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    if (!strcmp(v, "true") || !strcmp(v, "yes"))
        return sqlite3_bind_int(s, i, 1);
    if (!strcmp(v, "false") || !strcmp(v, "no"))
        return sqlite3_bind_int(s, i, 0);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*end && !errno)
        return sqlite3_bind_int64(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int bind_real_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    double x = strtod(v, &end);
    if (!*end)
        return sqlite3_bind_double(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static dm_status insert_run(dm_index *ix, const dm_runrec *r, const char *run_id,
                            const char *run_path, char *err)
{
    static const char *const text_attrs[] = {"name", "status", "created", "finished",
                                             "heartbeat", "git_commit"};
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix,
                        "INSERT INTO runs (run_id, name, status, created, finished, heartbeat, "
                        "git_commit, config_hash, group_hash, seed, git_dirty, host, cpu, path, "
                        "params_sha256, teacher, spec_yaml, n_params, wall_s, slurm_job_id, "
                        "slurm_array_job_id, slurm_array_task_id) VALUES "
                        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                        "?17, ?18, ?19, ?20, ?21, ?22)",
                        &s, err);
    if (st)
        return st;
    int rc = sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    for (int i = 0; i < 6; ++i)
        rc |= bind_str(s, 2 + i, dm_runrec_attr(r, text_attrs[i]));
    rc |= bind_str(s, 8, r->config_hash);
    rc |= bind_str(s, 9, r->group_hash);
    /* SQLite integers are signed 64-bit: a seed above 2^63 reads back negative. */
    rc |= sqlite3_bind_int64(s, 10, (sqlite3_int64)r->seed);
    rc |= bind_int_attr(s, 11, dm_runrec_attr(r, "git_dirty"));
    rc |= bind_str(s, 12, dm_runrec_attr(r, "host"));
    rc |= bind_str(s, 13, dm_runrec_attr(r, "cpu"));
    rc |= bind_str(s, 14, run_path ? run_path : dm_runrec_attr(r, "path"));
    rc |= bind_str(s, 15, dm_runrec_attr(r, "params_sha256"));
    rc |= bind_str(s, 16, dm_runrec_attr(r, "teacher"));
    rc |= bind_str(s, 17, r->config_yaml);
    rc |= bind_int_attr(s, 18, dm_runrec_attr(r, "n_params"));
    rc |= bind_real_attr(s, 19, dm_runrec_attr(r, "wall_s"));
    rc |= bind_int_attr(s, 20, dm_runrec_attr(r, "slurm_job_id"));   /* provenance.c, under Slurm */
    rc |= bind_int_attr(s, 21, dm_runrec_attr(r, "slurm_array_job_id"));
    rc |= bind_int_attr(s, 22, dm_runrec_attr(r, "slurm_array_task_id"));
    st = rc != SQLITE_OK ? sql_err(ix, err, "binding the runs row")
                         : step_done(ix, s, "inserting the runs row", err);
    sqlite3_finalize(s);
    return st;
}

typedef struct param_ctx {
    dm_index *ix;
    sqlite3_stmt *s;
    const char *run_id;
} param_ctx;

static dm_status insert_param(void *ctx, const dm_spec_kv *kv, char *err)
{
    param_ctx *c = ctx;
    int rc = sqlite3_bind_text(c->s, 1, c->run_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(c->s, 2, kv->key, -1, SQLITE_STATIC);
    switch (kv->type) {
    case DM_OPT_INT:
    case DM_OPT_BOOL: rc |= sqlite3_bind_int64(c->s, 3, kv->i); break;
    case DM_OPT_REAL: rc |= sqlite3_bind_double(c->s, 4, kv->r); break;
    default:
        if (kv->text)
            rc |= sqlite3_bind_text(c->s, 5, kv->text, -1, SQLITE_STATIC);
        break;
    }
    if (rc != SQLITE_OK)
        return sql_err(c->ix, err, "binding a params row");
    return step_done(c->ix, c->s, "inserting a params row", err);
}

static dm_status insert_series_evals(dm_index *ix, const dm_runrec *r, const char *run_id,
                                     char *err)
{
    sqlite3_stmt *m = NULL, *e = NULL;
    dm_status st;
    if ((st = prep(ix, "INSERT INTO metrics (run_id, key, step, wall_s, value) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)", &m, err)) ||
        (st = prep(ix, "INSERT INTO evals (run_id, metric, sampler, nfe, settings, n_samples, "
                       "value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &e, err)))
        goto out;
    for (size_t i = 0; i < r->n_series; ++i) {
        const dm_series *s = &r->series[i];
        for (size_t k = 0; k < s->n; ++k) {
            int rc = sqlite3_bind_text(m, 1, run_id, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_text(m, 2, s->name, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_int64(m, 3, s->step[k]);
            rc |= sqlite3_bind_double(m, 4, s->wall_s[k]); /* NaN is stored as NULL */
            rc |= sqlite3_bind_double(m, 5, s->value[k]);
            if (rc != SQLITE_OK) {
                st = sql_err(ix, err, "binding a metrics row");
                goto out;
            }
            if ((st = step_done(ix, m, "inserting a metrics row", err)))
                goto out;
        }
    }
    for (size_t i = 0; i < r->n_evals; ++i) {
        const dm_eval *v = &r->evals[i];
        int rc = sqlite3_bind_text(e, 1, run_id, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 2, v->metric, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 3, v->sampler, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 4, v->nfe);
        rc |= sqlite3_bind_text(e, 5, v->settings_json, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 6, v->n_samples);
        rc |= sqlite3_bind_double(e, 7, v->value);
        if (rc != SQLITE_OK) {
            st = sql_err(ix, err, "binding an evals row");
            goto out;
        }
        if ((st = step_done(ix, e, "inserting an evals row", err)))
            goto out;
    }
out:
    sqlite3_finalize(m);
    sqlite3_finalize(e);
    return st;
}

typedef struct upsert_ctx {
    const dm_runrec *r;
    const dm_spec *spec;
    const char *run_path, *run_id;
} upsert_ctx;

static const char *const run_deletes[] = {
    "DELETE FROM params WHERE run_id = ?1", "DELETE FROM metrics WHERE run_id = ?1",
    "DELETE FROM evals WHERE run_id = ?1", "DELETE FROM runs WHERE run_id = ?1"};

static dm_status delete_rows(dm_index *ix, const char *run_id, char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    for (size_t i = 0; i < sizeof run_deletes / sizeof *run_deletes && !st; ++i) {
        if ((st = prep(ix, run_deletes[i], &s, err)))
            break;
        if (sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC) != SQLITE_OK)
            st = sql_err(ix, err, "binding a run id");
        else
            st = step_done(ix, s, "deleting the old rows", err);
        sqlite3_finalize(s);
        s = NULL;
    }
    return st;
}

/* One transaction: every row of the run deleted and written again. */
static dm_status upsert_op(dm_index *ix, void *ctx, char *err)
{
    const upsert_ctx *u = ctx;
    dm_status st = DM_OK;
    sqlite3_stmt *s = NULL;
    int began = 0;
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err)))
        goto out;
    began = 1;
    if ((st = delete_rows(ix, u->run_id, err)) ||
        (st = insert_run(ix, u->r, u->run_id, u->run_path, err)))
        goto out;
    if (u->spec) {
        if ((st = prep(ix, "INSERT INTO params (run_id, key, int_value, real_value, text_value) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)", &s, err)))
            goto out;
        param_ctx c = {ix, s, u->run_id};
        if ((st = dm_spec_foreach(u->spec, insert_param, &c, err)))
            goto out;
    }
    if ((st = insert_series_evals(ix, u->r, u->run_id, err)))
        goto out;
    st = exec(ix, "COMMIT", "committing", err);
out:
    sqlite3_finalize(s);
    if (st && began)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_upsert_run(dm_index *ix, const dm_runrec *r, const dm_spec *spec,
                              const char *run_path, char *err)
{
    const char *run_id = dm_runrec_attr(r, "run_id");
    if (!run_id || !*run_id)
        return dm_err(err, DM_E_INPUT, "cannot index a run record without a run_id attribute");
    upsert_ctx u = {r, spec, run_path, run_id};
    dm_status st = write_op(ix, upsert_op, &u, err);
    if (st)
        dm_err_prefix(err, "indexing run %s", run_id);
    return st;
}

static dm_status delete_op(dm_index *ix, void *ctx, char *err)
{
    dm_status st = exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err);
    if (st)
        return st;
    if ((st = delete_rows(ix, ctx, err)) || (st = exec(ix, "COMMIT", "committing", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_delete_run(dm_index *ix, const char *run_id, char *err)
{
    dm_status st = write_op(ix, delete_op, (void *)run_id, err);
    if (st)
        dm_err_prefix(err, "removing run %s from the index", run_id);
    return st;
}

typedef struct status_ctx {
    const char *run_id, *status;
} status_ctx;

static dm_status status_op(dm_index *ix, void *ctx, char *err)
{
    /* finished = when the run stopped for good; a resumed (running) run has not. */
    static const char sql[] =
        "UPDATE runs SET status = ?2, heartbeat = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), "
        "finished = CASE WHEN ?2 IN ('finished', 'diverged', 'failed') "
        "THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHEN ?2 = 'running' THEN NULL "
        "ELSE finished END WHERE run_id = ?1";
    const status_ctx *c = ctx;
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix, sql, &s, err);
    if (st)
        goto out;
    if ((sqlite3_bind_text(s, 1, c->run_id, -1, SQLITE_STATIC) |
         sqlite3_bind_text(s, 2, c->status, -1, SQLITE_STATIC)) != SQLITE_OK) {
        st = sql_err(ix, err, "binding the status");
        goto out;
    }
    if ((st = step_done(ix, s, "updating the status", err)))
        goto out;
    if (sqlite3_changes(ix->db) == 0)
        st = dm_err(err, DM_E_NOTFOUND, "no run %s in the index %s", c->run_id, ix->path);
out:
    sqlite3_finalize(s);
    return st;
}

dm_status dm_index_set_status(dm_index *ix, const char *run_id, const char *status, char *err)
{
    status_ctx c = {run_id, status};
    return write_op(ix, status_op, &c, err);
}

/* ----------------------------------------------------------------- replacement ---- */

/* Remove path's -wal, -shm and -journal (missing is fine). */
static dm_status remove_sidecars(const char *path, char *err)
{
    static const char *const ext[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; ++i) {
        char p[DM_PATH_SIZE];
        dm_status st = dm_path_fmt(p, sizeof p, err, "%s%s", path, ext[i]);
        if (st)
            return st;
        if (unlink(p) != 0 && errno != ENOENT)
            return dm_err(err, DM_E_IO, "cannot remove %s: %s", p, strerror(errno));
    }
    return DM_OK;
}

static int has_sidecar(const char *path)
{
    char p[DM_PATH_SIZE];
    struct stat sb;
    return (snprintf(p, sizeof p, "%s-wal", path) < (int)sizeof p && stat(p, &sb) == 0) ||
           (snprintf(p, sizeof p, "%s-shm", path) < (int)sizeof p && stat(p, &sb) == 0);
}

dm_status dm_index_create_tmp(const char *path, dm_index **out, char *err)
{
    *out = NULL;
    dm_status st = remove_sidecars(path, err);
    if (st)
        return st;
    if (unlink(path) != 0 && errno != ENOENT)
        return dm_err(err, DM_E_IO, "cannot remove the old temporary index %s: %s", path,
                      strerror(errno));
    return index_new(path, 0, 1, out, err);
}

/* Hold the write lock of the index being replaced, so that nothing commits to it until the
 * rename. *out is NULL when there is nothing to hold: no file, or one SQLite cannot use (not a
 * database, corrupt), which is replaced as it is. */
static dm_status lock_old(const char *path, sqlite3 **out, char *err)
{
    struct stat sb;
    sqlite3 *db = NULL;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return DM_OK;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_NOMEM || !db) {
        sqlite3_close(db);
        return dm_err(err, DM_E_NOMEM, "out of memory opening index %s", path);
    }
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, DM_INDEX_BUSY_MS);
        backoff b;
        backoff_init(&b, DM_INDEX_RETRY_S);
        while (retryable(rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) &&
               backoff_wait(&b))
            ;
    }
    if (rc == SQLITE_OK) {
        *out = db;
        return DM_OK;
    }
    sqlite3_close(db);
    if (retryable(rc))
        return dm_err(err, DM_E_IO, "index %s stayed busy (other processes writing to it) for "
                      "over %d s: not replaced", path, DM_INDEX_RETRY_S);
    return DM_OK;
}

static int fsync_path(const char *p, int flags)
{
    int fd;
    do
        fd = open(p, flags | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The order matters; see the top of this file:
 *   1. exclusive flock: no process is between opening index.sqlite and binding its -wal/-shm;
 *   2. BEGIN IMMEDIATE on the old index: no commits to it from here on (earlier connections
 *      wait, then find the file replaced and write again into the new one);
 *   3. catch_up: the caller adds to fresh what changed while it was built;
 *   4. fresh switched to WAL and closed: its only connection checkpoints it and deletes its
 *      -wal and -shm, so the file is complete by itself; fsync'ed;
 *   5. the old -wal, -shm and -journal removed: a new index must not be paired with them;
 *      connections of the old file keep their open descriptors to them;
 *   6. rename over the old file, fsync the folder;
 *   7. the old connection rolled back and closed: SQLite sees its file was moved and neither
 *      checkpoints nor deletes anything by name; then the flock is released. */
dm_status dm_index_replace(dm_index *fresh, const char *path, dm_index_catch_up_fn catch_up,
                           void *ctx, char *err)
{
    dm_status st = DM_OK;
    int lock_fd = -1, renamed = 0;
    sqlite3 *old = NULL;
    const char *tmp = fresh->path;
    char dir[DM_PATH_SIZE];
    const char *slash = strrchr(path, '/');
    if ((st = dm_path_fmt(dir, sizeof dir, err, "%.*s", slash ? (int)(slash - path) + 1 : 1,
                          slash ? path : ".")))
        goto out;
    if ((st = lock_index(path, 1, 1, &lock_fd, err)) || (st = lock_old(path, &old, err)))
        goto out;
    if (catch_up && (st = catch_up(ctx, fresh, err)))
        goto out;
    if ((st = query_is(fresh, "PRAGMA journal_mode = WAL", "wal", "switching to WAL mode", err)))
        goto out;
    int rc = sqlite3_close(fresh->db);
    fresh->db = NULL;
    if (rc != SQLITE_OK || has_sidecar(tmp)) {
        st = dm_err(err, DM_E_IO, "new index %s: closing it left its WAL behind", tmp);
        goto out;
    }
    if (fsync_path(tmp, O_RDONLY) != 0) {
        st = dm_err(err, DM_E_IO, "new index %s: fsync failed: %s", tmp, strerror(errno));
        goto out;
    }
    if ((st = remove_sidecars(path, err)))
        goto out;
    if (rename(tmp, path) != 0) {
        st = dm_err(err, DM_E_IO, "cannot rename %s to %s: %s (the old index may now lack its "
                    "last writes: run `difflab reindex` again)", tmp, path, strerror(errno));
        goto out;
    }
    renamed = 1;
    /* Some file systems cannot fsync a folder (EINVAL): the rename is then as durable as that
     * file system makes it. */
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0 && errno != EINVAL && errno != ENOTSUP)
        st = dm_err(err, DM_E_IO, "%s: fsync of its folder %s failed: %s", path, dir,
                    strerror(errno));
out:
    if (old) {
        sqlite3_exec(old, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(old);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    sqlite3_close_v2(fresh->db);
    fresh->db = NULL;
    if (!renamed) {
        unlink(tmp);
        remove_sidecars(tmp, NULL);
    }
    dm_index_close(fresh);
    return st;
}

/* --------------------------------------------------------------------------- query ---- */

/* Shortest "%.*g" that reads back to the same double (CSV and JSON keep full precision). */
static void fmt_real_exact(char *buf, size_t n, double v)
{
    for (int p = 15; p <= 17; ++p) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put_hex(FILE *out, const unsigned char *b, int n)
{
    fputs("x'", out);
    for (int i = 0; i < n; ++i)
        fprintf(out, "%02x", b[i]);
    fputc('\'', out);
}

/* RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes inside. */
static void put_csv(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; ++s) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out); /* UTF-8 passes through: JSON text is UTF-8 */
        }
    }
    fputc('"', out);
}

/* One value of the current row in CSV or JSON. */
static void put_value(FILE *out, sqlite3_stmt *s, int c, dm_query_fmt fmt)
{
    char buf[40];
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL:
        if (fmt == DM_QUERY_JSON)
            fputs("null", out);
        break;
    case SQLITE_INTEGER: fprintf(out, "%lld", (long long)sqlite3_column_int64(s, c)); break;
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(s, c);
        if (fmt == DM_QUERY_JSON && !isfinite(v)) {
            fputs("null", out); /* JSON has no infinity */
            break;
        }
        fmt_real_exact(buf, sizeof buf, v);
        fputs(buf, out);
        break;
    }
    case SQLITE_BLOB:
        if (fmt == DM_QUERY_JSON)
            fputc('"', out);
        put_hex(out, sqlite3_column_blob(s, c), sqlite3_column_bytes(s, c));
        if (fmt == DM_QUERY_JSON)
            fputc('"', out);
        break;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, c);
        if (fmt == DM_QUERY_JSON)
            put_json_str(out, t ? t : "");
        else
            put_csv(out, t ? t : "");
    }
    }
}

/* The aligned table is printed after the last row, so cells are kept as text until then. */
typedef struct table {
    int ncol;
    char **cells; /* row-major, header row first */
    size_t n, cap;
    size_t *width;
    unsigned char *num_seen, *text_seen;
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; ++i)
        dm_free(t->cells[i]);
    dm_free(t->cells);
    dm_free(t->width);
    dm_free(t->num_seen);
    dm_free(t->text_seen);
}

/* Display width: code points, not bytes (UTF-8 continuation bytes do not count). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; ++s)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Append one cell (takes ownership of text; NULL text means out of memory). */
static int table_push(table *t, char *text)
{
    if (!text)
        return -1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 64;
        char **p = nc < SIZE_MAX / sizeof *p ? dm_realloc(t->cells, nc * sizeof *p) : NULL;
        if (!p) {
            dm_free(text);
            return -1;
        }
        t->cells = p;
        t->cap = nc;
    }
    size_t c = t->n % (size_t)t->ncol, w = text_width(text);
    if (w > t->width[c])
        t->width[c] = w;
    t->cells[t->n++] = text;
    return 0;
}

static char *cell_text(sqlite3_stmt *s, int c, table *t)
{
    char buf[40];
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: return dm_strdup("");
    case SQLITE_INTEGER:
        t->num_seen[c] = 1;
        snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(s, c));
        return dm_strdup(buf);
    case SQLITE_FLOAT:
        t->num_seen[c] = 1;
        snprintf(buf, sizeof buf, "%.6g", sqlite3_column_double(s, c));
        return dm_strdup(buf);
    case SQLITE_BLOB: {
        t->text_seen[c] = 1;
        int n = sqlite3_column_bytes(s, c);
        const unsigned char *b = sqlite3_column_blob(s, c);
        char *h = dm_malloc(2 * (size_t)n + 4);
        if (h) {
            char *p = h;
            p += sprintf(p, "x'");
            for (int i = 0; i < n; ++i)
                p += sprintf(p, "%02x", b[i]);
            sprintf(p, "'");
        }
        return h;
    }
    default: {
        t->text_seen[c] = 1;
        const char *v = (const char *)sqlite3_column_text(s, c);
        return dm_strdup(v ? v : "");
    }
    }
}

static void put_spaces(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

/* Blanks are held back until something visible follows, so no line ends in blanks (an empty
 * last cell or a NULL in the last column). */
static void table_print(const table *t, FILE *out)
{
    size_t nc = (size_t)t->ncol, pending = 0;
    for (size_t i = 0; i < t->n; ++i) {
        size_t c = i % nc, pad = t->width[c] - text_width(t->cells[i]);
        int right = t->num_seen[c] && !t->text_seen[c];
        if (c > 0)
            pending += 2;
        if (right)
            pending += pad;
        if (*t->cells[i]) {
            put_spaces(out, pending);
            fputs(t->cells[i], out);
            pending = 0;
        }
        if (!right)
            pending += pad;
        if (c + 1 == nc) {
            fputc('\n', out);
            pending = 0;
        }
        if (i + 1 == nc) { /* the rule under the header */
            for (size_t k = 0; k < nc; ++k) {
                put_spaces(out, k ? 2 : 0);
                for (size_t j = 0; j < t->width[k]; ++j)
                    fputc('-', out);
            }
            fputc('\n', out);
        }
    }
}

/* sqlite3_step for the first row, started over after a transient lock failure (nothing has
 * been returned yet, so nothing is seen twice). */
static int step_first(sqlite3_stmt *s, backoff *b)
{
    int rc;
    while (retryable(rc = sqlite3_step(s)) && backoff_wait(b))
        sqlite3_reset(s);
    return rc;
}

/* Prepare sql as exactly one statement: trailing whitespace, ';' and comments are fine,
 * a second statement is not (a query must not smuggle in a write). */
static dm_status prepare_one(dm_index *ix, const char *sql, sqlite3_stmt **s, char *err)
{
    const char *tail = NULL;
    backoff b;
    int rc;
    *s = NULL;
    backoff_init(&b, DM_INDEX_RETRY_S);
    /* Preparing reads the schema: it can meet a lock like any read. */
    while (retryable(rc = sqlite3_prepare_v2(ix->db, sql, -1, s, &tail)) && backoff_wait(&b))
        ;
    if (rc != SQLITE_OK) {
        if (retryable(rc))
            return dm_err(err, DM_E_IO, "index %s stayed busy for over %d s", ix->path,
                          DM_INDEX_RETRY_S);
        if (sqlite3_errcode(ix->db) == SQLITE_NOMEM)
            return dm_err(err, DM_E_NOMEM, "out of memory preparing the query");
        return dm_err(err, DM_E_INPUT, "SQL error: %s", sqlite3_errmsg(ix->db));
    }
    if (!*s)
        return dm_err(err, DM_E_INPUT, "no SQL statement given");
    while (tail && *tail) {
        sqlite3_stmt *extra = NULL;
        const char *next = NULL;
        int rc = sqlite3_prepare_v2(ix->db, tail, -1, &extra, &next);
        sqlite3_finalize(extra);
        if (rc != SQLITE_OK || extra) {
            while (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r')
                ++tail;
            sqlite3_finalize(*s);
            *s = NULL;
            return dm_err(err, DM_E_INPUT, "only one SQL statement is allowed per query; "
                          "found more: '%.60s'", tail);
        }
        if (next == tail)
            break;
        tail = next;
    }
    return DM_OK;
}

dm_status dm_index_query(dm_index *ix, const char *sql, dm_query_fmt fmt, FILE *out, char *err)
{
    dm_status st = DM_OK;
    sqlite3_stmt *s = NULL;
    table t = {0};
    size_t rows = 0;
    int rc;
    if ((st = prepare_one(ix, sql, &s, err)))
        goto out;
    int ncol = sqlite3_column_count(s);
    if (fmt == DM_QUERY_TABLE && ncol > 0) {
        t.ncol = ncol;
        t.width = dm_calloc((size_t)ncol, sizeof *t.width);
        t.num_seen = dm_calloc((size_t)ncol, 1);
        t.text_seen = dm_calloc((size_t)ncol, 1);
        if (!t.width || !t.num_seen || !t.text_seen)
            goto nomem;
        for (int c = 0; c < ncol; ++c) {
            const char *name = sqlite3_column_name(s, c);
            if (table_push(&t, dm_strdup(name ? name : "")))
                goto nomem;
        }
    } else if (fmt == DM_QUERY_CSV && ncol > 0) {
        for (int c = 0; c < ncol; ++c) {
            const char *name = sqlite3_column_name(s, c);
            if (c)
                fputc(',', out);
            put_csv(out, name ? name : "");
        }
        fputc('\n', out);
    }
    backoff b;
    backoff_init(&b, DM_INDEX_RETRY_S);
    while ((rc = rows ? sqlite3_step(s) : step_first(s, &b)) == SQLITE_ROW) {
        if (fmt == DM_QUERY_JSON)
            fputs(rows ? ",\n  {" : "[\n  {", out);
        for (int c = 0; c < ncol; ++c) {
            if (fmt == DM_QUERY_TABLE) {
                if (table_push(&t, cell_text(s, c, &t)))
                    goto nomem;
            } else if (fmt == DM_QUERY_CSV) {
                if (c)
                    fputc(',', out);
                put_value(out, s, c, fmt);
            } else {
                const char *name = sqlite3_column_name(s, c);
                if (c)
                    fputs(", ", out);
                put_json_str(out, name ? name : "");
                fputs(": ", out);
                put_value(out, s, c, fmt);
            }
        }
        if (fmt == DM_QUERY_CSV)
            fputc('\n', out);
        else if (fmt == DM_QUERY_JSON)
            fputc('}', out);
        ++rows;
    }
    if (rc != SQLITE_DONE) {
        st = rc == SQLITE_NOMEM ? dm_err(err, DM_E_NOMEM, "out of memory running the query")
             : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                 ? dm_err(err, DM_E_IO, "index %s stayed busy for over %d s", ix->path,
                          DM_INDEX_RETRY_S)
                 : dm_err(err, DM_E_INPUT, "SQL error: %s", sqlite3_errmsg(ix->db));
        goto out;
    }
    if (fmt == DM_QUERY_TABLE)
        table_print(&t, out);
    else if (fmt == DM_QUERY_JSON)
        fputs(rows ? "\n]\n" : "[]\n", out);
    if (fflush(out) != 0 || ferror(out))
        st = dm_err(err, DM_E_IO, "writing the query output failed: %s", strerror(errno));
    goto out;
nomem:
    st = dm_err(err, DM_E_NOMEM, "out of memory collecting the query's rows");
out:
    sqlite3_finalize(s);
    table_free(&t);
    return st;
}

/* The one run whose id equals or starts with `pat`. */
dm_status dm_index_find_run(dm_index *ix, const char *pat, char *id, size_t n, char *err)
{
    sqlite3_stmt *q = NULL;
    dm_status st = DM_OK;
    int found = 0, rc;
    backoff b;
    backoff_init(&b, DM_INDEX_RETRY_S);
    while (retryable(rc = sqlite3_prepare_v2(ix->db,
                           "SELECT run_id FROM runs WHERE run_id = ?1 OR substr(run_id, 1, length(?1)) = ?1"
                           " ORDER BY run_id = ?1 DESC, run_id LIMIT 2",
                           -1, &q, NULL)) && backoff_wait(&b))
        ;
    if (rc != SQLITE_OK)
        return dm_err(err, DM_E_IO, "index %s: %s", ix->path,
                      retryable(rc) ? "stayed busy for too long" : sqlite3_errmsg(ix->db));
    sqlite3_bind_text(q, 1, pat, -1, SQLITE_STATIC);
    while ((rc = found ? sqlite3_step(q) : step_first(q, &b)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (found == 1 && strcmp(id, pat) != 0) {
            st = dm_err(err, DM_E_INPUT, "run '%s' is ambiguous: %s, %s, ...", pat, id, r);
            goto out;
        }
        if (found == 0)
            snprintf(id, n, "%s", r);
        found++;
    }
    if (rc != SQLITE_DONE)
        st = dm_err(err, DM_E_IO, "index %s: %s", ix->path,
                    retryable(rc) ? "stayed busy for too long" : sqlite3_errmsg(ix->db));
    else if (!found)
        st = dm_err(err, DM_E_NOTFOUND, "no run '%s' in the index (difflab runs lists them)", pat);
out:
    sqlite3_finalize(q);
    return st;
}
