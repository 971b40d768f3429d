/* reindex.c — rebuild results/index.sqlite from results/runs/<folder>/run.h5.
 *
 * Two passes. The first reads every run file and fills a new index in a private temporary file
 * while everything else goes on (runs may be finishing and writing the old index). The second
 * runs inside dm_index_replace, while no process can commit to the old index or open it: every
 * run.h5 is looked at again (stat only) and the ones that appeared, changed or disappeared since
 * the first pass are brought up to date, so the swap loses nothing written in between. run.h5 is
 * always replaced by rename, so a changed file has a new inode; device, inode, size and mtime
 * together identify a version. Then the new file replaces the old one by rename. */
#include "io/reindex.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/annotations.h"
#include "io/index.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "io/spec.h"

/* One folder under runs/ and what became of it. */
typedef struct entry {
    char *name;
    int present;            /* run.h5 existed when last looked at; then its identity: */
    struct stat h5;
    struct stat annot;      /* annotations.yaml when last read (all 0: none) */
    char *run_id;           /* indexed as this run; NULL if skipped */
    char *reason;           /* why it was skipped; NULL if indexed */
} entry;

typedef struct entries {
    entry *e;
    size_t n;
} entries;

typedef struct reindex_ctx {
    const char *results;
    const dm_schema *schema;
    entries list;
    dm_runfile_vetter vetter; /* one reader child for all the run files */
} reindex_ctx;

static void entries_free(entries *l)
{
    for (size_t i = 0; i < l->n; ++i) {
        dm_free(l->e[i].name);
        dm_free(l->e[i].run_id);
        dm_free(l->e[i].reason);
    }
    dm_free(l->e);
    l->e = NULL;
    l->n = 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* The folders under runs/ (not hidden ones), sorted by name, as fresh entries. */
static dm_status scan(const char *runs, entries *out, char *err)
{
    dm_status st = DM_OK;
    size_t cap = 0;
    out->e = NULL;
    out->n = 0;
    DIR *d = opendir(runs);
    if (!d)
        return errno == ENOENT
                   ? dm_err(err, DM_E_NOTFOUND, "no runs folder %s: nothing to index", runs)
                   : dm_err(err, DM_E_IO, "cannot list %s: %s", runs, strerror(errno));
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        char p[DM_PATH_SIZE];
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        if ((st = dm_path_fmt(p, sizeof p, err, "%s/%s", runs, de->d_name)))
            goto out;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (out->n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            entry *ne = dm_realloc(out->e, nc * sizeof *ne);
            if (!ne)
                goto nomem;
            out->e = ne;
            cap = nc;
        }
        entry *e = &out->e[out->n];
        memset(e, 0, sizeof *e);
        if (!(e->name = dm_strdup(de->d_name)))
            goto nomem;
        out->n++;
    }
    if (errno) {
        st = dm_err(err, DM_E_IO, "cannot list %s: %s", runs, strerror(errno));
        goto out;
    }
    if (out->n)
        qsort(out->e, out->n, sizeof *out->e, by_name);
    goto out;
nomem:
    st = dm_err(err, DM_E_NOMEM, "out of memory listing %s", runs);
out:
    closedir(d);
    if (st)
        entries_free(out);
    return st;
}

/* Mark e skipped for `why`, dropping the rows it had in the new index. */
static dm_status skip(dm_index *fresh, entry *e, const char *why, char *err)
{
    dm_status st = DM_OK;
    if (e->run_id && (st = dm_index_delete_run(fresh, e->run_id, err)))
        return st;
    dm_free(e->run_id);
    e->run_id = NULL;
    dm_free(e->reason);
    if (!(e->reason = dm_strdup(why)))
        return dm_err(err, DM_E_NOMEM, "out of memory");
    return DM_OK;
}

/* The folder that already holds run_id in the new index, other than dir ("" if none). */
static dm_status holder_of(dm_index *fresh, const char *run_id, const char *dir, char *holder,
                           size_t n, char *err)
{
    sqlite3_stmt *s = NULL;
    holder[0] = '\0';
    if (sqlite3_prepare_v2(dm_index_db(fresh), "SELECT path FROM runs WHERE run_id = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        return dm_err(err, DM_E_IO, "new index: %s", sqlite3_errmsg(dm_index_db(fresh)));
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 0);
        if (p && strcmp(p, dir) != 0)
            snprintf(holder, n, "%s", p);
    }
    sqlite3_finalize(s);
    return DM_OK;
}

/* (Re)index one folder into fresh. Problems of the folder make it skipped; only failures of the
 * new index itself (and out of memory) are errors. */
/* Sweep membership from results/sweeps/<name>/manifest.jsonl (train/sweep.h: one JSON object per
 * line with a "run_id" field): the (sweep, run_id) rows of sweep_runs. A folder without a
 * manifest (a sweep being expanded: .<name>.tmp.<pid>) is skipped. */
static dm_status restore_sweeps(const char *results, dm_index *fresh, char *err)
{
    char dir[DM_PATH_SIZE], man[DM_PATH_SIZE];
    dm_status st = dm_path_fmt(dir, sizeof dir, err, "%s/sweeps", results);
    if (st)
        return st;
    DIR *d = opendir(dir);
    if (!d)
        return DM_OK;   /* no sweeps */
    sqlite3 *db = dm_index_db(fresh);
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO sweep_runs (sweep, run_id) VALUES (?, ?)", -1, &ins, NULL) !=
        SQLITE_OK) {
        closedir(d);
        return dm_err(err, DM_E_IO, "restoring sweeps: %s", sqlite3_errmsg(db));
    }
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    struct dirent *de;
    char line[1 << 16];
    while (!st && (de = readdir(d))) {
        if (de->d_name[0] == '.' || dm_path_fmt(man, sizeof man, err, "%s/%s/manifest.jsonl", dir, de->d_name))
            continue;
        FILE *f = fopen(man, "r");
        if (!f)
            continue;
        int c;
        while (!st) {
            /* Read a whole line (a resolved spec may be long): keep only its start, where run_id is. */
            size_t n = 0;
            while ((c = fgetc(f)) != EOF && c != '\n')
                if (n + 1 < sizeof line)
                    line[n++] = (char)c;
            line[n] = 0;
            const char *r = strstr(line, "\"run_id\":\"");
            if (r) {
                r += 10;
                const size_t m = strcspn(r, "\"");
                sqlite3_bind_text(ins, 1, de->d_name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, 2, r, (int)m, SQLITE_TRANSIENT);
                if (sqlite3_step(ins) != SQLITE_DONE)
                    st = dm_err(err, DM_E_IO, "restoring sweep %s: %s", de->d_name, sqlite3_errmsg(db));
                sqlite3_reset(ins);
            }
            if (c == EOF)
                break;
        }
        fclose(f);
    }
    sqlite3_exec(db, st ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(ins);
    closedir(d);
    return st;
}

static dm_status index_entry(reindex_ctx *c, dm_index *fresh, entry *e, char *err)
{
    char dir[DM_PATH_SIZE], h5[DM_PATH_SIZE], origin[DM_PATH_SIZE], abs[DM_PATH_SIZE];
    char why[DM_ERR_SIZE + DM_PATH_SIZE], holder[DM_PATH_SIZE];
    struct stat sb;
    dm_runrec rec;
    dm_spec *spec = NULL;
    dm_status st;
    dm_runrec_init(&rec);
    if ((st = dm_path_fmt(dir, sizeof dir, err, "%s/runs/%s", c->results, e->name)) ||
        (st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)) ||
        (st = dm_path_fmt(origin, sizeof origin, err, "%s/config", h5)))
        return st;
    if (stat(h5, &sb) != 0) {
        e->present = 0;
        if (errno == ENOENT)
            snprintf(why, sizeof why, "no run.h5 in it");
        else
            snprintf(why, sizeof why, "cannot read %s: %s", h5, strerror(errno));
        return skip(fresh, e, why, err);
    }
    e->present = 1;
    e->h5 = sb;
    /* The reader's messages name the file and say what is wrong with it; a file that hangs or
     * crashes the reader costs its run only (read first in a child with a time limit). */
    if ((st = dm_runstore_read_file(&c->vetter, h5, &rec, why))) {
        if (st == DM_E_NOMEM)
            return dm_err(err, st, "%s", why);
        return skip(fresh, e, why, err);
    }
    const char *run_id = dm_runrec_attr(&rec, "run_id");
    if (!run_id || !*run_id) {
        snprintf(why, sizeof why, "%s has no run_id attribute", h5);
        st = skip(fresh, e, why, err);
        goto out;
    }
    if (!rec.config_yaml) {
        snprintf(why, sizeof why, "%s has no /config spec", h5);
        st = skip(fresh, e, why, err);
        goto out;
    }
    if ((st = dm_spec_load_text(c->schema, rec.config_yaml, origin, 0, NULL, &spec, why))) {
        if (st == DM_E_NOMEM) {
            dm_err(err, st, "%s", why);
            goto out;
        }
        char msg[sizeof why + 32];
        snprintf(msg, sizeof msg, "its spec no longer loads: %s", why);
        st = skip(fresh, e, msg, err);
        goto out;
    }
    /* The absolute path, as a run records itself (train/run.c). */
    const char *path = realpath(dir, abs) ? abs : dir;
    if ((st = holder_of(fresh, run_id, path, holder, sizeof holder, err)))
        goto out;
    if (holder[0]) {
        snprintf(why, sizeof why, "run_id %s is already indexed from %s", run_id, holder);
        st = skip(fresh, e, why, err);
        goto out;
    }
    if (e->run_id && strcmp(e->run_id, run_id) != 0 &&
        (st = dm_index_delete_run(fresh, e->run_id, err)))
        goto out;
    /* Its tags and notes (a file of its own, io/annotations.h): a file that does not read skips
     * the run, naming the place, rather than indexing it without them. */
    char ap[DM_PATH_SIZE];
    dm_annotations an = { 0 };
    if ((st = dm_path_fmt(ap, sizeof ap, err, "%s/annotations.yaml", dir)))
        goto out;
    if (stat(ap, &e->annot) != 0)
        memset(&e->annot, 0, sizeof e->annot);
    if ((st = dm_annotations_read(dir, &an, why))) {
        if (st == DM_E_NOMEM) {
            dm_err(err, st, "%s", why);
            goto out;
        }
        st = skip(fresh, e, why, err);
        goto out;
    }
    if ((st = dm_index_upsert_run(fresh, &rec, spec, path, err)) ||
        (st = dm_index_put_annotations(fresh, run_id, &an, err))) {
        dm_annotations_free(&an);
        goto out;
    }
    dm_annotations_free(&an);
    dm_free(e->reason);
    e->reason = NULL;
    dm_free(e->run_id);
    if (!(e->run_id = dm_strdup(run_id)))
        st = dm_err(err, DM_E_NOMEM, "out of memory");
out:
    dm_spec_free(spec);
    dm_runrec_free(&rec);
    return st;
}

/* The same version of a file: device, inode, size and modification time. */
static int same_version(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* run.h5 or annotations.yaml of e is no longer the version that was read (or appeared, or went). */
static int changed(const reindex_ctx *c, const entry *e)
{
    char p[DM_PATH_SIZE];
    struct stat sb;
    if (dm_path_fmt(p, sizeof p, NULL, "%s/runs/%s/annotations.yaml", c->results, e->name))
        return 1;
    if (stat(p, &sb) != 0)
        memset(&sb, 0, sizeof sb);
    if (!same_version(&sb, &e->annot))
        return 1;
    if (dm_path_fmt(p, sizeof p, NULL, "%s/runs/%s/run.h5", c->results, e->name))
        return 1;
    if (stat(p, &sb) != 0)
        return e->present;
    return !e->present || !same_version(&sb, &e->h5);
}

/* The second pass (dm_index_replace calls it with the old index write-locked): folders that
 * appeared are indexed, changed ones re-read, vanished ones removed. */
static dm_status catch_up(void *ctx, dm_index *fresh, char *err)
{
    reindex_ctx *c = ctx;
    char runs[DM_PATH_SIZE];
    entries now = {NULL, 0};
    dm_status st = dm_path_fmt(runs, sizeof runs, err, "%s/runs", c->results);
    if (st || (st = scan(runs, &now, err)))
        return st;
    size_t i = 0, j = 0;
    while (i < c->list.n || j < now.n) {
        int cmp = i == c->list.n ? 1 : j == now.n ? -1
                                                  : strcmp(c->list.e[i].name, now.e[j].name);
        if (cmp < 0) { /* gone */
            entry *e = &c->list.e[i++];
            if (e->run_id && (st = dm_index_delete_run(fresh, e->run_id, err)))
                goto out;
            continue;
        }
        if (cmp == 0) { /* keep what was learnt about it */
            entry *old = &c->list.e[i++];
            dm_free(now.e[j].name);
            now.e[j] = *old;
            memset(old, 0, sizeof *old);
            if (!changed(c, &now.e[j])) {
                j++;
                continue;
            }
        }
        if ((st = index_entry(c, fresh, &now.e[j++], err)))
            goto out;
    }
    /* Sweep membership, here rather than in the first pass: nothing can commit to the old index
     * now, so membership a sweep writes during the rebuild is not lost (its manifest is on disk
     * before it writes its rows). */
    st = restore_sweeps(c->results, fresh, err);
out:
    entries_free(&c->list);
    c->list = now;
    return st;
}

/* The temporary index of a reindex that was killed (".index.sqlite.tmp.<pid>" and its SQLite side
 * files) is removed once its process is gone. The index needs a local file system (flock, WAL),
 * so whoever builds one runs on this host and kill(pid, 0) says whether it lives; a live pid,
 * even one reused by another program, keeps its file. Removal is housekeeping: a failure is
 * reported and the rebuild goes on. */
static void remove_stale_tmp(const char *results, FILE *report)
{
    static const char prefix[] = ".index.sqlite.tmp.";
    static const char *const side[] = {"", "-wal", "-shm", "-journal"};
    DIR *d = opendir(results);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *p = de->d_name + sizeof prefix - 1;
        char *end, path[DM_PATH_SIZE];
        if (strncmp(de->d_name, prefix, sizeof prefix - 1) != 0 || !isdigit((unsigned char)*p))
            continue;
        errno = 0;
        long pid = strtol(p, &end, 10);
        size_t k = 0;
        while (k < sizeof side / sizeof *side && strcmp(end, side[k]) != 0)
            k++;
        if (errno || k == sizeof side / sizeof *side || pid <= 0 || (long)(pid_t)pid != pid ||
            (pid_t)pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH ||
            dm_path_fmt(path, sizeof path, NULL, "%s/%s", results, de->d_name))
            continue;
        if (unlink(path) == 0) {
            if (report)
                fprintf(report, "removed %s: left by process %ld, which is gone\n", path, pid);
        } else if (errno != ENOENT && report) {
            fprintf(report, "cannot remove %s (left by process %ld, which is gone): %s\n", path, pid,
                    strerror(errno));
        }
    }
    closedir(d);
}

dm_status dm_reindex(const char *results, const dm_schema *schema, FILE *report,
                     dm_reindex_stats *stats, char *err)
{
    char runs[DM_PATH_SIZE], path[DM_PATH_SIZE], tmp[DM_PATH_SIZE];
    reindex_ctx c = {results, schema, {NULL, 0}, DM_RUNFILE_VETTER_INIT};
    dm_index *fresh = NULL;
    dm_status st;
    stats->n_indexed = stats->n_skipped = 0;
    if ((st = dm_path_fmt(runs, sizeof runs, err, "%s/runs", results)) ||
        (st = dm_path_fmt(path, sizeof path, err, "%s/index.sqlite", results)) ||
        (st = dm_path_fmt(tmp, sizeof tmp, err, "%s/.index.sqlite.tmp.%ld", results,
                          (long)getpid())))
        return st;
    remove_stale_tmp(results, report);
    /* run_params from the schema, also when no run is indexed */
    if ((st = scan(runs, &c.list, err)) || (st = dm_index_create_tmp(tmp, &fresh, err)) ||
        (st = dm_index_params_view(fresh, schema, err)))
        goto out;
    for (size_t i = 0; i < c.list.n; ++i)
        if ((st = index_entry(&c, fresh, &c.list.e[i], err)))
            goto out;
    st = dm_index_replace(fresh, path, catch_up, &c, err);
    fresh = NULL; /* consumed */
    if (st)
        goto out;
    for (size_t i = 0; i < c.list.n; ++i) {
        const entry *e = &c.list.e[i];
        if (e->run_id)
            stats->n_indexed++;
        else {
            stats->n_skipped++;
            if (report)
                fprintf(report, "skipped %s/%s: %s\n", runs, e->name, e->reason);
        }
    }
out:
    if (fresh) { /* failed before the swap: the temporary file goes */
        dm_index_close(fresh);
        unlink(tmp);
    }
    dm_runfile_vetter_end(&c.vetter);
    entries_free(&c.list);
    return st;
}
