/* guide.h — the classifier of classifier guidance: a finished classifier run loaded from its files.
 *
 * guidance.classifier names it by run id (or a unique prefix) or by spec file and
 * guidance.classifier_seed, as distill.teacher names a teacher (a sweep makes such a run a
 * prerequisite). It must be finished, trained with diffusion.loss xent, and have the model's
 * data dimension, classes and schedule (the same time axis and noise levels). 'analytic' (the
 * mixture's exact classifier) is handled by the trainer itself. */
#ifndef DM_TRAIN_GUIDE_H
#define DM_TRAIN_GUIDE_H

#include "diffusion/classifier_net.h"
#include "io/spec.h"
#include "train/trainer.h"

typedef struct dm_guide {
    char run_id[256];
    dm_spec *spec;
    dm_trainer tr;
    int tr_ready;
    dm_net_classifier nc;
    dm_classifier clf;
    int clf_ready;
} dm_guide;

/* The spec guides by a classifier run (classifier guidance whose classifier is not 'analytic'). */
int dm_guide_needs_run(const dm_spec *spec);

/* Resolve and check the spec's guidance.classifier (not 'analytic') without loading weights: its
 * run id into id. DM_E_NOTFOUND, DM_E_STATE (not finished) or DM_E_INPUT, each naming the key. */
dm_status dm_guide_check(const char *results, const dm_spec *spec, char *id, size_t nid, char *err);

/* Load the checked classifier run: spec, network, EMA weights, a classifier of max_batch batch. */
dm_status dm_guide_load(const char *results, const char *id, size_t batch, dm_guide *g, char *err);
void dm_guide_free(dm_guide *g);

/* Load the checked classifier run id into g and hand its classifier (batches of eval.batch) and
 * its id to the trainer (dm_trainer_set_classifier, tr->guide_clf_id). */
dm_status dm_guide_attach(const char *results, const char *id, dm_trainer *tr, dm_guide *g, char *err);

#endif
