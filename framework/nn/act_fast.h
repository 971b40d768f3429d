/* act_fast.h — vectorized elementwise kernels of the MLP.
 *
 * act_fast.c is compiled with -O3 -ffast-math (a per-file flag, see CMakeLists.txt) so that GCC
 * calls glibc's vector expf / sin / cos (libmvec). No NaN/Inf checks belong there: -ffast-math
 * assumes they do not occur. Each kernel runs its own OpenMP loop (static schedule) over rows or
 * fixed-size row chunks; every row is computed by the same instructions whatever thread takes it,
 * and the one reduction (bias-gradient partial sums) is over fixed 64-row chunks, so results do
 * not depend on the thread count. */
#ifndef DM_NN_ACT_FAST_H
#define DM_NN_ACT_FAST_H

#include <stddef.h>

/* Rows per bias-gradient partial sum (see dm_act_silu_bwd). */
#define DM_ACT_ROW_CHUNK 64

/* Number of DM_ACT_ROW_CHUNK-row chunks covering n rows. */
static inline int dm_act_n_chunks(int n) { return (n + DM_ACT_ROW_CHUNK - 1) / DM_ACT_ROW_CHUNK; }

/* h0 rows = [x, sin(t f_0..f_{nfreq-1}), cos(t f_0..)] with t = tin[i], computed in double and
 * rounded to float. x (n, in_dim), tin (n), freq (nfreq), h0 (n, in_dim + 2*nfreq).
 * Rows whose t equals (bitwise) the previous row's reuse its embedding: sampling batches share t. */
void dm_act_time_embed(int n, int in_dim, int nfreq, const double *freq, const float *x,
                       const float *tin, float *h0);

/* z += b per row, then h = SiLU(z) = z / (1 + exp(-z)). z, h (n, m); b (m). */
void dm_act_bias_silu_fwd(int n, int m, const float *b, float *z, float *h);

/* SiLU(z) (n) elementwise, without bias (for tests). */
void dm_act_silu(size_t n, const float *z, float *h);

/* g = g * SiLU'(z) in place (g: dL/dh in, dL/dz out), SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z).
 * Also writes the column sums of the new g per DM_ACT_ROW_CHUNK-row chunk, in row order and in
 * double: dbpart (dm_act_n_chunks(n), m). z, g (n, m). */
void dm_act_silu_bwd(int n, int m, const float *z, float *g, double *dbpart);

#endif
