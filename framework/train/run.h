/* run.h — a run's life: spec -> identity -> run folder -> train -> sample -> evaluate -> record.
 *
 * Identity (DESIGN.md): config_hash = SHA-256 of the canonical spec without the seed and the
 * keys that do not change results; run_id = <name>-<first 10 hex of config_hash>-s<seed>, with
 * -r2, -r3, ... for --new repeats. Every bad input is found before anything is written. The run
 * folder results/runs/<run_id>/ holds run.h5 and checkpoint.h5, replaced only atomically; the
 * index results/index.sqlite gets the run's row at the start and at the end. */
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

/* 1 if a live process holds the run's lock (results/locks/<id>.lock) on this host. */
int dm_run_is_live(const char *results, const char *id);

/* The run id of a loaded spec (without a -rN suffix). */
dm_status dm_run_id(const dm_spec *spec, char *id, size_t n, char hash[65], char *err);

#endif
