/* attn_internal.h — the softmax kernels of nn/attn, in attn_fast.c (built with the fast flags:
 * vectorized exp). The row sums they need are formed in double in attn.c. Private to attn*.c.
 * Each kernel runs on the calling thread over `rows` rows of len floats. */
#ifndef DM_NN_ATTN_INTERNAL_H
#define DM_NN_ATTN_INTERNAL_H

/* s (rows, len) = exp(s - max of its row), in place. */
void dm_attn_exp_rows(int rows, int len, float *s);

/* s (rows, len) *= f[row]. */
void dm_attn_scale_rows(int rows, int len, const float *f, float *s);

/* The softmax backward: d (rows, len) = p (d - dot[row]) scale, in place (d = dL/dP on entry,
 * dL/dS of S = scale^-1 q^T k on return, the scale of the logits folded in). */
void dm_attn_softmax_bwd_rows(int rows, int len, const float *p, const float *dot, float scale, float *d);

#endif
