/* unet_pass.c — the U-Net's forward and backward over its plan (unet_internal.h).
 *
 * Every layer splits its work by item (or by fixed tiles of items) and sums parameter gradients
 * in a fixed order, so the bits of both passes do not depend on the thread count. A forward of
 * more items than the workspace holds runs in batches of its size (unet.c): no layer mixes items
 * in a forward, so the values are those of one batch up to float rounding (a product's tile gives
 * bits that depend on its shape), and the same batch size gives the same bits. The cnn's pooling
 * head (OP_POOL) averages each item's channels in double, in order. */
#include <string.h>

#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/resample.h"
#include "nn/unet_internal.h"

/* dst (n items of m floats) += src, by item. */
static void add_items(int n, size_t m, const float *src, float *dst)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *s = src + (size_t)i * m;
        float *d = dst + (size_t)i * m;
        for (size_t j = 0; j < m; j++)
            d[j] += s[j];
    }
}

static void conv_fwd(const dm_conv *c, const float *P, size_t off, unet_ws *w, int n, const float *x, float *y)
{
    dm_conv_forward(c, P + off, P + off + c->n_w, &w->conv, n, x, y);
}

static void conv_bwd(const dm_conv *c, const float *P, size_t off, float *G, unet_ws *w, int n, const float *x,
                     const float *dy, float *dx, int acc)
{
    dm_conv_backward(c, P + off, &w->conv, n, x, dy, G + off, G + off + c->n_w, dx, acc);
}

static size_t hw_of(const unet_tensor *t)
{
    return (size_t)t->h * (size_t)t->w;
}

/* The gradient buffer of tensor t for a write, and whether the write adds (a second consumer). */
static float *grad_for(unet_ws *w, int t, int *acc)
{
    *acc = w->grad_set[t];
    w->grad_set[t] = 1;
    return w->grad[t];
}

static void res_forward(const dm_unet *u, int k, const float *P, unet_ws *w, int n)
{
    const unet_op *op = &u->ops[k];
    unet_op_ws *o = &w->op[k];
    const unet_tensor *to = &u->t[op->out];
    const size_t hw = hw_of(to), m = (size_t)to->c * hw;
    const float *in = w->val[op->a];
    if (op->b >= 0) {
        dm_concat_forward(n, u->t[op->a].c, u->t[op->b].c, (int)hw, in, w->val[op->b], o->cat);
        in = o->cat;
    }
    dm_gnorm_silu_forward(&op->gn1, P + op->off_gn1, &o->gn1, n, in, o->a1);
    conv_fwd(&op->conv1, P, op->off_conv1, w, n, o->a1, o->h1);
    dm_tproj_forward(&op->tp, P + op->off_tp, &o->tp, n, w->temb, (int)hw, o->h1);
    dm_gnorm_silu_forward(&op->gn2, P + op->off_gn2, &o->gn2, n, o->h1, o->a2);
    const float *src = o->a2;
    if (w->dropped) {
        dm_dropout_forward(u->o.dropout, dm_dropout_key(w->noise_seed, (uint64_t)k), 0, n, m, o->a2, o->d2);
        src = o->d2;
    }
    float *y = w->val[op->out];
    conv_fwd(&op->conv2, P, op->off_conv2, w, n, src, y);
    if (op->skip.n_params) {
        conv_fwd(&op->skip, P, op->off_skip, w, n, in, w->g1);
        add_items(n, m, w->g1, y);
    } else {
        add_items(n, m, in, y);
    }
}

/* The pooling head: a = SiLU(GN(input)) in g1; feat (n, C) = the mean of a over H W (in double,
 * in order); out = Linear(feat). */
static void pool_forward(const dm_unet *u, int k, const float *P, unet_ws *w, int n)
{
    const unet_op *op = &u->ops[k];
    const unet_tensor *ta = &u->t[op->a];
    const size_t hw = hw_of(ta), c = (size_t)op->cin;
    dm_gnorm_silu_forward(&op->gn1, P + op->off_gn1, &w->op[k].gn1, n, w->val[op->a], w->g1);
    const float *a = w->g1;
    float *feat = w->feat;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (size_t ch = 0; ch < c; ch++) {
            const float *v = a + ((size_t)i * c + ch) * hw;
            double s = 0.0;
            for (size_t j = 0; j < hw; j++)
                s += v[j];
            feat[(size_t)i * c + ch] = (float)(s / (double)hw);
        }
    dm_linear_forward(op->cin, op->lin_out, P + op->off_lin, n, feat, w->val[op->out]);
}

/* Its backward: the Linear's into dfeat; d(a) = dfeat / (H W) at every position; GN-SiLU's into
 * the input's gradient. */
static void pool_backward(const dm_unet *u, int k, const float *P, float *G, unet_ws *w, int n)
{
    const unet_op *op = &u->ops[k];
    const unet_tensor *ta = &u->t[op->a];
    const size_t hw = hw_of(ta), c = (size_t)op->cin;
    dm_linear_backward(op->cin, op->lin_out, P + op->off_lin, n, w->feat, w->grad[op->out], G + op->off_lin,
                       w->dfeat, 0);
    const float *dfeat = w->dfeat;
    float *da = w->g1;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (size_t ch = 0; ch < c; ch++) {
            const float g = dfeat[(size_t)i * c + ch] / (float)hw;
            float *d = da + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++)
                d[j] = g;
        }
    int acc;
    float *din = grad_for(w, op->a, &acc);
    dm_gnorm_silu_backward(&op->gn1, P + op->off_gn1, &w->op[k].gn1, n, w->val[op->a], da, G + op->off_gn1, din,
                           acc);
}

void dm_unet_forward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                     const float *tin, const int32_t *y, float *out)
{
    const dm_unet *u = net->impl;
    unet_ws *w = ws->impl;
    const int last = u->ops[u->n_ops - 1].out;
    w->val[0] = (float *)x;
    w->val[last] = out;
    w->dropped = ws->train && u->o.dropout > 0;
    w->noise_seed = ws->noise_seed;
    dm_embed_forward(&u->emb, params, &w->emb, n, tin, net->cfg.n_classes > 0 ? y : NULL, w->temb);
    for (int k = 0; k < u->n_ops; k++) {
        const unet_op *op = &u->ops[k];
        unet_op_ws *o = &w->op[k];
        const unet_tensor *ta = &u->t[op->a];
        switch (op->kind) {
        case OP_RES:
            res_forward(u, k, params, w, n);
            break;
        case OP_ATTN:
            dm_attn_forward(&op->at, params + op->off_at, &o->at, n, w->val[op->a], w->val[op->out]);
            break;
        case OP_UP:
            dm_upsample2_forward(n, ta->c, ta->h, ta->w, w->val[op->a], o->a1);
            conv_fwd(&op->conv1, params, op->off_conv1, w, n, o->a1, w->val[op->out]);
            break;
        case OP_OUT:
            dm_gnorm_silu_forward(&op->gn1, params + op->off_gn1, &o->gn1, n, w->val[op->a], o->a1);
            conv_fwd(&op->conv1, params, op->off_conv1, w, n, o->a1, w->val[op->out]);
            break;
        case OP_POOL:
            pool_forward(u, k, params, w, n);
            break;
        default: /* IN, DOWN */
            conv_fwd(&op->conv1, params, op->off_conv1, w, n, w->val[op->a], w->val[op->out]);
        }
    }
}

static void res_backward(const dm_unet *u, int k, const float *P, float *G, unet_ws *w, int n, int *demb_set)
{
    const unet_op *op = &u->ops[k];
    unet_op_ws *o = &w->op[k];
    const unet_tensor *to = &u->t[op->out];
    const size_t hw = hw_of(to), m = (size_t)to->c * hw;
    const float *dy = w->grad[op->out];
    const float *in = op->b >= 0 ? o->cat : w->val[op->a];
    /* conv2 -> g1; dropout -> g2; GN2 -> dh1; conv1 -> da1 (the buffer of da2, free by then). */
    conv_bwd(&op->conv2, P, op->off_conv2, G, w, n, w->dropped ? o->d2 : o->a2, dy, w->g1, 0);
    float *da2 = w->g1;
    if (w->dropped) {
        dm_dropout_backward(u->o.dropout, dm_dropout_key(w->noise_seed, (uint64_t)k), 0, n, m, w->g1, w->g2, 0);
        da2 = w->g2;
    }
    float *dh1 = da2 == w->g1 ? w->g2 : w->g1;
    dm_gnorm_silu_backward(&op->gn2, P + op->off_gn2, &o->gn2, n, o->h1, da2, G + op->off_gn2, dh1, 0);
    dm_tproj_backward(&op->tp, P + op->off_tp, &o->tp, n, w->temb, (int)hw, dh1, G + op->off_tp, w->demb,
                      *demb_set);
    *demb_set = 1;
    float *da1 = da2;
    conv_bwd(&op->conv1, P, op->off_conv1, G, w, n, o->a1, dh1, da1, 0);
    /* The input's gradient: into g3 when it is a concatenation (split below), else straight into
     * the input tensor's. */
    int acc_in = 0;
    float *din = op->b >= 0 ? w->g3 : grad_for(w, op->a, &acc_in);
    dm_gnorm_silu_backward(&op->gn1, P + op->off_gn1, &o->gn1, n, in, da1, G + op->off_gn1, din, acc_in);
    if (op->skip.n_params)
        conv_bwd(&op->skip, P, op->off_skip, G, w, n, in, dy, din, 1);
    else
        add_items(n, m, dy, din);
    if (op->b >= 0) {
        int acc_a, acc_b;
        float *ga = grad_for(w, op->a, &acc_a), *gb = grad_for(w, op->b, &acc_b);
        dm_concat_backward(n, u->t[op->a].c, u->t[op->b].c, (int)hw, din, ga, acc_a, gb, acc_b);
    }
}

void dm_unet_backward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *dout,
                      float *grads, float *dx)
{
    const dm_unet *u = net->impl;
    unet_ws *w = ws->impl;
    const int last = u->ops[u->n_ops - 1].out;
    memset(w->grad_set, 0, sizeof *w->grad_set * (size_t)u->n_t);
    w->grad[last] = (float *)dout;
    w->grad_set[last] = 1;
    int demb_set = 0;
    for (int k = u->n_ops - 1; k >= 0; k--) {
        const unet_op *op = &u->ops[k];
        unet_op_ws *o = &w->op[k];
        const unet_tensor *ta = &u->t[op->a];
        const float *dy = w->grad[op->out];
        int acc = 0;
        switch (op->kind) {
        case OP_RES:
            res_backward(u, k, params, grads, w, n, &demb_set);
            break;
        case OP_ATTN: {
            float *da = grad_for(w, op->a, &acc);
            dm_attn_backward(&op->at, params + op->off_at, &o->at, n, w->val[op->a], dy, grads + op->off_at, da, acc);
            break;
        }
        case OP_UP:
            conv_bwd(&op->conv1, params, op->off_conv1, grads, w, n, o->a1, dy, w->g1, 0);
            {
                float *da = grad_for(w, op->a, &acc);
                dm_upsample2_backward(n, ta->c, ta->h, ta->w, w->g1, da, acc);
            }
            break;
        case OP_OUT:
            conv_bwd(&op->conv1, params, op->off_conv1, grads, w, n, o->a1, dy, w->g1, 0);
            {
                float *da = grad_for(w, op->a, &acc);
                dm_gnorm_silu_backward(&op->gn1, params + op->off_gn1, &o->gn1, n, w->val[op->a], w->g1,
                                       grads + op->off_gn1, da, acc);
            }
            break;
        case OP_POOL:
            pool_backward(u, k, params, grads, w, n);
            break;
        case OP_IN:
            conv_bwd(&op->conv1, params, op->off_conv1, grads, w, n, w->val[0], dy, dx, 0);
            break;
        default: { /* DOWN */
            float *da = grad_for(w, op->a, &acc);
            conv_bwd(&op->conv1, params, op->off_conv1, grads, w, n, w->val[op->a], dy, da, acc);
        }
        }
    }
    dm_embed_backward(&u->emb, params, &w->emb, n, w->demb, grads);
}
