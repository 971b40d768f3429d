/* ode_err.h — a deterministic sampler's discretisation error: the distance of each of its
 * samples to the reference solution of the probability-flow ODE from the same initial noise
 * (diffusion/ode_ref.h), in units of the data's standard deviation.
 *
 * Per sample i: e_i = sqrt(sum_j (x_ij - ref_ij)^2 / d) / data_std, the RMS over dimensions
 * divided by the std of the data (the trainer's data_std), so the value means the same in 2 and 64
 * dimensions and for data of any scale. The eval reports the mean and the median of e_i over the n
 * samples (the median is robust to the few samples near a decision boundary between modes, where
 * a small step error can send a sample to another mode). Paired by construction: the sampler and
 * the reference share the model, so model error cancels and what remains is the sampler's. Sums in
 * double in row order: the same bits whatever the thread count. Computes and returns (the caller,
 * train/record.c, records). */
#ifndef DM_EVAL_ODE_ERR_H
#define DM_EVAL_ODE_ERR_H

#include <stddef.h>

#include "core/status.h"

typedef struct dm_ode_err_result {
    double mean, median;   /* of e_i over the samples */
    double max;            /* the largest e_i */
} dm_ode_err_result;

/* x, ref: (n, d) the sampler's output and the reference for the same initial noise. e (n; may be
 * NULL) gets every e_i. DM_E_INPUT for n = 0, d = 0 or a data_std that is not positive and finite;
 * DM_E_NUMERIC if a sample or reference value is not finite; DM_E_NOMEM. */
dm_status dm_ode_err(const float *x, const float *ref, size_t n, size_t d, double data_std, double *e,
                     dm_ode_err_result *r, char *err);

#endif
