/* rng.h — named random streams (GSL).
 *
 * Every random draw in difflab comes from a stream whose seed is derived from (master seed, stream
 * name) — "train.batch", "train.t", "train.noise", "model.init", "data.train", "eval" — so adding
 * a draw to one stream never shifts another. Sample i of an evaluation draws its initial and
 * per-step noise from its own stream dm_seed_index(eval_seed, i), whatever the sampler and thread
 * count, so sampler comparisons on one run are paired (common random numbers).
 * A dm_rng is owned by one thread at a time. */
#ifndef DM_CORE_RNG_H
#define DM_CORE_RNG_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dm_rng {
    gsl_rng *r;
} dm_rng;

/* Seed of the stream `name` of master seed `master`: first 8 bytes of SHA-256("<master>/<name>"). */
uint64_t dm_seed_derive(uint64_t master, const char *name);
/* Seed of the i-th indexed sub-stream of `seed` (one per evaluation sample). */
uint64_t dm_seed_index(uint64_t seed, uint64_t i);

/* A Mersenne-Twister stream (gsl_rng_mt19937) for named streams. */
dm_status dm_rng_init(dm_rng *rng, uint64_t seed, char *err);
/* A small-state stream (gsl_rng_taus2) for the many per-sample streams of an evaluation. */
dm_status dm_rng_init_small(dm_rng *rng, uint64_t seed, char *err);
void dm_rng_free(dm_rng *rng);

/* n indexed small streams dm_seed_index(base, i), i < n, in a fresh array (the per-sample
 * streams of an evaluation); free with dm_rng_streams_free. */
dm_status dm_rng_streams_new(uint64_t base, size_t n, dm_rng **out, char *err);
void dm_rng_streams_free(dm_rng *rngs, size_t n);

double dm_rng_uniform(dm_rng *rng);          /* [0, 1) */
double dm_rng_normal(dm_rng *rng);           /* N(0, 1), ziggurat */
unsigned long dm_rng_int(dm_rng *rng, unsigned long n); /* uniform on {0..n-1} */

/* Serialized state, for checkpoints: size in bytes, and copy out / in. */
size_t dm_rng_state_size(const dm_rng *rng);
void dm_rng_state_get(const dm_rng *rng, void *buf);
void dm_rng_state_set(dm_rng *rng, const void *buf);

#endif
