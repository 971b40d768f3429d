/* path.h — building file paths into fixed buffers without silent truncation. */
#ifndef DM_CORE_PATH_H
#define DM_CORE_PATH_H

#include <stddef.h>

#include "core/status.h"

#define DM_PATH_SIZE 4096

/* snprintf into out (n bytes); a path that does not fit is DM_E_INPUT, not a silent cut. */
dm_status dm_path_fmt(char *out, size_t n, char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The whole file at path into *text (NUL-terminated; *len excludes the NUL), at most max bytes;
 * the caller frees with dm_free. DM_E_NOTFOUND if it does not exist, DM_E_INPUT if it is larger
 * than max, DM_E_IO if it cannot be read, DM_E_NOMEM; messages name the path. */
dm_status dm_read_file(const char *path, size_t max, char **text, size_t *len, char *err);

/* A name that becomes one path component (a run's name, a sweep's name): 1 to 127 of the letters,
 * digits, '_', '-' and '.', not starting with '.' (so never ".", ".." or a hidden file), so it
 * cannot leave the folder it is put in. */
int dm_path_name_ok(const char *s);
#define DM_PATH_NAME_RULE "1 to 127 letters, digits, '_', '-' or '.', not starting with '.'"

/* mkdir -p. */
dm_status dm_mkdir_p(const char *path, char *err);

#endif
