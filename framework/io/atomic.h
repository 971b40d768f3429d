/* atomic.h — whole-file replacement that survives a crash at any instant: write a temporary file
 * in the same folder (rename is atomic only within one file system), fsync it, rename it over the
 * target, fsync the folder so the rename itself is durable. Every file of a run folder, the
 * manifests and the index's swap are replaced this way. */
#ifndef DM_IO_ATOMIC_H
#define DM_IO_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

/* The temporary name for replacing path: "<folder>/.<name>.tmp.<pid>" (caller frees, dm_free). */
dm_status dm_atomic_tmp_path(const char *path, char **tmp, char *err);
/* fsync the finished temporary file, rename it over path, fsync the folder. On failure before
 * the rename the temporary file is removed and path is untouched. Messages name path. fault, if
 * not NULL, is the site of the crash points passed on the way (core/fault.h): <fault>:tmp_written
 * before the fsync, <fault>:synced before the rename, <fault>:renamed before the folder's fsync. */
dm_status dm_atomic_commit(const char *tmp, const char *path, const char *fault, char *err);
/* Remove a temporary file after a failed write (missing is fine). */
void dm_atomic_discard(const char *tmp);

/* Remove the temporary files in folder dir that processes which no longer exist left behind (a
 * write cut short by kill -9 or a crash): names ".<name>.tmp.<pid>" whose pid is not a live
 * process on this host. Each removal is reported on note (if not NULL). Only for a folder whose
 * writers hold a lock the caller holds too (a run's folder under its run lock), so that no
 * process of another host writes there meanwhile. */
dm_status dm_atomic_clean_stale(const char *dir, FILE *note, char *err);

/* Write `n` bytes to `path` atomically: for small text files next to the run (markers, PNGs,
 * manifests). */
dm_status dm_write_file_atomic(const char *path, const void *data, size_t n, char *err);

/* fsync the file or folder at p, opened with flags (O_RDONLY, O_RDONLY | O_DIRECTORY); -1 with
 * errno on failure, which it keeps across the close. */
int dm_fsync_path(const char *p, int flags);

#endif
