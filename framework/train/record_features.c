/* record_features.c — the image metrics of a sample set in the feature network's space
 * (train/features.h): fd, kid and kid_std, precision and recall against the reference set and, for
 * class-conditional sets, fnet_class_share. */
#include "train/record_features.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "eval/fd.h"
#include "eval/kid.h"
#include "eval/knn_pr.h"
#include "train/features.h"
#include "train/schema.h"

/* settings with "features":"<run id>" appended: a new string, NULL without memory. */
static char *with_features(const char *settings, const char *id)
{
    const size_t nb = strlen(settings);
    char *out = dm_malloc(nb + strlen(id) + 16);
    if (out) {
        memcpy(out, settings, nb - 1);
        sprintf(out + nb - 1, "%s\"features\":\"%s\"}", nb > 2 ? "," : "", id);
    }
    return out;
}

dm_status dm_features_record(dm_trainer *tr, const float *x, size_t n, const int32_t *labels, dm_runrec *rec,
                             const char *sampler, int64_t nfe, const char *settings, char *err)
{
    dm_features *f = tr->features;
    const size_t D = (size_t)f->dim, nr = f->n_ref, pr = (size_t)tr->eopt->pr_max;
    float *feat = dm_malloc_aligned(sizeof(float) * n * D);
    int32_t *pred = labels ? dm_malloc(sizeof(int32_t) * n) : NULL;
    char *fs = with_features(settings, f->run_id);
    dm_rng rng = { 0 };
    dm_status st;
    if (!feat || (labels && !pred) || !fs) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the features of %zu samples", n);
        goto out;
    }
    if ((st = dm_features_of(f, x, n, feat, pred, err)))
        goto out;
    double fd, kid, kid_sd, prec, rec_;
    const size_t np = n < pr ? n : pr, nrp = nr < pr ? nr : pr;
    if ((st = dm_fd(feat, n, f->ref, nr, D, &fd, err)) ||
        (st = dm_rng_init(&rng, dm_seed_derive((uint64_t)tr->eopt->seed, "eval.kid"), err)) ||
        (st = dm_kid(feat, n, f->ref, nr, D, DM_KID_SUBSETS, DM_KID_SUBSET, &rng, &kid, &kid_sd, err)) ||
        (st = dm_knn_precision_recall(f->ref, nrp, feat, np, D, DM_PR_K, &prec, &rec_, err)))
        goto out;
    const struct { const char *name; double v; size_t n; } rows[] = {
        { "fd", fd, n }, { "kid", kid, n }, { "kid_std", kid_sd, n }, { "precision", prec, np }, { "recall", rec_, np },
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
        if ((st = dm_runrec_add_eval(rec, rows[k].name, sampler, nfe, fs, (int64_t)rows[k].n, rows[k].v, err)))
            goto out;
    if (labels && f->n_classes == tr->n_classes) {
        size_t hits = 0;
        for (size_t i = 0; i < n; i++)
            hits += pred[i] == labels[i];
        st = dm_runrec_add_eval(rec, "fnet_class_share", sampler, nfe, fs, (int64_t)n, (double)hits / (double)n, err);
    }
out:
    dm_rng_free(&rng);
    dm_free_aligned(feat);
    dm_free(pred);
    dm_free(fs);
    return st;
}
