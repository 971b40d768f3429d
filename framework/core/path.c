#include "core/path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"

dm_status dm_path_fmt(char *out, size_t n, char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n)
        return dm_err(err, DM_E_INPUT, "path too long: %.200s...", out);
    return DM_OK;
}

dm_status dm_mkdir_p(const char *path, char *err)
{
    char tmp[DM_PATH_SIZE];
    dm_status st = dm_path_fmt(tmp, sizeof tmp, err, "%s", path);
    if (st)
        return st;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST)
            return dm_err(err, DM_E_IO, "cannot create folder '%s': %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) && errno != EEXIST)
        return dm_err(err, DM_E_IO, "cannot create folder '%s': %s", tmp, strerror(errno));
    return DM_OK;
}

dm_status dm_read_file(const char *path, size_t max, char **text, size_t *len_out, char *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    dm_status st = DM_OK;
    *text = NULL;
    if (!f)
        return dm_err(err, errno == ENOENT ? DM_E_NOTFOUND : DM_E_IO, "cannot read '%s': %s", path, strerror(errno));
    for (;;) {
        if (len == cap) {
            if (cap >= max) {   /* full: only an end of file right here keeps it within max */
                if (fgetc(f) != EOF)
                    st = dm_err(err, DM_E_INPUT, "'%s' is larger than %zu bytes", path, max);
                goto out;
            }
            cap = cap ? 2 * cap : 4096;
            if (cap > max)
                cap = max;
            char *nb = dm_realloc(buf, cap + 1);
            if (!nb) {
                st = dm_err(err, DM_E_NOMEM, "out of memory reading '%s'", path);
                goto out;
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = dm_err(err, DM_E_IO, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
    }
out:
    fclose(f);
    if (st) {
        dm_free(buf);
        return st;
    }
    if (!buf && !(buf = dm_malloc(1)))
        return dm_err(err, DM_E_NOMEM, "out of memory reading '%s'", path);
    buf[len] = 0;
    *text = buf;
    *len_out = len;
    return DM_OK;
}

int dm_path_name_ok(const char *s)
{
    if (!*s || *s == '.' || strlen(s) >= 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}
