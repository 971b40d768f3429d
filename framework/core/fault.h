/* fault.h — crash points for tests, compiled in and off unless DIFFLAB_FAULT is set.
 *
 * DIFFLAB_FAULT=<site>:<phase>[:<n>] makes the n-th pass (default the first) of this process
 * through that point print one line on stderr and raise SIGKILL, so a test can kill a run at an
 * exact instant instead of a lucky one. The points (docs/design.md, "Fault points"):
 *
 *   ckpt:tmp_written   a checkpoint.h5's temporary file is complete, before its fsync
 *   ckpt:synced        after that fsync, before the rename over checkpoint.h5
 *   ckpt:renamed       after the rename, before the folder's fsync
 *   run:tmp_written, run:synced, run:renamed   the same for run.h5
 *   finish:before_index  run.h5 says finished, the index is not updated yet
 *
 * The variable is read once. A value naming no point is refused by dm_fault_check (the program
 * checks it before doing anything); a point never reached does nothing. */
#ifndef DM_CORE_FAULT_H
#define DM_CORE_FAULT_H

#include "core/status.h"

/* DM_E_INPUT naming DIFFLAB_FAULT's value and the known points if it is set and names none. */
dm_status dm_fault_check(char *err);

/* A crash point: raises SIGKILL if DIFFLAB_FAULT names site:phase and this is its n-th pass.
 * site NULL is no point (a write that has none). */
void dm_fault_point(const char *site, const char *phase);

#endif
