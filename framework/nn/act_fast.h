/* act_fast.h — vectorized elementwise kernels of the MLP.
 *
 * act_fast.c is compiled with -O3 -ffast-math (a per-file flag, see CMakeLists.txt) so that GCC
 * vectorizes the loops freely (an inlined polynomial exp, glibc's libmvec sin / cos). No NaN/Inf
 * checks belong there: -ffast-math assumes they do not occur. Each kernel runs its own OpenMP loop (static
 * schedule) over rows or fixed-size row chunks; every row is computed by the same instructions whatever
 * thread takes it, and the one reduction (bias-gradient partial sums) is over fixed 64-row chunks, so results
 * do not depend on the thread count. */
#ifndef DM_NN_ACT_FAST_H
#define DM_NN_ACT_FAST_H

#include <stddef.h>

/* Rows per bias-gradient partial sum (see dm_act_silu_bwd). */
#define DM_ACT_ROW_CHUNK 64

/* Number of DM_ACT_ROW_CHUNK-row chunks covering n rows. */
static inline int dm_act_n_chunks(int n)
{
    return (n + DM_ACT_ROW_CHUNK - 1) / DM_ACT_ROW_CHUNK;
}

/* Initial rows of the next product's output, so that its sgemm runs with beta = 1: z (n, m)
 * rows := b (m), or zeros if b is NULL. OpenBLAS's beta = 0 zeroes C in a pass of its own (~10%
 * of a 1024x256x256 product, measured); here the rows are written by a pass that visits those
 * rows anyway. */
typedef struct dm_act_prefill {
    int m;
    const float *b; // (m) or NULL
    float *z;       // (n, m)
} dm_act_prefill;

/* A narrow output layer computed inside the last SiLU pass, while each row of h is in L1:
 * z (n, od) = out (n, od) = h w^T + b. */
typedef struct dm_act_out {
    int od;
    const float *w, *b; // (od, m), (od)
    float *z, *out;     // (n, od) each
} dm_act_out;

/* h0 rows = [x, sin(t f_0..f_{nfreq-1}), cos(t f_0..)] with t = tin[i], computed in double and
 * rounded to float. x (n, in_dim), tin (n), freq (nfreq), h0 (n, in_dim + 2*nfreq).
 * Rows whose t equals (bitwise) the previous row's reuse its embedding: sampling batches share t.
 * next (may be NULL): prefill of layer 0's pre-activation. */
void dm_act_time_embed(int n, int in_dim, int nfreq, const double *freq, const float *x, const float *tin,
                       float *h0, const dm_act_prefill *next);

/* SiLU: z (n, m) holds the pre-activation (bias included) on entry and sigmoid(z) on return (what
 * the backward pass needs); h (n, m) = SiLU(z) = z sigmoid(z). next (may be NULL): prefill of
 * the next layer; out (may be NULL): the output layer, fused. */
void dm_act_silu_fwd(int n, int m, float *z, float *h, const dm_act_prefill *next, const dm_act_out *out);

/* z (n, m) = c + x wt: c (m), x (n, k), wt (k, m); for small k (a rank-k update per row). */
void dm_act_affine_rows(int n, int m, int k, const float *c, const float *x, const float *wt, float *z);

/* SiLU(z) (n) elementwise, without bias (for tests). */
void dm_act_silu(size_t n, const float *z, float *h);

/* SiLU backward from s = sigmoid(z) and h = SiLU(z), both (n, m), as the forward left them:
 * g (n, m) = dL/dh * SiLU'(z), SiLU'(z) = s + h (1 - s). dL/dh is g itself on entry if od == 0,
 * else it is formed in the same pass as dout (n, od) times wo (od, m) (the output layer's
 * input gradient; g is then output only). Also writes the column sums of the new g per
 * DM_ACT_ROW_CHUNK-row chunk, in row order and in double: dbpart (dm_act_n_chunks(n), m).
 * next (may be NULL): prefill (zeros) of the buffer receiving the next product, dL/dh_l. */
void dm_act_silu_bwd(int n, int m, const float *s, const float *h, float *g, double *dbpart, int od,
                     const float *dout, const float *wo, const dm_act_prefill *next);

#endif
