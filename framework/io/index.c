/* index.c — results/index.sqlite: the connection. Opening (lock file, WAL, busy timeout,
 * schema check, then the schema steps of index_schema.c), the retry of transient lock failures
 * with backoff that every part of the module uses, and writes redone after a replacement. The
 * other parts: index_schema.c (the SQL and its creation and migrations), index_write.c (the
 * per-run upsert, deletion, status), index_replace.c (the atomic replacement of the whole file
 * by `difflab reindex`), index_query.c (`difflab query` and its output); index_internal.h is
 * what they share.
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
 *   each status update, the first step of a query) runs in dm_ix_with_retry(): on SQLITE_BUSY,
 *   SQLITE_LOCKED or SQLITE_PROTOCOL it rolls back what it did and starts over after a jittered,
 *   doubling sleep (1 ms up to 250 ms) until DM_INDEX_RETRY_S seconds have passed. A busy error
 *   therefore reaches the user only if the index stayed busy that long, and then as "the index
 *   stayed busy", never as SQLite's "database is locked".
 * - The schema is created in one BEGIN IMMEDIATE transaction that checks user_version again
 *   once it holds the write lock: of several processes that all saw version 0, one creates it
 *   and the others find it done.
 *
 * A connection that `difflab reindex` replaced the file under is handled by dm_ix_write_op (at the
 * end of this file); why and how: the top of index_replace.c. */
#include "io/index.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/index_internal.h"

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

void dm_ix_backoff_init(dm_ix_backoff *b, double seconds)
{
    b->deadline = mono_now() + seconds;
    b->delay_us = 1000;
    b->seed = (unsigned)getpid() * 2654435761u ^ (unsigned)(uint64_t)(mono_now() * 1e6);
}

int dm_ix_backoff_wait(dm_ix_backoff *b)
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

dm_status dm_ix_sql_err(dm_index *ix, char *err, const char *what)
{
    int rc = sqlite3_extended_errcode(ix->db);
    ix->last_rc = rc;
    if (rc == SQLITE_NOMEM)
        return dm_err(err, DM_E_NOMEM, "index %s: out of memory %s", ix->path, what);
    if (dm_ix_retryable(rc))
        return dm_err(err, DM_E_IO, "index %s: %s failed: the index stayed busy (other processes "
                      "writing to it) for over %d s", ix->path, what, DM_INDEX_RETRY_S);
    /* A read-only file or file system: say which (SQLite says only "readonly database"). */
    if ((rc & 0xff) == SQLITE_READONLY && access(ix->path, W_OK) != 0)
        return dm_err(err, DM_E_IO, "index %s: %s failed: %s (%s)", ix->path, what,
                      sqlite3_errmsg(ix->db), strerror(errno));
    return dm_err(err, DM_E_IO, "index %s: %s failed: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

dm_status dm_ix_with_retry(dm_index *ix, dm_ix_op op, void *ctx, char *err)
{
    dm_ix_backoff b;
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
    for (;;) {
        ix->last_rc = SQLITE_OK;
        dm_status st = op(ix, ctx, err);
        if (st != DM_E_IO || !dm_ix_retryable(ix->last_rc) || !dm_ix_backoff_wait(&b))
            return st;
    }
}

dm_status dm_ix_exec(dm_index *ix, const char *sql, const char *what, char *err)
{
    if (sqlite3_exec(ix->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return dm_ix_sql_err(ix, err, what);
    return DM_OK;
}

dm_status dm_ix_query_int(dm_index *ix, const char *sql, sqlite3_int64 *v, const char *what,
                          char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        st = dm_ix_sql_err(ix, err, what);
        goto out;
    }
    *v = sqlite3_column_int64(s, 0);
out:
    sqlite3_finalize(s);
    return st;
}

/* ------------------------------------------------------------------------ opening ---- */

dm_status dm_ix_lock(const char *path, int exclusive, int create, int *fd, char *err)
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
    dm_ix_backoff b;
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
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
        if (!dm_ix_backoff_wait(&b)) {
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
    if ((st = dm_ix_query_int(ix, "SELECT count(*) FROM sqlite_master", &h->n_objects,
                              "reading the schema", err)) ||
        (st = dm_ix_query_int(ix, "PRAGMA user_version", &h->version, "reading the schema",
                              err))) {
        int ec = ix->last_rc & 0xff;
        if (ec == SQLITE_NOTADB || ec == SQLITE_CORRUPT)
            st = dm_err(err, DM_E_IO, "%s is not a difflab index (file is not a database)",
                        ix->path);
    }
    return st;
}

static dm_status set_wal(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    sqlite3_int64 ignored;
    return dm_ix_query_int(ix, "PRAGMA journal_mode = WAL", &ignored, "switching to WAL mode",
                           err);
}

/* The size of path's -wal file into *len (0 if there is none); -1 if it cannot be told. */
static int wal_len(const char *path, off_t *len)
{
    char wal[DM_PATH_SIZE];
    struct stat sb;
    *len = 0;
    if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal)
        return -1;
    if (stat(wal, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    *len = sb.st_size;
    return 0;
}

/* A byte a "file:" URI may hold as it is. */
static int uri_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("/._~-", c));
}

/* A reader on a read-only file system (a results folder shared read-only, a read-only bind
 * mount): SQLite opens a WAL index only with its -shm file, which the last writer removed on
 * closing and which cannot be made there (SQLITE_CANTOPEN). Without a -wal file, or with an empty
 * one, every committed transaction is in the main file, and no process can change that file
 * through this mount: it is read as immutable (no locks, no -shm). A -wal file with content
 * cannot be read there: that is said. 1: this case, *st the outcome (DM_OK: reopened as
 * immutable); 0: not this case, *st untouched. */
static int reopen_immutable(dm_index *ix, char *err, dm_status *st)
{
    struct statvfs vs;
    off_t wl = 0;
    if (!ix->readonly || ix->private_file || (ix->last_rc & 0xff) != SQLITE_CANTOPEN ||
        statvfs(ix->path, &vs) != 0 || !(vs.f_flag & ST_RDONLY) || wal_len(ix->path, &wl) != 0)
        return 0;
    if (wl > 0) {
        *st = dm_err(err, DM_E_IO, "index %s is on a read-only file system with an unmerged "
                     "write-ahead log (%s-wal) and no %s-shm: SQLite cannot read it there; open it "
                     "once where it is writable (e.g. `difflab runs`)", ix->path, ix->path, ix->path);
        return 1;
    }
    /* "file:" URI: every byte but [A-Za-z0-9/._~-] percent-encoded; "file://" before an absolute
     * path leaves the authority empty. */
    const size_t n = strlen(ix->path);
    char *uri = dm_malloc(3 * n + 32);
    if (!uri) {
        *st = dm_err(err, DM_E_NOMEM, "out of memory opening index %s", ix->path);
        return 1;
    }
    char *o = uri + sprintf(uri, ix->path[0] == '/' ? "file://" : "file:");
    for (const unsigned char *c = (const unsigned char *)ix->path; *c; c++)
        o += uri_plain(*c) ? sprintf(o, "%c", *c) : sprintf(o, "%%%02X", *c);
    strcpy(o, "?immutable=1");
    sqlite3_close_v2(ix->db);
    ix->db = NULL;
    int rc = sqlite3_open_v2(uri, &ix->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    dm_free(uri);
    if (rc != SQLITE_OK)
        *st = !ix->db || rc == SQLITE_NOMEM
                  ? dm_err(err, DM_E_NOMEM, "out of memory opening index %s", ix->path)
                  : dm_err(err, DM_E_IO, "cannot open index %s (read-only file system): %s",
                           ix->path, sqlite3_errmsg(ix->db));
    else
        *st = DM_OK;
    return 1;
}

/* Open ix->path into ix->db: check it, make it WAL, create the schema if new. Holds the shared
 * lock of the lock file until the connection has bound its -wal and -shm files, and records
 * which file it opened. */
static dm_status open_conn(dm_index *ix, char *err)
{
    dm_status st = DM_OK;
    header h = {0, 0};
    int lock_fd = -1;
    if (!ix->private_file && (st = dm_ix_lock(ix->path, 0, !ix->readonly, &lock_fd, err)))
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
    st = dm_ix_with_retry(ix, read_header, &h, err);
    if (st && reopen_immutable(ix, err, &st) && !st)
        st = dm_ix_with_retry(ix, read_header, &h, err);
    if (st)
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
        st = dm_ix_exec(ix, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF",
                        "setting up the new index", err);
    else if (!ix->readonly)
        st = dm_ix_with_retry(ix, set_wal, NULL, err);
    if (st || (st = dm_ix_exec(ix, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) ||
        (st = dm_ix_ensure_sqrt(ix, err)))
        goto out;
    if (h.version == 0 && (st = dm_ix_with_retry(ix, dm_ix_create_schema, NULL, err)))
        goto out;
    if (h.version >= 1 && h.version < DM_INDEX_SCHEMA_VERSION && !ix->readonly &&
        (st = dm_ix_with_retry(ix, dm_ix_migrate_schema, NULL, err)))
        goto out;
    if (h.version >= 1 && h.version < 3 && ix->readonly && (st = dm_ix_temp_annot_tables(ix, err)))
        goto out;
    if ((st = dm_ix_with_retry(ix, dm_ix_ensure_views, ix->readonly ? (void *)ix : NULL, err)))
        goto out;
    if (!ix->readonly && !ix->private_file &&
        (st = dm_ix_with_retry(ix, dm_ix_ensure_metric_info, NULL, err)))
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

dm_status dm_ix_new(const char *path, int readonly, int private_file, dm_index **out, char *err)
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
    return dm_ix_new(path, readonly, 0, out, err);
}

void dm_index_close(dm_index *ix)
{
    if (!ix)
        return;
    sqlite3_close_v2(ix->db); /* v2: a caller's unfinalized statement keeps it alive, no leak */
    dm_free(ix->path);
    dm_free(ix);
}

sqlite3 *dm_index_db(dm_index *ix)
{
    return ix->db;
}

/* ---------------------------------------------------------- writes after a swap ---- */

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

/* SQLITE_READONLY_DBMOVED is how SQLite refuses a write to a renamed-over database in
 * rollback-journal mode. */
dm_status dm_ix_write_op(dm_index *ix, dm_ix_op op, void *ctx, char *err)
{
    dm_status st;
    for (int k = 0;; ++k) {
        if (index_moved(ix) && (st = reopen(ix, err)))
            return st;
        st = dm_ix_with_retry(ix, op, ctx, err);
        int moved = index_moved(ix) || (st && ix->last_rc == SQLITE_READONLY_DBMOVED);
        if (!moved || k == 3)
            return st;
    }
}
