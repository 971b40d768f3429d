/* tsampler.h — importance sampling of training times for the DDPM variational bound
 * (Nichol & Dhariwal 2021, sec. 3.3; improved-diffusion resample.py LossSecondMomentResampler).
 *
 * Each step t keeps the last DM_TSAMPLER_HISTORY row losses seen at t. Until every t has a full
 * history the draw is uniform; then p_t ∝ sqrt(mean of the squared history), mixed as
 * p <- (1 - 0.001) p + 0.001 / T. A row drawn at t gets the weight 1 / (T p_t), which keeps the
 * loss an unbiased estimate of the uniform-t mean. Draws are inverse-CDF lookups of one uniform
 * per row from the caller's stream, so a run is reproducible; the whole state is checkpointed. */
#ifndef DM_TRAIN_TSAMPLER_H
#define DM_TRAIN_TSAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

enum { DM_TSAMPLER_HISTORY = 10 };
#define DM_TSAMPLER_UNIFORM_MIX 0.001

typedef struct dm_tsampler {
    int T;
    double *history;   /* (T, DM_TSAMPLER_HISTORY), oldest first */
    int64_t *count;    /* (T) losses seen at t, capped at DM_TSAMPLER_HISTORY */
    double *cdf;       /* (T) scratch: cumulative probabilities of the current draw */
} dm_tsampler;

dm_status dm_tsampler_init(dm_tsampler *ts, int T, char *err);
void dm_tsampler_free(dm_tsampler *ts);

/* 1 once every t has a full history (before that the draw is uniform). */
int dm_tsampler_warm(const dm_tsampler *ts);

/* The current probabilities p (T). */
void dm_tsampler_probs(const dm_tsampler *ts, double *p);

/* Draw n times into t (as doubles, the trainer's unit) with weights w = 1 / (T p_t). */
void dm_tsampler_draw(dm_tsampler *ts, dm_rng *rng, size_t n, double *t, double *w);

/* Record the rows' unweighted losses at their times, in row order. */
void dm_tsampler_update(dm_tsampler *ts, size_t n, const double *t, const double *loss);

#endif
