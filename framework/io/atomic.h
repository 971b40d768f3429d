/* atomic.h — whole-file replacement that survives a crash at any instant: write a temporary file
 * in the same folder (rename is atomic only within one file system), fsync it, rename it over the
 * target, fsync the folder so the rename itself is durable. Every file of a run folder, the
 * manifests and the index's swap are replaced this way. */
#ifndef DM_IO_ATOMIC_H
#define DM_IO_ATOMIC_H

#include <stddef.h>

#include "core/status.h"

/* The temporary name for replacing path: "<folder>/.<name>.tmp.<pid>" (caller frees, dm_free). */
dm_status dm_atomic_tmp_path(const char *path, char **tmp, char *err);
/* fsync the finished temporary file, rename it over path, fsync the folder. On failure before
 * the rename the temporary file is removed and path is untouched. Messages name path. */
dm_status dm_atomic_commit(const char *tmp, const char *path, char *err);
/* Remove a temporary file after a failed write (missing is fine). */
void dm_atomic_discard(const char *tmp);

/* Write `n` bytes to `path` atomically: for small text files next to the run (markers, PNGs,
 * manifests). */
dm_status dm_write_file_atomic(const char *path, const void *data, size_t n, char *err);

/* fsync the file or folder at p, opened with flags (O_RDONLY, O_RDONLY | O_DIRECTORY); -1 with
 * errno on failure, which it keeps across the close. */
int dm_fsync_path(const char *p, int flags);

#endif
