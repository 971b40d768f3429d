/* teacher.h — the teacher of consistency distillation: a finished run loaded from its files.
 *
 * distill.teacher names it by run id (or a unique prefix of one, from the index) or by spec file
 * and distill.teacher_seed (the run that spec and seed produce: its id is computed, so a sweep can
 * make it a prerequisite). The teacher must be finished, have the student's data dimension and a
 * schedule whose time is sigma (edm: alpha = 1, sigma = t), since the distillation step runs its
 * PF-ODE in sigma. Its spec comes from its run.h5 (/config), its EMA weights from its
 * checkpoint. `analytic` (the mixture's exact denoiser) is handled by the trainer itself. */
#ifndef DM_TRAIN_TEACHER_H
#define DM_TRAIN_TEACHER_H

#include "io/spec.h"
#include "train/trainer.h"

typedef struct dm_teacher {
    char run_id[256];
    dm_spec *spec;
    dm_trainer tr;
    int tr_ready;
    dm_model_denoiser md;
    dm_denoiser den;
    int den_ready;
} dm_teacher;

/* A run another run needs (a teacher, a classifier), named by run id (or a unique prefix of one,
 * from the index) or by spec file and seed: its id and folder. DM_E_NOTFOUND names `key`. */
dm_status dm_resolve_named_run(const char *results, const char *name, int64_t seed, const char *key, char *id,
                               size_t nid, char *dir, size_t ndir, char *err);

/* Resolve and check the student's distill.teacher (not 'analytic') without loading weights: its
 * run id into id. DM_E_NOTFOUND (no such run), DM_E_STATE (not finished), DM_E_INPUT
 * (incompatible), each naming distill.teacher. */
dm_status dm_teacher_check(const char *results, const dm_spec *student, char *id, size_t nid, char *err);

/* Load the checked teacher run id: spec, network, EMA weights, and a denoiser of max_batch batch. */
dm_status dm_teacher_load(const char *results, const char *id, size_t batch, dm_teacher *t, char *err);
void dm_teacher_free(dm_teacher *t);

#endif
