/* kid.h — the kernel inception distance's estimator on difflab's feature space (issue 17's `kid`;
 * Bińkowski et al. 2018): the unbiased MMD^2 (Gretton et al. 2012, eq. 3) with the polynomial
 * kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets.
 *
 * Each of n_subsets rounds draws s = min(subset, n, m) points of x and s of y without replacement
 * (a partial Fisher-Yates shuffle from rng) and computes
 *   (1 / (s (s-1))) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - (2 / s^2) sum_{i, j} k(x_i, y_j);
 * the result is the mean over rounds and their standard deviation (n_subsets - 1 divisor). The
 * Gram sums are in double; each round's bits depend only on its draws, whatever the thread count.
 * (The spread over subsets is the estimator's own spread, not a substitute for seeds.) */
#ifndef DM_EVAL_KID_H
#define DM_EVAL_KID_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"

/* The unbiased MMD^2 of the polynomial kernel between x (n, d) and y (m, d), n, m >= 2. */
double dm_kid_mmd2(const float *x, size_t n, const float *y, size_t m, size_t d);

dm_status dm_kid(const float *x, size_t n, const float *y, size_t m, size_t d, size_t n_subsets, size_t subset,
                 dm_rng *rng, double *mean, double *std, char *err);

#endif
