/* runref.h — a run's identity, and the runs one run names (a teacher, a classifier).
 *
 * Identity (DESIGN.md): config_hash = SHA-256 of the canonical spec without the seed and the
 * keys that do not change results; run_id = <name>-<first 10 hex of config_hash>-s<seed> (with
 * -r2, -r3, ... for --new repeats, chosen by run.c). A run that another run needs is named by run
 * id (or a unique prefix of one, from the index) or by spec file and seed: the run that spec and
 * seed produce, whose id is computed, so a sweep can make it a prerequisite. */
#ifndef DM_TRAIN_RUNREF_H
#define DM_TRAIN_RUNREF_H

#include "io/spec.h"
#include "train/trainer.h"

/* The run id of a loaded spec (without a -rN suffix), and its config_hash. */
dm_status dm_run_id(const dm_spec *spec, char *id, size_t n, char hash[65], char *err);

/* The run id that the spec file at path makes with seed (its own seed replaced). */
dm_status dm_run_id_of_file(const char *path, int64_t seed, char *id, size_t nid, char *err);

/* A run another run needs, named by run id or prefix, or by spec file and seed: its id and
 * folder. DM_E_NOTFOUND names `key`. */
dm_status dm_resolve_named_run(const char *results, const char *name, int64_t seed, const char *key, char *id,
                               size_t nid, char *dir, size_t ndir, char *err);

/* The run in folder dir (run id, named in messages under key) is finished: its recorded spec into
 * *spec (the caller frees). DM_E_STATE "KEY: run ID is STATUS, not finished ..." otherwise. */
dm_status dm_runref_finished_spec(const char *dir, const char *id, const char *key, dm_spec **spec, char *err);

/* The model of run id (id or unique prefix): its recorded spec into *spec (the caller frees) and
 * a trainer built from it with the checkpoint's weights (*tr_ready set once tr needs
 * dm_trainer_free). */
dm_status dm_runref_load(const char *results, const char *id, dm_spec **spec, dm_trainer *tr, int *tr_ready,
                         char *err);

#endif
