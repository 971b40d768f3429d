/* run.h — a run's life: spec -> identity -> run folder -> train -> sample -> evaluate -> record.
 *
 * The identity (config_hash, run_id) is train/runref.h's; --new repeats take -r2, -r3, ... Every
 * bad input is found before anything is written. The run folder results/runs/<run_id>/ holds
 * run.h5 and checkpoint.h5, replaced only atomically; the index results/index.sqlite gets the
 * run's row at the start and at the end. */
#ifndef DM_TRAIN_RUN_H
#define DM_TRAIN_RUN_H

#include <stdio.h>

#include "core/status.h"
#include "io/spec.h"

typedef struct dm_run_cfg {
    const char *results;   /* results folder ("results") */
    int new_repeat;        /* --new: a fresh repeat even if the inputs already ran */
    FILE *out;             /* where the summary goes (stdout) */
} dm_run_cfg;

/* Load, check and run a spec. Exit-code semantics via dm_status_exit_code. */
dm_status dm_run_spec_file(const dm_run_cfg *cfg, const char *path, int n_over,
                           const char *const *overrides, char *err);

/* `difflab resume RUN`: continue an interrupted or dead run (id or unique prefix) from its last
 * checkpoint; the final parameters and metric series equal those of a run that never stopped. */
dm_status dm_run_resume(const dm_run_cfg *cfg, const char *pat, char *err);

#endif
