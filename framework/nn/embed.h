/* embed.h — the U-Net's time and class embedding, and its per-block projection.
 *
 * Time and class (dm_embed), per item i with c = c_noise[i] (the schedule's network time input):
 *   e0   = [sin(c f_0..f_{h-1}), cos(c f_0..)]     (T), h = T / 2, f_k = exp(-ln(10000) k / h)
 *          (the peer's `sinusoidal`; computed in double, rounded to float: the peer's float32
 *          product c f_k rounds the argument by up to ~3e-5 at c = 999, so its values differ
 *          from these at that level)
 *   temb = Linear2(SiLU(Linear1(e0)))  (+ table[y_i] if conditional)       (T)
 *   out  = SiLU(temb)                                                       (T)
 * The class table has n_classes + 1 rows of T, the last the null class: label y_i in
 * [0, n_classes) selects its row; any other label (DM_EMBED_NULL_CLASS = -1, or n_classes) and
 * y = NULL select the null row. It is added after the MLP, as ADM's label_emb.
 * The module returns SiLU(temb): every consumer of the embedding in the U-Net (each residual
 * block's projection) applies SiLU first (the peer's self.t(F.silu(temb))), so it is done once.
 *
 * Parameters (PyTorch's order): W1 (T, T), b1 (T), W2 (T, T), b2 (T), then the table
 * (n_classes + 1, T) when n_classes > 0. Init: the Linears as nn/linear.h (U(+-1/sqrt(T)), W then
 * b, layer 1 then 2), then the table row-major from N(0, 1) (nn.Embedding's default), each value
 * (float)dm_rng_normal(rng). No gradient reaches c_noise.
 *
 * Per-block projection (dm_tproj), Linear(T, C) of out, added to a block's activation
 * h (n, C, H, W) per item and channel (broadcast over H, W). Parameters W (C, T), b (C), init as
 * nn/linear.h. Its backward sums dh over H, W per item and channel (double, fixed order) and gives
 * d(out), to be accumulated over the blocks (acc flag).
 *
 * Threads: products by nn/linear (fixed tiles, single-threaded sgemm), elementwise work by items;
 * sums over items (table rows, biases) in item order: the bits do not depend on the thread count. */
#ifndef DM_NN_EMBED_H
#define DM_NN_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

enum { DM_EMBED_NULL_CLASS = -1 };

typedef struct dm_embed {
    int dim;       /* T, even */
    int n_classes; /* 0: unconditional (no table) */
    size_t n_params;
    size_t off_l2;    /* offset of W2 (W1 is at 0) */
    size_t off_table; /* offset of the class table (n_params if none) */
} dm_embed;

typedef struct dm_embed_ws {
    int max_batch;
    double *freq;  /* (T / 2) */
    float *e0;     /* (max_batch, T) sinusoidal embedding */
    float *z1;     /* (max_batch, T) Linear1's output */
    float *a1;     /* (max_batch, T) SiLU(z1) */
    float *temb;   /* (max_batch, T) */
    float *g, *g2; /* (max_batch, T) each: gradient scratch */
    int *row;      /* (max_batch) each item's table row */
    double *dtab;  /* (n_classes + 1, T) table gradient sums */
} dm_embed_ws;

dm_status dm_embed_init(dm_embed *e, int dim, int n_classes, char *err);
void dm_embed_init_params(const dm_embed *e, float *params, dm_rng *rng);
dm_status dm_embed_ws_init(dm_embed_ws *ws, const dm_embed *e, int max_batch, char *err);
void dm_embed_ws_free(dm_embed_ws *ws);

/* e0 (n, dim) of c_noise (n), as the forward computes it; freq (dim / 2) from dm_embed_freq. */
void dm_embed_freq(int dim, double *freq);
void dm_embed_sinusoid(int dim, const double *freq, int n, const float *c_noise, float *e0);

/* out (n, T) = SiLU(temb); y (n) labels or NULL. Keeps what backward needs in ws. */
void dm_embed_forward(const dm_embed *e, const float *params, dm_embed_ws *ws, int n, const float *c_noise,
                      const int32_t *y, float *out);
/* Given dout = dL/dout (n, T) after a forward of the same batch: grads (n_params), overwritten
 * (table rows of classes absent from the batch get zeros). */
void dm_embed_backward(const dm_embed *e, const float *params, dm_embed_ws *ws, int n, const float *dout,
                       float *grads);

typedef struct dm_tproj {
    int dim, c;      /* T in, C out */
    size_t n_params; /* (T + 1) C: W (C, T), b (C) */
} dm_tproj;

typedef struct dm_tproj_ws {
    int max_batch;
    float *p, *dp; /* (max_batch, C) each: the projection, its gradient */
} dm_tproj_ws;

dm_status dm_tproj_init(dm_tproj *tp, int dim, int c, char *err);
void dm_tproj_init_params(const dm_tproj *tp, float *params, dm_rng *rng);
dm_status dm_tproj_ws_init(dm_tproj_ws *ws, const dm_tproj *tp, int max_batch, char *err);
void dm_tproj_ws_free(dm_tproj_ws *ws);

/* h (n, C, hw) += (emb W^T + b) per item and channel; emb (n, T) is dm_embed's out. */
void dm_tproj_forward(const dm_tproj *tp, const float *params, dm_tproj_ws *ws, int n, const float *emb,
                      int hw, float *h);
/* dh = dL/dh (n, C, hw): grads (n_params), overwritten; demb (n, T) = dL/demb, or += if acc_demb
 * (the embedding feeds every block). */
void dm_tproj_backward(const dm_tproj *tp, const float *params, dm_tproj_ws *ws, int n, const float *emb,
                       int hw, const float *dh, float *grads, float *demb, int acc_demb);

#endif
