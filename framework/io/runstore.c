#include "io/runstore.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"
#include "io/index.h"
#include "io/runlog.h"

dm_status dm_runstore_find(const char *results, const char *pat, char *dir, size_t n, char *id, size_t nid,
                           char *err)
{
    char ipath[DM_PATH_SIZE];
    dm_index *ix = NULL;
    dm_status st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", results);
    if (!st)
        st = dm_index_open(ipath, 1, &ix, err);
    if (st)
        return st;
    st = dm_index_find_run(ix, pat, id, nid, err);
    dm_index_close(ix);
    if (st)
        return st;
    return dm_path_fmt(dir, n, err, "%s/runs/%s", results, id);
}

static int lock_path(const char *results, const char *id, char *path, size_t n)
{
    return snprintf(path, n, "%s/locks/%s.lock", results, id) < (int)n;
}

int dm_runstore_is_live(const char *results, const char *id)
{
    char p[DM_PATH_SIZE];
    if (!lock_path(results, id, p, sizeof p))
        return 0;
    const int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    const int live = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return live;
}

int dm_runstore_lock(const char *results, const char *id, FILE *note, char *err)
{
    char dir[DM_PATH_SIZE], p[DM_PATH_SIZE];
    if (dm_path_fmt(dir, sizeof dir, err, "%s/locks", results) || dm_mkdir_p(dir, err))
        return -1;
    if (!lock_path(results, id, p, sizeof p)) {
        dm_err(err, DM_E_INPUT, "path too long for the lock of run %s", id);
        return -1;
    }
    const int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dm_err(err, DM_E_IO, "cannot open the lock %s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(note, "run %s: another process is running it; waiting for it to end\n", id);
        while (flock(fd, LOCK_EX) != 0)
            if (errno != EINTR) {
                dm_err(err, DM_E_IO, "cannot lock %s: %s", p, strerror(errno));
                close(fd);
                return -1;
            }
    }
    return fd;
}

void dm_runstore_status(const char *h5, char *status, size_t n, char *why)
{
    struct stat sb;
    status[0] = 0;
    if (why)
        why[0] = 0;
    if (stat(h5, &sb) != 0)
        return;
    dm_runrec r;
    char err[DM_ERR_SIZE];
    if (dm_runstore_read_file(NULL, h5, &r, err) == DM_OK) {
        const char *s = dm_runrec_attr(&r, "status");
        snprintf(status, n, "%s", s ? s : "unknown");
    } else {
        snprintf(status, n, "unreadable");
        if (why)
            snprintf(why, DM_ERR_SIZE, "%s", err);
    }
    dm_runrec_free(&r);
}

dm_status dm_runstore_read(const char *dir, char *h5, dm_runrec *rec, char *err)
{
    dm_status st = dm_path_fmt(h5, DM_PATH_SIZE, err, "%s/run.h5", dir);
    if (st) {
        dm_runrec_init(rec);
        return st;
    }
    return dm_runstore_read_file(NULL, h5, rec, err);
}

dm_status dm_runstore_read_file(dm_runfile_vetter *v, const char *h5, dm_runrec *rec, char *err)
{
    dm_status st = dm_runfile_vet(v, h5, DM_RUNFILE_RUN, err);
    if (st) {
        dm_runrec_init(rec); /* as dm_runlog_read leaves it on failure */
        return st;
    }
    return dm_runlog_read(h5, rec, err);
}

dm_status dm_runstore_read_ckpt(const char *path, dm_ckpt *c, char *err)
{
    dm_status st = dm_runfile_vet(NULL, path, DM_RUNFILE_CKPT, err);
    if (st) {
        memset(c, 0, sizeof *c); /* as dm_ckpt_read leaves it on failure */
        return st;
    }
    return dm_ckpt_read(path, c, err);
}

dm_status dm_runstore_spec(const char *h5, const dm_runrec *rec, const dm_schema *schema, int n_over,
                           const char *const *overrides, dm_spec **out, char *err)
{
    char origin[DM_PATH_SIZE + 16];
    snprintf(origin, sizeof origin, "%s/config", h5);
    return dm_spec_load_text(schema, rec->config_yaml, origin, n_over, overrides, out, err);
}
