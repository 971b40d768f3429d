/* conditional.h — metrics of class-conditional samples (guidance).
 *
 * Sample i was drawn for class y_i; the reference set carries the data's labels. Per class c:
 *   cond_mmd2     the unbiased MMD^2 between the samples of class c and the reference points of
 *                 class c (the true class-conditional distribution), with the one bandwidth of
 *                 the whole reference set (as mmd2: comparable across runs), at most mmd_max / C
 *                 points of each;
 *   class_share   (mixtures only) the share of samples whose most probable class under the exact
 *                 mixture posterior p(y | x) (t = 0) is the class asked for;
 *   class_var     the within-class variance: the mean over coordinates of the samples' variance;
 *   class_entropy (mixtures only) the entropy, in nats, of the samples' spread over the class's
 *                 components (each sample counted for the class-c component most responsible
 *                 for it): log(components) when spread evenly, 0 when all fall on one.
 * Each value is the mean over the classes (unweighted). Larger guidance raises class_share and
 * lowers class_var and class_entropy: less diversity. */
#ifndef DM_EVAL_CONDITIONAL_H
#define DM_EVAL_CONDITIONAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "core/status.h"

typedef struct dm_cond_result {
    double cond_mmd2, class_share, class_var, class_entropy;   /* share, entropy: NaN without a mixture */
    size_t n;                                                  /* samples used */
} dm_cond_result;

/* x (n, d) with labels y (n, each in [0, C)); ref (nr, d) with ref_y; gmm may be NULL (no exact
 * posterior: class_share and class_entropy are NaN). DM_E_INPUT if a class has fewer than 2
 * samples or reference points. */
dm_status dm_cond_metrics(const float *x, const int32_t *y, size_t n, const float *ref, const int32_t *ref_y,
                          size_t nr, size_t d, size_t C, const dm_gmm *gmm, size_t mmd_max, dm_cond_result *res,
                          char *err);

#endif
