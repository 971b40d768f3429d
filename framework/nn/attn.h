/* attn.h — single-head self-attention at one resolution (the DDPM / ADM U-Net's AttentionBlock).
 *
 * Per item, with x (C, N) (N = H W positions, C channels):
 *   h = GroupNorm(groups, C)(x)                              (nn/gnorm)
 *   [q; k; v] = Wqkv h + bqkv                                 (3C, N): 1x1 convolutions
 *   P[i, :] = softmax_j(q[:, i] . k[:, j] / sqrt(C))          (N, N): row i = query position
 *   a[:, i] = sum_j P[i, j] v[:, j]                           (C, N)
 *   y = x + Wo a + bo                                         (C, N)
 * (ADM's QKVAttention with one head scales q and k by C^(-1/4) each; the product is the same.)
 *
 * Parameters (PyTorch's order of ADM's AttentionBlock): gamma (C), beta (C) of the GroupNorm,
 * Wqkv (3C, C) (rows: q, then k, then v) and bqkv (3C), Wo (C, C) and bo (C): 4C^2 + 6C floats.
 * Init: gamma 1, beta 0; Wqkv, bqkv, Wo, bo as PyTorch's default Conv2d / Linear
 * (U(+-1/sqrt(C)), in that order, each value (float)((2u - 1) / sqrt(C)), u = dm_rng_uniform).
 * ADM and DDPM zero the output projection instead (zero_module / init_scale 0): a U-Net that
 * wants that zeroes Wo and bo after this init.
 *
 * Products are OpenBLAS sgemm calls per item, each single-threaded inside an OpenMP loop; the
 * softmax is float with the row maximum subtracted, its row sums in double (nn/lane_sum.h).
 * Threads: the forward runs an OpenMP loop (static schedule) over items; the backward over fixed
 * tiles of DM_ATTN_TILE items, each tile summing its items' parameter gradients in item order,
 * the tiles then added in order (in double). The bits do not depend on the thread count. */
#ifndef DM_NN_ATTN_H
#define DM_NN_ATTN_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"
#include "nn/gnorm.h"

#define DM_ATTN_TILE 4

typedef struct dm_attn {
    int c;
    dm_gnorm gn;
    size_t n_params; /* 4C^2 + 6C */
    size_t off_qkv;  /* Wqkv (3C, C) then bqkv (3C); gamma, beta are at 0 */
    size_t off_out;  /* Wo (C, C) then bo (C) */
} dm_attn;

typedef struct dm_attn_ws {
    int max_batch, hw;
    dm_gnorm_ws gn;
    float *h;    /* (max_batch, C, N) GroupNorm output */
    float *qkv;  /* (max_batch, 3C, N) */
    float *p;    /* (max_batch, N, N) softmax */
    float *a;    /* (max_batch, C, N) attention output */
    float *dh;   /* (max_batch, C, N) dL/dh */
    float *tile; /* (n_tiles, C N + N N + 3C N): dA, dP, d[q; k; v] of a tile's current item */
    float *gw;   /* (n_tiles, 4C^2): a tile's sums of dWqkv, dWo */
    double *gb;  /* (n_tiles, 4C): a tile's sums of dbqkv, dbo */
    float *rows; /* (max_batch, N): per query row, 1 / its softmax sum, then its dP . P */
} dm_attn_ws;

dm_status dm_attn_init(dm_attn *at, int groups, int c, char *err);
void dm_attn_init_params(const dm_attn *at, float *params, dm_rng *rng);
/* hw = H W of the resolution the block runs at. */
dm_status dm_attn_ws_init(dm_attn_ws *ws, const dm_attn *at, int hw, int max_batch, char *err);
void dm_attn_ws_free(dm_attn_ws *ws);

/* y (n, C, hw) = x + attention(x); y must not overlap x. Keeps what backward needs in ws. */
void dm_attn_forward(const dm_attn *at, const float *params, dm_attn_ws *ws, int n, const float *x, float *y);
/* After a forward of the same batch and x: grads (n_params), overwritten; dx = dL/dx (acc_dx:
 * dx +=). dy must not overlap dx. */
void dm_attn_backward(const dm_attn *at, const float *params, dm_attn_ws *ws, int n, const float *x,
                      const float *dy, float *grads, float *dx, int acc_dx);

#endif
