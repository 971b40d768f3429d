/* teacher.h — the teacher of consistency distillation: a finished run loaded from its files.
 *
 * distill.teacher names it by run id (or a unique prefix of one, from the index) or by spec file
 * and distill.teacher_seed (train/runref.h). The teacher must be finished, have the student's
 * data dimension and a schedule whose time is sigma (edm: alpha = 1, sigma = t), since the
 * distillation step runs its PF-ODE in sigma. Its spec comes from its run.h5 (/config), its EMA weights from its
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

/* Resolve and check the student's distill.teacher (not 'analytic') without loading weights: its
 * run id into id. DM_E_NOTFOUND (no such run), DM_E_STATE (not finished), DM_E_INPUT
 * (incompatible), each naming distill.teacher. */
dm_status dm_teacher_check(const char *results, const dm_spec *student, char *id, size_t nid, char *err);

/* Load the checked teacher run id: spec, network, EMA weights, and a denoiser of max_batch batch. */
dm_status dm_teacher_load(const char *results, const char *id, size_t batch, dm_teacher *t, char *err);
void dm_teacher_free(dm_teacher *t);

#endif
