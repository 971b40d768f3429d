/* runstore.h — the runs of a results folder: finding one, locking it, reading its record.
 *
 * Layout: <results>/runs/<run_id>/ holds run.h5 and checkpoint.h5; <results>/locks/<run_id>.lock
 * is the run's lock; <results>/index.sqlite finds a run by id or unique prefix. A lock is an
 * flock() held by the process that runs the run, so it goes with the process, even on kill -9.
 * Everything that opens another run (run, resume, sample, reproduce, teachers, classifiers,
 * sweeps, reindex) finds, locks and reads it here. A run file is untrusted input: every read
 * below goes first through a child process with a time limit (io/runfile_vet.h), so a damaged
 * file is an error naming it, within seconds, never a hang or a crash. */
#ifndef DM_IO_RUNSTORE_H
#define DM_IO_RUNSTORE_H

#include <stdio.h>

#include "io/runfile_vet.h"
#include "io/runlog.h"
#include "io/runrec.h"
#include "io/spec.h"

/* The run id (id, nid) and folder (dir, n) of a run id or unique prefix pat, from the index of
 * results (opened read-only). */
dm_status dm_runstore_find(const char *results, const char *pat, char *dir, size_t n, char *id, size_t nid,
                           char *err);

/* Take the run's lock, waiting (with a note on `note`) while another process holds it. Returns
 * the descriptor, which the caller closes when the run is over, or -1 with err set. */
int dm_runstore_lock(const char *results, const char *id, FILE *note, char *err);

/* 1 if a live process holds the run's lock on this host. */
int dm_runstore_is_live(const char *results, const char *id);

/* The status recorded in the run file h5 ("finished", "running", ...), "" when there is no file,
 * "unknown" when it has none, "unreadable" when it cannot be read; then why (DM_ERR_SIZE bytes,
 * or NULL) receives the reason, naming the file. */
void dm_runstore_status(const char *h5, char *status, size_t n, char *why);

/* Read the record of the run in folder dir; h5 (DM_PATH_SIZE bytes) receives run.h5's path. */
dm_status dm_runstore_read(const char *dir, char *h5, dm_runrec *rec, char *err);

/* dm_runlog_read of a run file from outside this process, read first by v's child (NULL: a child
 * for this file alone; a caller reading many files keeps one, runfile_vet.h). */
dm_status dm_runstore_read_file(dm_runfile_vetter *v, const char *h5, dm_runrec *rec, char *err);
/* dm_ckpt_read of a checkpoint.h5, likewise (a child for this file alone). */
dm_status dm_runstore_read_ckpt(const char *path, dm_ckpt *c, char *err);

/* The spec a run recorded (rec->config_yaml, read from h5), with overrides, checked against
 * schema; errors point into <h5>/config. */
dm_status dm_runstore_spec(const char *h5, const dm_runrec *rec, const dm_schema *schema, int n_over,
                           const char *const *overrides, dm_spec **out, char *err);

#endif
