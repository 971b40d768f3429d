#include "core/path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
