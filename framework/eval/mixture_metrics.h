/* mixture_metrics.h — sample metrics against the exact density of a Gaussian mixture
 * p(x) = sum_k w_k N(x; mu_k, s_k^2 I):
 *
 *   data_nll    mean over samples of -log p(x_i), nats per point: within-mode blur raises it;
 *   in_mode99   share of samples within the 0.99 quantile of some component:
 *               min_k |x - mu_k|^2 / s_k^2 <= chi2_{d, 0.99} (GSL gsl_cdf_chisq_Pinv), the same
 *               meaning in 2 and in 64 dimensions (0.99 and a little more for exact draws);
 *   mode_recall share of components with at least half their expected count n w_k;
 *   mode_chi2   Pearson's X^2 = sum_k (c_k - n w_k)^2 / (n w_k) of the component counts c_k
 *               (about K - 1 for exact draws of well-separated components; 7 n when every
 *               sample falls in one of 8 equal components).
 * Counts assign each sample to its most responsible component, argmax_k w_k N(x; mu_k, s_k^2 I)
 * (the exact posterior over components at t = 0; ties to the lower index). Components of weight
 * 0 are not part of the data and count nowhere.
 *
 * data_nll and in_mode99 reward mode collapse (a sampler that drops modes, or shrinks every mode
 * to its centre, scores better): they are descriptions, shown beside mode_recall and mode_chi2,
 * never ranked alone.
 *
 * A class-conditional set (labels y_i) is measured against the distribution it was asked for:
 * the mixture with weights w'_k = (n_c / n) w_k / W_c for component k of class c, n_c the
 * samples of class c and W_c the class's weight (for unconditional sets w' = w). The class a
 * sample landed in is class_share's business (eval/conditional.h), not these metrics'.
 * Per-sample work runs in parallel; the sums are taken in index order in double, so values do not
 * depend on the thread count. */
#ifndef DM_EVAL_MIXTURE_METRICS_H
#define DM_EVAL_MIXTURE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/dataset.h"

typedef struct dm_mix_result {
    double data_nll, in_mode99, mode_recall, mode_chi2;
    size_t n;   /* samples used */
} dm_mix_result;

/* x (n, g->dim) samples; y (n) their classes, or NULL (unconditional). DM_E_NUMERIC for a
 * non-finite sample; DM_E_INPUT for a label outside the mixture's classes or of zero weight. */
dm_status dm_mixture_metrics(const dm_gmm *g, const float *x, const int32_t *y, size_t n, dm_mix_result *res,
                             char *err);

#endif
