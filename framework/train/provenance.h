/* provenance.h — where and how a run was made: the attributes DESIGN.md lists for run.h5
 * (version, git commit and dirty flag, host, CPU model, compiler and flags, BLAS core and threads,
 * library versions, Slurm ids when present). */
#ifndef DM_TRAIN_PROVENANCE_H
#define DM_TRAIN_PROVENANCE_H

#include "io/runrec.h"

dm_status dm_provenance_fill(dm_runrec *r, char *err);

/* Current UTC time as ISO 8601 ("2026-11-22T02:09:00Z"). */
void dm_time_iso(char buf[32]);

#endif
