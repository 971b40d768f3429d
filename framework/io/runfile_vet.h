/* runfile_vet.h — a run file is untrusted input: read it first in a child process, with a time
 * limit, before this process reads it.
 *
 * A damaged run.h5 or checkpoint.h5 can make HDF5 spin for ever (a zeroed global heap collection:
 * H5HG_read loops), crash, or leak its own memory on the error path (HDF5 1.10 then prints
 * "infinite loop closing library" at exit). So a run file is read first by a forked child that
 * performs exactly the reads the caller will do (dm_runlog_read or dm_ckpt_read) and answers with
 * their status and message; it ends with _exit() (no atexit handler, no HDF5 shutdown). The
 * parent waits at most DM_READ_SECONDS (DIFFLAB_READ_SECONDS overrides it, for tests) and kills
 * the child after. Only a file the child read cleanly is read again in this process, so one bad
 * file costs an error for its run alone, within seconds, and this process's HDF5 never meets it.
 *
 * io/runstore.h's readers go through here; so everything that reads another run's files does. */
#ifndef DM_IO_RUNFILE_VET_H
#define DM_IO_RUNFILE_VET_H

#include <sys/types.h>

#include "core/status.h"

#define DM_READ_SECONDS 10.0

typedef enum dm_runfile_kind { DM_RUNFILE_RUN, DM_RUNFILE_CKPT } dm_runfile_kind;

/* A reader child kept for a series of files (reindex, a sweep's status): the first file starts
 * it, the next ones reuse it, so each costs about one read (a fresh child pays copy-on-write
 * page faults for all the HDF5 state it touches: some 50 ms a file on a busy machine, against
 * 3 ms). A file that hangs or crashes it costs that child; the next file starts another.
 * Initialize with DM_RUNFILE_VETTER_INIT, end with dm_runfile_vetter_end. */
typedef struct dm_runfile_vetter {
    pid_t pid; /* 0: no child */
    int fd;    /* our end of the socket pair to it */
} dm_runfile_vetter;
#define DM_RUNFILE_VETTER_INIT {0, -1}

/* The time limit in seconds: DIFFLAB_READ_SECONDS when it is a positive number, else
 * DM_READ_SECONDS. */
double dm_runfile_seconds(void);

/* Read path (a run.h5 or a checkpoint.h5, by kind) in v's child (NULL: a child for this file
 * alone) within the time limit. DM_OK when it reads cleanly; else the reader's own status and
 * message (naming the file), or DM_E_IO with "<path>: reading it took more than N s ..." or
 * "<path>: reading it crashed ..."; DM_E_NOMEM when no child process can be made (out of memory
 * or processes). */
dm_status dm_runfile_vet(dm_runfile_vetter *v, const char *path, dm_runfile_kind kind, char *err);

/* End v's child (if any) and wait for it. */
void dm_runfile_vetter_end(dm_runfile_vetter *v);

#endif
