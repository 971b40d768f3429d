#include "eval/evaluate.h"

#include "core/alloc.h"
#include "core/rng.h"
#include "eval/metrics.h"

dm_status dm_evaluate(const dm_eval_cfg *cfg, const float *x, size_t n, const float *ref,
                      size_t n_ref, size_t d, dm_eval_result *res, char *err)
{
    dm_status st;
    double *proj = dm_malloc(sizeof(double) * cfg->swd_projections * d);
    if (!proj)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu projections", cfg->swd_projections);
    if ((st = dm_swd_projections(dm_seed_derive(cfg->eval_seed, "eval.swd"), d,
                                 cfg->swd_projections, proj, err)))
        goto out;
    if ((st = dm_swd(x, n, ref, n_ref, d, proj, cfg->swd_projections, 1, &res->swd, err)))
        goto out;
    res->n_swd = n;
    const size_t m = n < cfg->mmd_max ? n : cfg->mmd_max;
    const size_t mr = n_ref < cfg->mmd_max ? n_ref : cfg->mmd_max;
    const double h = dm_mmd_bandwidth(ref, n_ref, d);
    if ((st = dm_mmd2_unbiased(x, m, ref, mr, d, h, &res->mmd2, err)))
        goto out;
    res->n_mmd = m;
out:
    dm_free(proj);
    return st;
}
