#include "io/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fault.h"

/* The folder part of path ("." for a bare name), allocated. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dm_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = dm_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

dm_status dm_atomic_tmp_path(const char *path, char **tmp, char *err)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    *tmp = NULL;
    if (!*base)
        return dm_err(err, DM_E_INPUT, "'%s' names a folder, not a file", path);
    size_t n = strlen(path) + 32;
    char *t = dm_malloc(n);
    if (!t)
        return dm_err(err, DM_E_NOMEM, "out of memory writing %s", path);
    snprintf(t, n, "%.*s.%s.tmp.%ld", (int)dir_len, path, base, (long)getpid());
    *tmp = t;
    return DM_OK;
}

void dm_atomic_discard(const char *tmp)
{
    if (tmp)
        unlink(tmp);
}

/* The pid of a temporary file's name ".<name>.tmp.<pid>", or 0 if the name is not one. */
static long tmp_pid(const char *name)
{
    const char *t = NULL;
    if (name[0] != '.')
        return 0;
    for (const char *s = strstr(name + 2, ".tmp."); s; s = strstr(s + 1, ".tmp."))
        t = s;   /* the last ".tmp.", after a name of at least one character */
    if (!t)
        return 0;
    const char *d = t + 5;
    char *end = NULL;
    if (*d < '1' || *d > '9')
        return 0;
    errno = 0;
    long pid = strtol(d, &end, 10);
    return *end || errno || pid <= 0 || pid != (long)(pid_t)pid ? 0 : pid;
}

dm_status dm_atomic_clean_stale(const char *dir, FILE *note, char *err)
{
    dm_status st = DM_OK;
    DIR *d = opendir(dir);
    if (!d)
        return dm_err(err, DM_E_IO, "cannot list %s for stale temporary files: %s", dir, strerror(errno));
    const struct dirent *e;
    while (!st && (errno = 0, e = readdir(d))) {
        long pid = tmp_pid(e->d_name);
        /* kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists). */
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = dm_malloc(len);
        if (!p) {
            st = dm_err(err, DM_E_NOMEM, "out of memory cleaning %s", dir);
            break;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) {
            if (note)
                fprintf(note, "removed %s, left by a write that process %ld did not finish\n", p, pid);
        } else if (errno != ENOENT) {
            st = dm_err(err, DM_E_IO, "cannot remove the stale temporary file %s: %s", p, strerror(errno));
        }
        dm_free(p);
    }
    if (!st && errno)
        st = dm_err(err, DM_E_IO, "cannot list %s for stale temporary files: %s", dir, strerror(errno));
    closedir(d);
    return st;
}

int dm_fsync_path(const char *p, int flags)
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

dm_status dm_atomic_commit(const char *tmp, const char *path, const char *fault, char *err)
{
    dm_status st = DM_OK;
    char *dir = NULL;
    dm_fault_point(fault, "tmp_written");
    if (dm_fsync_path(tmp, O_RDONLY) != 0) {
        st = dm_err(err, DM_E_IO, "%s: fsync of the temporary file %s failed: %s", path, tmp,
                    strerror(errno));
        dm_atomic_discard(tmp);
        goto out;
    }
    dir = folder_of(path);
    if (!dir) {
        st = dm_err(err, DM_E_NOMEM, "out of memory writing %s", path);
        dm_atomic_discard(tmp);
        goto out;
    }
    dm_fault_point(fault, "synced");
    if (rename(tmp, path) != 0) {
        st = dm_err(err, DM_E_IO, "%s: rename of the temporary file failed: %s", path,
                    strerror(errno));
        dm_atomic_discard(tmp);
        goto out;
    }
    dm_fault_point(fault, "renamed");
    /* Some file systems cannot fsync a folder (EINVAL): the rename is then as durable as that
     * file system makes it, which is all we can do. */
    if (dm_fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0 && errno != EINVAL && errno != ENOTSUP)
        st = dm_err(err, DM_E_IO, "%s: fsync of its folder %s failed: %s", path, dir,
                    strerror(errno));
out:
    dm_free(dir);
    return st;
}

dm_status dm_write_file_atomic(const char *path, const void *data, size_t n, char *err)
{
    dm_status st = DM_OK;
    char *tmp = NULL;
    int fd = -1;
    st = dm_atomic_tmp_path(path, &tmp, err);
    if (st)
        goto out;
    do
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        st = dm_err(err, DM_E_IO, "cannot write %s: creating %s failed: %s", path, tmp,
                    strerror(errno));
        goto out;
    }
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = dm_err(err, DM_E_IO, "cannot write %s: %s", path,
                        w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    /* dm_atomic_commit fsyncs (through a fresh descriptor, as it must for HDF5's files). */
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = dm_err(err, DM_E_IO, "cannot write %s: close failed: %s", path, strerror(errno));
        goto out;
    }
    st = dm_atomic_commit(tmp, path, NULL, err);
    if (st)
        goto out;
out:
    if (fd >= 0)
        close(fd);
    if (st && tmp)
        dm_atomic_discard(tmp);
    dm_free(tmp);
    return st;
}
