/* unet_internal.h — the U-Net's plan of operations, shared by unet.c (building it, parameters,
 * workspaces), unet_pass.c (forward and backward) and cnn.c (the cnn model: the same plan with
 * a pooling head); included only by nn/unet*.c and nn/cnn.c.
 *
 * The network is a list of operations run in order; each writes one tensor (n, C, H, W) of the
 * plan. The backward runs the list in reverse: a tensor's gradient is complete when its producer
 * is reached, because all its consumers come later in the forward order. A tensor read by two
 * operations (a skip: the next operation and a concatenation further up) gets the first
 * gradient written and the second added. */
#ifndef DM_NN_UNET_INTERNAL_H
#define DM_NN_UNET_INTERNAL_H

#include "nn/attn.h"
#include "nn/conv.h"
#include "nn/embed.h"
#include "nn/gnorm.h"
#include "nn/unet.h"

typedef enum { OP_IN, OP_RES, OP_ATTN, OP_DOWN, OP_UP, OP_OUT, OP_POOL } unet_op_kind;

/* What follows the middle block: the U-Net's up path and OP_OUT (an image of out_dim / (H W)
 * channels), or the cnn's OP_POOL: features = mean over H W of SiLU(GroupNorm(h)) (n, C_last),
 * out = Linear(C_last -> out_dim) of them. */
typedef enum { UNET_HEAD_IMAGE, UNET_HEAD_POOL } unet_head;

typedef struct unet_tensor {
    int c, h, w;
} unet_tensor;

/* One operation. a, b: input tensors (b: the skip of a concatenation, -1 if none); out: its output.
 * Layers it does not use are zeroed. Parameter offsets are into the network's block. */
typedef struct unet_op {
    unet_op_kind kind;
    int a, b, out;
    int cin;                /* channels of its input (after the concatenation) */
    dm_gnorm gn1, gn2;      /* RES: before conv1 / conv2; OUT, POOL: gn1 */
    dm_conv conv1, conv2, skip; /* RES: conv1, conv2, skip (1x1, when cin != cout); IN/DOWN/UP/OUT: conv1 */
    dm_tproj tp;            /* RES */
    dm_attn at;             /* ATTN */
    int lin_out;            /* POOL: the Linear cin -> lin_out (nn/linear.h), parameters at off_lin */
    size_t off_gn1, off_conv1, off_tp, off_gn2, off_conv2, off_skip, off_at, off_lin;
} unet_op;

typedef struct dm_unet {
    dm_unet_opts o;
    unet_head head;
    int out_c;              /* IMAGE: output channels; POOL: out_dim */
    dm_embed emb;           /* parameters at 0 */
    int n_levels, level_c[8]; /* channels per level */
    int n_ops, n_t;
    unet_op *ops;
    unet_tensor *t;         /* tensor 0 is the input x */
} dm_unet;

/* Per operation: its private activations (what the backward needs besides its input tensors). */
typedef struct unet_op_ws {
    dm_gnorm_ws gn1, gn2;
    dm_tproj_ws tp;
    dm_attn_ws at;
    float *cat;             /* RES with a skip: cat(a, b) (n, cin, HW) */
    float *a1;              /* RES/OUT: SiLU(GN1(input)); UP: the upsampled input (POOL: w->g1) */
    float *h1, *a2, *d2;    /* RES: conv1 + temb, SiLU(GN2(h1)), dropout(a2) (d2 = a2 without dropout) */
} unet_op_ws;

typedef struct unet_ws {
    int cap;                /* items the activations hold */
    int n_op, n_t;
    int last;               /* the output tensor: val and grad are the caller's out and dout */
    dm_embed_ws emb;
    dm_conv_ws conv;        /* shared by every convolution */
    float *temb;            /* (cap, T) SiLU(temb), what every block's projection reads */
    float *demb;            /* (cap, T) its gradient, summed over the blocks */
    float **val, **grad;    /* (n_t) each tensor's values and gradient; val[0] is the caller's x */
    unet_op_ws *op;         /* (n_ops) */
    float *g1, *g2, *g3;    /* (cap, max C HW) gradient scratch */
    int feat_dim;           /* POOL: C_last, else 0 */
    float *feat, *dfeat;    /* POOL: (cap, feat_dim) the pooled features of the last forward, their gradient */
    int *grad_set;          /* (n_t) backward: a gradient was written (else the next write overwrites) */
    int dropped;            /* the last forward applied dropout (a training forward with dropout > 0) */
    uint64_t noise_seed;    /* its step seed */
} unet_ws;

static inline size_t unet_numel(const unet_tensor *t)
{
    return (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* The vt functions both models share (unet.c); init builds the plan of head for net->cfg. */
dm_status dm_unet_init_head(dm_net *net, const dm_unet_opts *opts, unet_head head, char *err);
void dm_unet_free_net(dm_net *net);
void dm_unet_init_params(const dm_net *net, float *params, dm_rng *rng);
dm_status dm_unet_ws_init(const dm_net *net, dm_net_ws *nws, int max_batch, char *err);
void dm_unet_ws_free(dm_net_ws *nws);
/* A forward of any n, in batches of the workspace's size. */
void dm_unet_forward_batches(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                             const float *tin, const int32_t *y, float *out);
/* The channels per level "32,64" and the attention resolutions "14" (or "") for describe. */
void dm_unet_describe_levels(const dm_unet *u, char *chans, size_t n_chans, char *attn, size_t n_attn);

/* One batch of n <= the workspace's items (unet_pass.c). */
void dm_unet_forward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                     const float *tin, const int32_t *y, float *out);
void dm_unet_backward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *dout,
                      float *grads, float *dx);

#endif
