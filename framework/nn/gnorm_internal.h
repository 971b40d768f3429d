/* gnorm_internal.h — the elementwise kernels of nn/gnorm, in gnorm_fast.c (built with the fast
 * flags: vectorized exp); gnorm.c keeps the statistics and reductions in double. Private to
 * gnorm*.c. Each kernel runs on the calling thread over `rows` channels of hw values. */
#ifndef DM_NN_GNORM_INTERNAL_H
#define DM_NN_GNORM_INTERNAL_H

/* y (rows, hw) = u = (x - m) a_r + b_r per row r, or SiLU(u) if silu. */
void dm_gnorm_apply_rows(int rows, int hw, float m, const float *a, const float *b, const float *x, float *y,
                         int silu);

/* du (rows, hw) = dy SiLU'(u), u = (x - m) a_r + b_r computed as dm_gnorm_apply_rows does. */
void dm_gnorm_silu_grad_rows(int rows, int hw, float m, const float *a, const float *b, const float *x,
                             const float *dy, float *du);

/* dx (rows, hw) = A_r du + B (x - m) + C, or dx += that if acc. */
void dm_gnorm_dx_rows(int rows, int hw, float m, const float *A, float B, float C, const float *du,
                      const float *x, float *dx, int acc);

#endif
