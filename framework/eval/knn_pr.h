/* knn_pr.h — precision and recall of a generated set against a real one by k-nearest-neighbour
 * manifolds (Kynkäänniemi et al. 2019; issue 17's `precision` and `recall`, in the feature space).
 *
 * A set's manifold is the union of balls around its points, each of radius the distance to its
 * k-th nearest neighbour in the same set (the point itself excluded). precision = the share of
 * generated points inside the real manifold; recall = the share of real points inside the
 * generated manifold. Distances in double, exact (no approximate search): O(n^2 d).
 * For two draws of one law both stay below 1 and fall with the dimension at a fixed n (k = 3,
 * 10 modes of 200 points: about 0.97 in 2-D, 0.86 in 8-D), so values compare against the floor
 * row (real against real at the same n), never against 1. */
#ifndef DM_EVAL_KNN_PR_H
#define DM_EVAL_KNN_PR_H

#include <stddef.h>

#include "core/status.h"

enum { DM_PR_K = 3 };

/* real (nr, d), fake (nf, d), both with more than k points. */
dm_status dm_knn_precision_recall(const float *real, size_t nr, const float *fake, size_t nf, size_t d, int k,
                                  double *precision, double *recall, char *err);

#endif
