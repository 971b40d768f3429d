#include "train/guide.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/losses.h"
#include "train/runref.h"
#include "train/schema.h"

/* Same schedule: the same plug-in with the same options (canonical JSON). */
static int same_schedule(const dm_spec *a, const dm_spec *b)
{
    const dm_plugin *pa = dm_spec_plugin(a, "diffusion.schedule"), *pb = dm_spec_plugin(b, "diffusion.schedule");
    if (pa != pb)
        return 0;
    char *ja = dm_opts_json(pa, dm_spec_opts(a, "diffusion.schedule"));
    char *jb = dm_opts_json(pb, dm_spec_opts(b, "diffusion.schedule"));
    const int same = ja && jb && strcmp(ja, jb) == 0;
    dm_free(ja);
    dm_free(jb);
    return same;
}

int dm_guide_needs_run(const dm_spec *spec)
{
    const dm_guidance_ops *g = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    const dm_classifier_guidance_opts *cg = dm_spec_opts(spec, "guidance");
    return g->kind == DM_GUIDE_CLASSIFIER && strcmp(cg->classifier, "analytic") != 0;
}

dm_status dm_guide_check(const char *results, const dm_spec *spec, char *id, size_t nid, char *err)
{
    const dm_classifier_guidance_opts *cg = dm_spec_opts(spec, "guidance");
    char dir[DM_PATH_SIZE];
    dm_spec *cs = NULL;
    dm_status st = dm_resolve_named_run(results, cg->classifier, cg->classifier_seed, "guidance.classifier", id, nid,
                                        dir, sizeof dir, err);
    if (st || (st = dm_runref_finished_spec(dir, id, "guidance.classifier", &cs, err)))
        goto out;
    const dm_loss_ops *lo = (const dm_loss_ops *)dm_spec_plugin(cs, "diffusion.loss");
    if (!lo->classifier) {
        st = dm_err(err, DM_E_INPUT, "guidance.classifier: run %s trained a '%s' model, not a classifier "
                    "(diffusion.loss.type: xent)", id, lo->info.name);
        goto out;
    }
    if (dm_loss_clean(lo, dm_spec_opts(cs, "diffusion.loss"))) {
        st = dm_err(err, DM_E_INPUT, "guidance.classifier: run %s classifies clean items (diffusion.loss.clean: true); "
                    "guidance needs a classifier of noisy x_t (clean: false)", id);
        goto out;
    }
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const dm_data_ops *dc = (const dm_data_ops *)dm_spec_plugin(cs, "data");
    const size_t d1 = da->dim(dm_spec_opts(spec, "data")), d2 = dc->dim(dm_spec_opts(cs, "data"));
    const size_t c1 = da->n_classes(dm_spec_opts(spec, "data")), c2 = dc->n_classes(dm_spec_opts(cs, "data"));
    if (d1 != d2 || c1 != c2) {
        st = dm_err(err, DM_E_INPUT, "guidance.classifier: run %s classifies data of dimension %zu with %zu classes "
                    "(%s); this model's data have dimension %zu and %zu classes (%s)", id, d2, c2, dc->info.name, d1, c1,
                    da->info.name);
        goto out;
    }
    if (!same_schedule(spec, cs)) {
        st = dm_err(err, DM_E_INPUT, "guidance.classifier: run %s was trained on another noise schedule (%s, or other "
                    "options); a classifier of x_t must share the model's schedule", id,
                    dm_spec_plugin(cs, "diffusion.schedule")->name);
        goto out;
    }
out:
    dm_spec_free(cs);
    return st;
}

dm_status dm_guide_load(const char *results, const char *id, size_t batch, dm_guide *g, char *err)
{
    memset(g, 0, sizeof *g);
    snprintf(g->run_id, sizeof g->run_id, "%s", id);
    dm_status st = dm_runref_load(results, id, &g->spec, &g->tr, &g->tr_ready, err);
    const dm_trainer *t = &g->tr;
    if (!st && !(st = dm_net_classifier_init(&g->nc, &g->clf, &t->net, t->eopt->use_ema ? t->ema : t->params,
                                             &t->sched, t->param, t->param_opts, t->sigma_data, batch, err)))
        g->clf_ready = 1;
    if (st)
        dm_err_prefix(err, "guidance.classifier: loading run %s", id);
    return st;
}

dm_status dm_guide_attach(const char *results, const char *id, dm_trainer *tr, dm_guide *g, char *err)
{
    dm_status st = dm_guide_load(results, id, (size_t)tr->eopt->batch, g, err);
    if (!st)
        st = dm_trainer_set_classifier(tr, &g->clf, err);
    if (!st)
        snprintf(tr->guide_clf_id, sizeof tr->guide_clf_id, "%s", id);
    return st;
}

void dm_guide_free(dm_guide *g)
{
    if (g->clf_ready)
        dm_net_classifier_free(&g->nc);
    if (g->tr_ready)
        dm_trainer_free(&g->tr);
    dm_spec_free(g->spec);
    memset(g, 0, sizeof *g);
}
