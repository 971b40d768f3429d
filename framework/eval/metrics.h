/* metrics.h — sample-quality metrics between generated samples and held-out data.
 *
 * Comparable across runs: the sliced-Wasserstein projections and the MMD bandwidth depend only on
 * the evaluation seed and the reference (held-out) set, never on a run's samples. All reductions
 * run in a fixed order with double accumulators, so values do not depend on the thread count. */
#ifndef DM_EVAL_METRICS_H
#define DM_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* n_proj random unit directions in R^d (n_proj, d), from seed. */
dm_status dm_swd_projections(uint64_t seed, size_t d, size_t n_proj, double *proj, char *err);

/* Sliced p-Wasserstein distance (order p = 1 or 2): (mean over projections of W_p^p between the
 * two projected empirical distributions)^(1/p), exact for unequal sizes (quantile functions
 * integrated piecewise). difflab records p = 1 as "swd": with finite samples, W2 is dominated by
 * the sampling noise of the mixture weights (its floor falls only as n^(-1/4)), W1's as n^(-1/2). */
dm_status dm_swd(const float *a, size_t na, const float *b, size_t nb, size_t d,
                 const double *proj, size_t n_proj, int order, double *out, char *err);

/* RBF bandwidth from the reference set alone: the median pairwise distance of its first
 * min(n, 2000) points (the median heuristic). NaN for fewer than 2 points, a non-finite point,
 * or no memory; dm_mmd2_unbiased then rejects it with a message. */
double dm_mmd_bandwidth(const float *ref, size_t n, size_t d);

/* Unbiased MMD^2 with k(x, y) = exp(-|x - y|^2 / (2 h^2)). Needs na, nb >= 2. */
dm_status dm_mmd2_unbiased(const float *a, size_t na, const float *b, size_t nb, size_t d,
                           double h, double *out, char *err);

/* dm_mmd2_unbiased at nh bandwidths h (nh) in one pass over the pairs: out (nh), out[q] equal to
 * dm_mmd2_unbiased(..., h[q], ...) bit for bit (the same sums in the same order). */
dm_status dm_mmd2_unbiased_multi(const float *a, size_t na, const float *b, size_t nb, size_t d, const double *h,
                                 size_t nh, double *out, char *err);

#endif
