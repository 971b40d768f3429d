/* index_replace.c — `difflab reindex` puts a rebuilt results/index.sqlite in place of the old one
 * atomically (dm_index_replace).
 *
 * The new index is built in a private file (dm_index_create_tmp) and renamed over index.sqlite.
 * A connection keeps using the file it opened, so three things are needed for that to lose
 * nothing and corrupt nothing:
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
 *   connection opened (device and inode); if not, it reopens and writes again (dm_ix_write_op
 *   in index.c; the upsert is idempotent). Any commit before the swap's write lock is seen by
 *   the catch-up; any commit after it lands in the old file and is then redone in the new one.
 *
 * The lock file is never removed or replaced; flock() needs a local file system (so does WAL). */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"
#include "io/atomic.h"
#include "io/index.h"
#include "io/index_internal.h"

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
    return dm_ix_new(path, 0, 1, out, err);
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
        dm_ix_backoff b;
        dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
        while (dm_ix_retryable(rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) &&
               dm_ix_backoff_wait(&b))
            ;
    }
    if (rc == SQLITE_OK) {
        *out = db;
        return DM_OK;
    }
    sqlite3_close(db);
    if (dm_ix_retryable(rc))
        return dm_err(err, DM_E_IO, "index %s stayed busy (other processes writing to it) for "
                      "over %d s: not replaced", path, DM_INDEX_RETRY_S);
    return DM_OK;
}

/* A text result of a one-row statement equals want. */
static dm_status query_is(dm_index *ix, const char *sql, const char *want, const char *what,
                          char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        st = dm_ix_sql_err(ix, err, what);
    else if (strcmp((const char *)sqlite3_column_text(s, 0), want) != 0)
        st = dm_err(err, DM_E_IO, "index %s: %s failed: got '%s'", ix->path, what,
                    (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return st;
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
    if ((st = dm_ix_lock(path, 1, 1, &lock_fd, err)) || (st = lock_old(path, &old, err)))
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
    if (dm_fsync_path(tmp, O_RDONLY) != 0) {
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
    if (dm_fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0 && errno != EINVAL && errno != ENOTSUP)
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
