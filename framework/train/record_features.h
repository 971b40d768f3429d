/* record_features.h — the image metrics of a sample set, recorded as evals of its run: in the
 * feature space of tr->features (train/features.h) against the reference set,
 *   fd         the Fréchet distance of all n samples to all reference items (eval/fd.h)
 *   kid        KID's estimator: the unbiased polynomial-kernel MMD^2 averaged over DM_KID_SUBSETS
 *              subsets of up to DM_KID_SUBSET items (stream "eval.kid" of eval.seed), n the samples
 *   kid_std    its standard deviation over the subsets (the estimator's spread, not the seeds')
 *   precision, recall   k-NN manifolds, k = 3 (eval/knn_pr.h) of the first min(n, eval.pr_max)
 *              samples and reference items, n that count
 *   fnet_class_share    labels given (a class-conditional set; the feature network has the same
 *              classes): the share of samples it assigns to their requested class
 * each with the sampler's settings plus "features":"<run id>". FD is biased at small n: compare
 * it with the floor (sampler exact) at the same n. */
#ifndef DM_TRAIN_RECORD_FEATURES_H
#define DM_TRAIN_RECORD_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "io/runrec.h"
#include "train/trainer.h"

#define DM_KID_SUBSETS 100
#define DM_KID_SUBSET 1000

dm_status dm_features_record(dm_trainer *tr, const float *x, size_t n, const int32_t *labels, dm_runrec *rec,
                             const char *sampler, int64_t nfe, const char *settings, char *err);

#endif
