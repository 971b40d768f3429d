/* evaluate.h — the metrics of one sample set against the reference set ("swd", "mmd2").
 *
 * "swd" is the sliced 1-Wasserstein distance (metrics.h says why order 1), "mmd2" the unbiased
 * MMD^2 with an RBF kernel. Projections come from eval_seed (stream "eval.swd"), the MMD bandwidth from the reference set:
 * both fixed per (dataset, eval seed), so values compare across runs and samplers. The caller
 * records the results (train/record.h): evaluation computes and returns, and opens no file. */
#ifndef DM_EVAL_EVALUATE_H
#define DM_EVAL_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dm_eval_cfg {
    uint64_t eval_seed;
    size_t swd_projections;
    size_t mmd_max;
} dm_eval_cfg;

typedef struct dm_eval_result {
    double swd, mmd2;
    size_t n_swd, n_mmd;   /* samples each value used */
} dm_eval_result;

dm_status dm_evaluate(const dm_eval_cfg *cfg, const float *x, size_t n, const float *ref,
                      size_t n_ref, size_t d, dm_eval_result *res, char *err);

#endif
