/* sample.h — `difflab sample RUN|SPEC`.
 *
 * For a finished run it loads the run's spec and its EMA (or training) weights from
 * checkpoint.h5, samples with the sampler named on the command line, and writes the samples, the
 * evals (run.h5 replaced atomically, the index updated) and a picture next to run.h5 (an SVG
 * scatter of 2-D samples over the reference data, a PNG grid of images). For a spec whose model is analytic it is `difflab run` with the
 * sampler overrides: nothing to train. */
#ifndef DM_TRAIN_SAMPLE_H
#define DM_TRAIN_SAMPLE_H

#include <stdio.h>

#include "core/status.h"

typedef struct dm_sample_cfg {
    const char *results;
    const char *sampler;   /* --sampler NAME, or NULL: the run's own */
    const char *steps;     /* --steps N, or NULL */
    FILE *out;
} dm_sample_cfg;

dm_status dm_sample_cmd(const dm_sample_cfg *cfg, const char *target, int n_over,
                        const char *const *overrides, char *err);

#endif
