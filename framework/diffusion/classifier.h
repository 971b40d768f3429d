/* classifier.h — a time-conditioned classifier p(y | x_t) as classifier guidance sees it.
 *
 * For a batch x (n, dim) at times t (n) with labels y (n), eval returns log p_t(y_i | x_i)
 * (logp, n; may be NULL) and its gradient with respect to x_i (grad, (n, dim); may be NULL).
 * Implementations: a trained network (diffusion/classifier_net.h, a difflab run with the xent
 * loss) and the exact classifier of a Gaussian mixture (denoiser_gmm.h), so guided sampling can
 * run with zero model error. */
#ifndef DM_DIFFUSION_CLASSIFIER_H
#define DM_DIFFUSION_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dm_classifier {
    void *ctx;
    size_t dim;
    size_t n_classes;
    size_t max_batch;   /* eval accepts n <= max_batch */
    dm_status (*eval)(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, double *logp,
                      float *grad, char *err);
} dm_classifier;

#endif
