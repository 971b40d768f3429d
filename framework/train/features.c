#include "train/features.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/losses.h"
#include "nn/model.h"
#include "train/runref.h"
#include "train/schema.h"

int dm_features_needed(const dm_spec *spec)
{
    return ((const dm_eval_opts *)dm_spec_opts(spec, "eval"))->features[0] != '\0';
}

/* The feature network's spec fits: a classifier of clean items, a feature head, the same shape. */
static dm_status check_fit(const dm_spec *spec, const dm_spec *fs, const char *id, char *err)
{
    const dm_loss_ops *lo = (const dm_loss_ops *)dm_spec_plugin(fs, "diffusion.loss");
    if (!lo->classifier || !dm_loss_clean(lo, dm_spec_opts(fs, "diffusion.loss")))
        return dm_err(err, DM_E_INPUT, "eval.features: run %s was trained with diffusion.loss %s%s, not as a classifier "
                      "of clean items (diffusion.loss: {type: xent, clean: true})", id, lo->info.name,
                      lo->classifier ? " (of noisy x_t)" : "");
    const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(fs, "model");
    if (!mo->net || !mo->net->features)
        return dm_err(err, DM_E_INPUT, "eval.features: run %s's model '%s' has no feature head (model.type cnn has "
                      "one: the pooled output of its last block)", id, mo->info.name);
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const dm_data_ops *df = (const dm_data_ops *)dm_spec_plugin(fs, "data");
    int s1[3], s2[3];
    dm_data_shape(da, dm_spec_opts(spec, "data"), &s1[0], &s1[1], &s1[2]);
    dm_data_shape(df, dm_spec_opts(fs, "data"), &s2[0], &s2[1], &s2[2]);
    if (s1[0] != s2[0] || s1[1] != s2[1] || s1[2] != s2[2])
        return dm_err(err, DM_E_INPUT, "eval.features: run %s classifies %dx%dx%d items (%s); this run's are %dx%dx%d "
                      "(%s): the feature network must see items of the model's shape (data.pad?)", id, s2[0], s2[1],
                      s2[2], df->info.name, s1[0], s1[1], s1[2], da->info.name);
    return DM_OK;
}

dm_status dm_features_check(const char *results, const dm_spec *spec, char *id, size_t nid, char *err)
{
    const dm_eval_opts *eo = dm_spec_opts(spec, "eval");
    char dir[DM_PATH_SIZE];
    dm_spec *fs = NULL;
    dm_status st = dm_resolve_named_run(results, eo->features, eo->features_seed, "eval.features", id, nid, dir,
                                        sizeof dir, err);
    if (st || (st = dm_runref_finished_spec(dir, id, "eval.features", &fs, err)))
        goto out;
    st = check_fit(spec, fs, id, err);
out:
    dm_spec_free(fs);
    return st;
}

dm_status dm_features_of(dm_features *f, const float *x, size_t n, float *feat, int32_t *pred, char *err)
{
    const dm_net *net = &f->tr.net;
    const float *params = f->tr.eopt->use_ema ? f->tr.ema : f->tr.params;
    const size_t d = (size_t)net->cfg.dim, C = f->n_classes, D = (size_t)f->dim;
    for (size_t i0 = 0; i0 < n; i0 += f->batch) {
        const size_t m = n - i0 < f->batch ? n - i0 : f->batch;
        dm_net_forward(net, params, &f->ws, (int)m, x + i0 * d, f->tin, NULL, f->logits);
        int got = 0;
        const float *fe = dm_net_features(net, &f->ws, &got);
        if (!fe || got != f->dim)
            return dm_err(err, DM_E_INTERNAL, "eval.features: the network of run %s gave no features", f->run_id);
        memcpy(feat + i0 * D, fe, sizeof(float) * m * D);
        for (size_t i = 0; pred && i < m; i++) {
            const float *lg = f->logits + i * C;
            size_t best = 0;
            for (size_t k = 1; k < C; k++)
                if (lg[k] > lg[best])
                    best = k;
            pred[i0 + i] = (int32_t)best;
        }
    }
    return DM_OK;
}

dm_status dm_features_attach(const char *results, const char *id, dm_trainer *tr, dm_features *f, char *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->run_id, sizeof f->run_id, "%s", id);
    dm_status st = dm_runref_load(results, id, &f->spec, &f->tr, &f->tr_ready, err);
    if (st) {
        dm_err_prefix(err, "eval.features: loading run %s", id);
        goto out;
    }
    const dm_net *net = &f->tr.net;
    if ((size_t)net->cfg.dim != tr->dim) {
        st = dm_err(err, DM_E_INPUT, "eval.features: run %s classifies items of dimension %d, this model's have %zu", id,
                    net->cfg.dim, tr->dim);
        goto out;
    }
    f->batch = net->batch_cap ? net->batch_cap : 256;
    f->n_classes = (size_t)net->cfg.out_dim;
    if ((st = dm_net_ws_init(net, &f->ws, (int)f->batch, err)))
        goto out;
    f->ws_ready = 1;
    f->tin = dm_calloc(f->batch, sizeof(float)); /* c_noise 0: the clean items, as it was trained */
    f->logits = dm_malloc_aligned(sizeof(float) * f->batch * f->n_classes);
    if (!f->tin || !f->logits) {
        st = dm_err(err, DM_E_NOMEM, "eval.features: out of memory for a batch of %zu", f->batch);
        goto out;
    }
    /* The feature dimension: one forward of one item. */
    dm_net_forward(net, f->tr.params, &f->ws, 1, tr->ref_x, f->tin, NULL, f->logits);
    if (!dm_net_features(net, &f->ws, &f->dim) || f->dim <= 0) {
        st = dm_err(err, DM_E_INPUT, "eval.features: run %s's network has no feature head", id);
        goto out;
    }
    f->n_ref = (size_t)tr->eopt->n_ref;
    if (!(f->ref = dm_malloc_aligned(sizeof(float) * f->n_ref * (size_t)f->dim))) {
        st = dm_err(err, DM_E_NOMEM, "eval.features: out of memory for the features of %zu reference items", f->n_ref);
        goto out;
    }
    if ((st = dm_features_of(f, tr->ref_x, f->n_ref, f->ref, NULL, err)))
        goto out;
    tr->features = f;
out:
    if (st)
        dm_features_free(f);
    return st;
}

void dm_features_free(dm_features *f)
{
    if (f->ws_ready)
        dm_net_ws_free(&f->tr.net, &f->ws);
    if (f->tr_ready)
        dm_trainer_free(&f->tr);
    dm_spec_free(f->spec);
    dm_free(f->tin);
    dm_free_aligned(f->logits);
    dm_free_aligned(f->ref);
    memset(f, 0, sizeof *f);
}
