#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

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

dm_status dm_atomic_commit(const char *tmp, const char *path, char *err)
{
    dm_status st = DM_OK;
    char *dir = NULL;
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
    if (rename(tmp, path) != 0) {
        st = dm_err(err, DM_E_IO, "%s: rename of the temporary file failed: %s", path,
                    strerror(errno));
        dm_atomic_discard(tmp);
        goto out;
    }
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
    st = dm_atomic_commit(tmp, path, err);
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
