/* dropout.h — dropout whose mask comes from per-item counter-based streams.
 *
 *   y = x * (keep ? 1 / (1 - p) : 0)   (inverted dropout, PyTorch's nn.Dropout in training)
 *
 * The mask: a layer at a training step has a key (dm_dropout_key(step_seed, layer), the step's
 * noise seed and the layer's index in the network); item `item` of the batch (its index in the
 * whole batch: item0 + i) has the stream key_i = dm_seed_index(key, item), and its element j
 * (of d = C H W) is kept iff (dm_seed_index(key_i, j) >> 40) >= round(p 2^24). dm_seed_index is
 * the splitmix64 step (core/rng.h), so element j's 24 bits are output j of SplittableRandom
 * seeded with key_i: a counter-based stream, not a GSL generator, because
 *  - an element's draw depends on (key, item, j) alone, never on the thread or the batch split
 *    (a GSL stream per item would do that too, but must be stepped in order);
 *  - it costs a few integer operations per element and vectorizes (8 lanes with AVX-512), where
 *    a taus2 draw per element would take longer than the layer's memory traffic;
 *  - the backward recomputes the mask instead of keeping a mask tensor.
 * The keep probability is 1 - round(p 2^24) / 2^24 (within 2^-25 of 1 - p). p = 0 is the
 * identity and draws nothing; p must be in [0, 1).
 *
 * Threads: an OpenMP loop (static schedule) over items. No sums: bits are independent of the
 * thread count. Built with the fast flags (dropout_fast.c) so the hash vectorizes. */
#ifndef DM_NN_DROPOUT_H
#define DM_NN_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

/* The key of layer `layer`'s masks at a step whose noise seed is step_seed. */
static inline uint64_t dm_dropout_key(uint64_t step_seed, uint64_t layer)
{
    return dm_seed_index(step_seed, layer);
}

/* x, y (n, d): items item0 .. item0 + n - 1 of the step's batch. y may be x. */
void dm_dropout_forward(double p, uint64_t key, int64_t item0, int n, size_t d, const float *x, float *y);
/* dx = dy * mask / (1 - p) with the forward's (p, key, item0, n, d) (acc_dx: dx +=). dx may be dy
 * unless acc_dx. */
void dm_dropout_backward(double p, uint64_t key, int64_t item0, int n, size_t d, const float *dy, float *dx,
                         int acc_dx);

#endif
