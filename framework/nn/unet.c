/* unet.c — the U-Net (unet.h): its options, the plan of operations, parameters and workspaces.
 * The passes are in unet_pass.c; the cnn model (cnn.c) builds the same plan with a pooling head. */
#include "nn/unet.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/linear.h"
#include "nn/unet_internal.h"

#define MAX_LEVELS 8
#define MAX_OPS (4 + MAX_LEVELS * 2 * (2 * 16 + 1) + 2)

const dm_param_desc dm_unet_params[] = {
    { "ch", DM_OPT_INT, "32", 1, 1024, NULL, 0, offsetof(dm_unet_opts, ch), "base channels" },
    { "mult", DM_OPT_REALS, "[1, 2]", 1, 64, NULL, 0, offsetof(dm_unet_opts, mult),
      "channel multiplier per level (levels = its length; each level below the first halves H and W)" },
    { "blocks", DM_OPT_INT, "1", 1, 16, NULL, 0, offsetof(dm_unet_opts, blocks),
      "residual blocks per level (each with one skip)" },
    { "attn", DM_OPT_REALS, "[]", 1, 4096, NULL, 0, offsetof(dm_unet_opts, attn),
      "resolutions (H) with self-attention after each residual block, e.g. [14]" },
    { "dropout", DM_OPT_REAL, "0", 0, 0.9, NULL, 0, offsetof(dm_unet_opts, dropout),
      "dropout rate in every residual block (training only)" },
    { "groups", DM_OPT_INT, "8", 1, 1024, NULL, 0, offsetof(dm_unet_opts, groups), "GroupNorm groups" },
    { "temb", DM_OPT_INT, "128", 2, 4096, NULL, 0, offsetof(dm_unet_opts, temb),
      "time-embedding width (even)" },
    { "conditional", DM_OPT_BOOL, "false", 0, 0, NULL, 0, offsetof(dm_unet_opts, conditional),
      "class-conditional: a class embedding (with the null class) added to the time embedding" },
    DM_OPT_END,
};

typedef struct planner {
    dm_unet *u;
    size_t off;
    char *err;
} planner;

static int new_tensor(dm_unet *u, int c, int h, int w)
{
    u->t[u->n_t] = (unet_tensor){ c, h, w };
    return u->n_t++;
}

static int has_attn(const dm_unet_opts *o, int h)
{
    for (size_t i = 0; i < o->attn.n; i++)
        if ((int)o->attn.v[i] == h)
            return 1;
    return 0;
}

static dm_status conv_at(planner *p, dm_conv *c, size_t *off, int cin, int cout, int k, int stride, int h, int w)
{
    dm_status st = dm_conv_init(c, cin, cout, k, stride, h, w, p->err);
    if (!st) {
        *off = p->off;
        p->off += c->n_params;
    }
    return st;
}

static dm_status gnorm_at(planner *p, dm_gnorm *g, size_t *off, int c)
{
    dm_status st = dm_gnorm_init(g, (int)p->u->o.groups, c, p->err);
    if (st) {
        dm_err_prefix(p->err, "model.groups = %lld, a layer of %d channels", (long long)p->u->o.groups, c);
        return st;
    }
    *off = p->off;
    p->off += g->n_params;
    return DM_OK;
}

/* A residual block on tensor a (concatenated with skip b >= 0) to cout channels; returns its
 * output tensor, or -1 on error. */
static int add_res(planner *p, int a, int b, int cout)
{
    dm_unet *u = p->u;
    const unet_tensor ta = u->t[a];
    unet_op *op = &u->ops[u->n_ops];
    memset(op, 0, sizeof *op);
    op->kind = OP_RES;
    op->a = a;
    op->b = b;
    op->cin = ta.c + (b >= 0 ? u->t[b].c : 0);
    if (gnorm_at(p, &op->gn1, &op->off_gn1, op->cin) ||
        conv_at(p, &op->conv1, &op->off_conv1, op->cin, cout, 3, 1, ta.h, ta.w) ||
        dm_tproj_init(&op->tp, (int)u->o.temb, cout, p->err))
        return -1;
    op->off_tp = p->off;
    p->off += op->tp.n_params;
    if (gnorm_at(p, &op->gn2, &op->off_gn2, cout) ||
        conv_at(p, &op->conv2, &op->off_conv2, cout, cout, 3, 1, ta.h, ta.w) ||
        (op->cin != cout && conv_at(p, &op->skip, &op->off_skip, op->cin, cout, 1, 1, ta.h, ta.w)))
        return -1;
    op->out = new_tensor(u, cout, ta.h, ta.w);
    u->n_ops++;
    int out = op->out;
    if (has_attn(&u->o, ta.h)) {
        unet_op *at = &u->ops[u->n_ops];
        memset(at, 0, sizeof *at);
        at->kind = OP_ATTN;
        at->a = out;
        at->b = -1;
        at->cin = cout;
        if (dm_attn_init(&at->at, (int)u->o.groups, cout, p->err))
            return -1;
        at->off_at = p->off;
        p->off += at->at.n_params;
        out = at->out = new_tensor(u, cout, ta.h, ta.w);
        u->n_ops++;
    }
    return out;
}

/* A convolution operation (IN, DOWN, UP, OUT) on tensor a; returns its output tensor or -1. */
static int add_conv(planner *p, unet_op_kind kind, int a, int cout)
{
    dm_unet *u = p->u;
    const unet_tensor ta = u->t[a];
    unet_op *op = &u->ops[u->n_ops];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->a = a;
    op->b = -1;
    op->cin = ta.c;
    const int h = kind == OP_UP ? 2 * ta.h : ta.h, w = kind == OP_UP ? 2 * ta.w : ta.w;
    if (kind == OP_OUT && gnorm_at(p, &op->gn1, &op->off_gn1, ta.c))
        return -1;
    if (conv_at(p, &op->conv1, &op->off_conv1, ta.c, cout, 3, kind == OP_DOWN ? 2 : 1, h, w))
        return -1;
    op->out = new_tensor(u, cout, op->conv1.ho, op->conv1.wo);
    u->n_ops++;
    return op->out;
}

/* The pooling head on tensor a: GN-SiLU, the mean over H W, Linear to n_out; returns the output
 * tensor (n_out, 1, 1) or -1. */
static int add_pool(planner *p, int a, int n_out)
{
    dm_unet *u = p->u;
    unet_op *op = &u->ops[u->n_ops];
    memset(op, 0, sizeof *op);
    op->kind = OP_POOL;
    op->a = a;
    op->b = -1;
    op->cin = u->t[a].c;
    op->lin_out = n_out;
    if (gnorm_at(p, &op->gn1, &op->off_gn1, op->cin))
        return -1;
    op->off_lin = p->off;
    p->off += dm_linear_n_params(op->cin, n_out);
    op->out = new_tensor(u, n_out, 1, 1);
    u->n_ops++;
    return op->out;
}

static dm_status plan(dm_unet *u, const dm_net_cfg *cfg, size_t *n_params, char *err)
{
    const dm_unet_opts *o = &u->o;
    const int L = (int)o->mult.n, pool = u->head == UNET_HEAD_POOL;
    if (cfg->h == 1 && cfg->w == 1)
        return dm_err(err, DM_E_INPUT, "model.type %s needs image data (data.type fashion_mnist or image_mixture); "
                      "these data are points of dimension %d (use model.type mlp)", pool ? "cnn" : "unet", cfg->dim);
    if (L < 1 || L > MAX_LEVELS || o->mult.rows != 0)
        return dm_err(err, DM_E_INPUT, "model.mult: give 1 to %d channel multipliers (one per level)", MAX_LEVELS);
    if (cfg->h % (1 << (L - 1)) != 0 || cfg->w % (1 << (L - 1)) != 0)
        return dm_err(err, DM_E_INPUT, "model.mult: %d levels halve the %dx%d images %d times; %dx%d is not divisible "
                      "by %d (pad the data, e.g. fashion_mnist pad: 2, or use fewer levels)", L, cfg->h, cfg->w,
                      L - 1, cfg->h, cfg->w, 1 << (L - 1));
    if (o->temb % 2 != 0)
        return dm_err(err, DM_E_INPUT, "model.temb = %lld: must be even", (long long)o->temb);
    if (!pool && cfg->out_dim % (cfg->h * cfg->w) != 0)
        return dm_err(err, DM_E_INPUT, "model.type unet: %d outputs per item are not whole %dx%d channels (a "
                      "classifier's logits need another head: use model.type cnn)", cfg->out_dim, cfg->h, cfg->w);
    u->out_c = pool ? cfg->out_dim : cfg->out_dim / (cfg->h * cfg->w);
    dm_status st = dm_embed_init(&u->emb, (int)o->temb, cfg->n_classes, err);
    if (st)
        return st;
    planner p = { u, u->emb.n_params, err };
    int skips[MAX_OPS], n_skips = 0;
    int cur = new_tensor(u, cfg->c, cfg->h, cfg->w);
    for (size_t i = 0; i < o->attn.n; i++) {
        int found = 0;
        for (int l = 0; l < L; l++)
            found |= (int)o->attn.v[i] == cfg->h >> l && o->attn.v[i] == floor(o->attn.v[i]);
        if (!found)
            return dm_err(err, DM_E_INPUT, "model.attn: %g is not a resolution of this %s (H = %d halved at each "
                          "of %d levels)", o->attn.v[i], pool ? "CNN" : "U-Net", cfg->h, L);
    }
    for (int l = 0; l < L; l++) {
        if (o->mult.v[l] != floor(o->mult.v[l]))
            return dm_err(err, DM_E_INPUT, "model.mult[%d] = %g: must be a whole number", l, o->mult.v[l]);
        u->level_c[l] = (int)(o->ch * (int64_t)o->mult.v[l]);
    }
    u->n_levels = L;
    if ((cur = add_conv(&p, OP_IN, cur, (int)o->ch)) < 0)
        return DM_E_INPUT;
    for (int l = 0; l < L; l++) {
        const int cl = u->level_c[l];
        for (int b = 0; b < (int)o->blocks; b++) {
            if ((cur = add_res(&p, cur, -1, cl)) < 0)
                return DM_E_INPUT;
            skips[n_skips++] = cur;
        }
        if (l < L - 1 && (cur = add_conv(&p, OP_DOWN, cur, cl)) < 0)
            return DM_E_INPUT;
    }
    if ((cur = add_res(&p, cur, -1, u->level_c[L - 1])) < 0)
        return DM_E_INPUT;
    if (pool) {
        if (add_pool(&p, cur, cfg->out_dim) < 0)
            return DM_E_INPUT;
        *n_params = p.off;
        return DM_OK;
    }
    for (int l = L - 1; l >= 0; l--) {
        const int cl = u->level_c[l];
        for (int b = 0; b < (int)o->blocks; b++)
            if ((cur = add_res(&p, cur, skips[--n_skips], cl)) < 0)
                return DM_E_INPUT;
        if (l > 0 && (cur = add_conv(&p, OP_UP, cur, cl)) < 0)
            return DM_E_INPUT;
    }
    if ((cur = add_conv(&p, OP_OUT, cur, u->out_c)) < 0)
        return DM_E_INPUT;
    *n_params = p.off;
    return DM_OK;
}

static void unet_free_impl(dm_unet *u)
{
    for (int k = 0; k < u->n_ops; k++) {
        dm_conv_free(&u->ops[k].conv1);
        dm_conv_free(&u->ops[k].conv2);
        dm_conv_free(&u->ops[k].skip);
    }
    dm_free(u->ops);
    dm_free(u->t);
    dm_free(u);
}

dm_status dm_unet_init_head(dm_net *net, const dm_unet_opts *opts, unet_head head, char *err)
{
    const char *name = head == UNET_HEAD_POOL ? "cnn" : "unet";
    dm_unet *u = dm_calloc(1, sizeof *u);
    if (u) {
        u->ops = dm_calloc(MAX_OPS, sizeof *u->ops);
        u->t = dm_calloc(MAX_OPS + 1, sizeof *u->t);
    }
    if (!u || !u->ops || !u->t) {
        if (u)
            unet_free_impl(u);
        return dm_err(err, DM_E_NOMEM, "%s: out of memory for the network's plan", name);
    }
    u->o = *opts;
    u->head = head;
    size_t np = 0;
    dm_status st = plan(u, &net->cfg, &np, err);
    u->o.mult.v = u->o.attn.v = NULL; /* the spec owns the lists; the plan holds what it needs */
    if (st) {
        unet_free_impl(u);
        return st;
    }
    net->impl = u;
    net->n_params = np;
    net->batch_cap = DM_UNET_BATCH_CAP;
    return DM_OK;
}

static dm_status unet_init(dm_net *net, const void *opts, char *err)
{
    return dm_unet_init_head(net, opts, UNET_HEAD_IMAGE, err);
}

void dm_unet_free_net(dm_net *net)
{
    unet_free_impl(net->impl);
    net->impl = NULL;
}

/* In parameter order: the embedding, then each operation's layers (their own draw order). */
void dm_unet_init_params(const dm_net *net, float *params, dm_rng *rng)
{
    const dm_unet *u = net->impl;
    dm_embed_init_params(&u->emb, params, rng);
    for (int k = 0; k < u->n_ops; k++) {
        const unet_op *op = &u->ops[k];
        switch (op->kind) {
        case OP_RES:
            dm_gnorm_init_params(&op->gn1, params + op->off_gn1);
            dm_conv_init_params(&op->conv1, params + op->off_conv1, rng);
            dm_tproj_init_params(&op->tp, params + op->off_tp, rng);
            dm_gnorm_init_params(&op->gn2, params + op->off_gn2);
            dm_conv_init_params(&op->conv2, params + op->off_conv2, rng);
            if (op->skip.n_params)
                dm_conv_init_params(&op->skip, params + op->off_skip, rng);
            break;
        case OP_ATTN:
            dm_attn_init_params(&op->at, params + op->off_at, rng);
            break;
        case OP_OUT:
            dm_gnorm_init_params(&op->gn1, params + op->off_gn1);
            dm_conv_init_params(&op->conv1, params + op->off_conv1, rng);
            break;
        case OP_POOL:
            dm_gnorm_init_params(&op->gn1, params + op->off_gn1);
            dm_linear_init_params(op->cin, op->lin_out, params + op->off_lin, rng);
            break;
        default:
            dm_conv_init_params(&op->conv1, params + op->off_conv1, rng);
        }
    }
}

void dm_unet_ws_free(dm_net_ws *nws)
{
    unet_ws *w = nws->impl;
    if (!w)
        return;
    dm_embed_ws_free(&w->emb);
    dm_conv_ws_free(&w->conv);
    for (int k = 0; w->op && k < w->n_op; k++) {
        unet_op_ws *o = &w->op[k];
        dm_gnorm_ws_free(&o->gn1);
        dm_gnorm_ws_free(&o->gn2);
        dm_tproj_ws_free(&o->tp);
        dm_attn_ws_free(&o->at);
        dm_free_aligned(o->cat);
        dm_free_aligned(o->a1);
        dm_free_aligned(o->h1);
        dm_free_aligned(o->a2);
        dm_free_aligned(o->d2);
    }
    for (int k = 1; w->val && k < w->n_t; k++)
        if (k != w->last) /* the caller's out and dout */
            dm_free_aligned(w->val[k]);
    for (int k = 1; w->grad && k < w->n_t; k++)
        if (k != w->last)
            dm_free_aligned(w->grad[k]);
    dm_free(w->val);
    dm_free(w->grad);
    dm_free(w->op);
    dm_free(w->grad_set);
    dm_free_aligned(w->temb);
    dm_free_aligned(w->demb);
    dm_free_aligned(w->g1);
    dm_free_aligned(w->g2);
    dm_free_aligned(w->g3);
    dm_free_aligned(w->feat);
    dm_free_aligned(w->dfeat);
    dm_free(w);
    nws->impl = NULL;
}

static float *fbuf(size_t items, size_t per, int *ok)
{
    float *p = dm_malloc_aligned(sizeof(float) * items * per);
    if (!p)
        *ok = 0;
    return p;
}

dm_status dm_unet_ws_init(const dm_net *net, dm_net_ws *nws, int max_batch, char *err)
{
    const dm_unet *u = net->impl;
    const char *name = u->head == UNET_HEAD_POOL ? "cnn" : "unet";
    unet_ws *w = dm_calloc(1, sizeof *w);
    if (!w)
        return dm_err(err, DM_E_NOMEM, "%s: out of memory for a workspace", name);
    nws->impl = w;
    const size_t cap = (size_t)max_batch, T = (size_t)u->o.temb;
    w->cap = max_batch;
    w->n_op = u->n_ops;
    w->n_t = u->n_t;
    int ok = 1;
    w->val = dm_calloc((size_t)u->n_t, sizeof *w->val);
    w->grad = dm_calloc((size_t)u->n_t, sizeof *w->grad);
    w->grad_set = dm_calloc((size_t)u->n_t, sizeof *w->grad_set);
    w->op = dm_calloc((size_t)u->n_ops, sizeof *w->op);
    if (!w->val || !w->grad || !w->grad_set || !w->op)
        ok = 0;
    size_t big = 0;
    const int last = w->last = u->ops[u->n_ops - 1].out;
    for (int k = 1; ok && k < u->n_t; k++) {
        const size_t m = unet_numel(&u->t[k]);
        if (k != last) { /* the last tensor is the caller's out, its gradient the caller's dout */
            w->val[k] = fbuf(cap, m, &ok);
            w->grad[k] = fbuf(cap, m, &ok);
        }
    }
    dm_status st = DM_OK;
    const dm_conv *convs[3 * MAX_OPS];
    int nc = 0;
    for (int k = 0; ok && !st && k < u->n_ops; k++) {
        const unet_op *op = &u->ops[k];
        unet_op_ws *o = &w->op[k];
        const unet_tensor *ta = &u->t[op->a], *to = &u->t[op->out];
        const size_t hw = (size_t)to->h * (size_t)to->w, cin = (size_t)op->cin, co = (size_t)to->c;
        if (cin * (size_t)ta->h * (size_t)ta->w > big)
            big = cin * (size_t)ta->h * (size_t)ta->w;
        if (co * hw > big)
            big = co * hw;
        if (op->kind == OP_UP && cin * hw > big)
            big = cin * hw;
        convs[nc] = &op->conv1;
        nc += op->conv1.n_params > 0;
        convs[nc] = &op->conv2;
        nc += op->conv2.n_params > 0;
        convs[nc] = &op->skip;
        nc += op->skip.n_params > 0;
        switch (op->kind) {
        case OP_RES:
            if (op->b >= 0)
                o->cat = fbuf(cap, cin * hw, &ok);
            o->a1 = fbuf(cap, cin * hw, &ok);
            o->h1 = fbuf(cap, co * hw, &ok);
            o->a2 = fbuf(cap, co * hw, &ok);
            if (u->o.dropout > 0)
                o->d2 = fbuf(cap, co * hw, &ok);
            if (ok && !(st = dm_gnorm_ws_init(&o->gn1, &op->gn1, (int)hw, max_batch, err)) &&
                !(st = dm_gnorm_ws_init(&o->gn2, &op->gn2, (int)hw, max_batch, err)))
                st = dm_tproj_ws_init(&o->tp, &op->tp, max_batch, err);
            break;
        case OP_ATTN:
            if (ok)
                st = dm_attn_ws_init(&o->at, &op->at, (int)hw, max_batch, err);
            break;
        case OP_UP:
            o->a1 = fbuf(cap, cin * hw, &ok);
            break;
        case OP_OUT:
            o->a1 = fbuf(cap, cin * hw, &ok);
            if (ok)
                st = dm_gnorm_ws_init(&o->gn1, &op->gn1, (int)hw, max_batch, err);
            break;
        case OP_POOL: /* SiLU(GN(input)) goes to g1, the features to w->feat */
            w->feat_dim = op->cin;
            w->feat = fbuf(cap, cin, &ok);
            w->dfeat = fbuf(cap, cin, &ok);
            if (ok)
                st = dm_gnorm_ws_init(&o->gn1, &op->gn1, ta->h * ta->w, max_batch, err);
            break;
        default:
            break;
        }
    }
    if (ok && !st) {
        w->g1 = fbuf(cap, big, &ok);
        w->g2 = fbuf(cap, big, &ok);
        w->g3 = fbuf(cap, big, &ok);
        w->temb = fbuf(cap, T, &ok);
        w->demb = fbuf(cap, T, &ok);
    }
    if (ok && !st && !(st = dm_embed_ws_init(&w->emb, &u->emb, max_batch, err)))
        st = dm_conv_ws_init_shared(&w->conv, convs, nc, max_batch, err);
    if (!ok && !st)
        st = dm_err(err, DM_E_NOMEM, "%s: out of memory for the activations of a batch of %d", name, max_batch);
    if (st)
        dm_unet_ws_free(nws);
    return st;
}

void dm_unet_describe_levels(const dm_unet *u, char *chans, size_t n_chans, char *attn, size_t n_attn)
{
    size_t k = 0, j = 0;
    chans[0] = attn[0] = '\0';
    for (int l = 0; l < u->n_levels && k < n_chans; l++)
        k += (size_t)snprintf(chans + k, n_chans - k, "%s%d", l ? "," : "", u->level_c[l]);
    for (int i = 0; i < u->n_ops && j < n_attn; i++)
        if (u->ops[i].kind == OP_ATTN)
            j += (size_t)snprintf(attn + j, n_attn - j, "%s%d", j ? "," : "", u->t[u->ops[i].out].h);
}

static void unet_describe(const dm_net *net, char *buf, size_t size)
{
    const dm_unet *u = net->impl;
    char chans[128], attn[128];
    dm_unet_describe_levels(u, chans, sizeof chans, attn, sizeof attn);
    snprintf(buf, size, "unet %dx%dx%d (%d classes) out %d channels [%s] blocks %lld attn [%s] groups %lld "
             "temb %lld", net->cfg.c, net->cfg.h, net->cfg.w, net->cfg.n_classes, u->out_c, chans,
             (long long)u->o.blocks, attn, (long long)u->o.groups, (long long)u->o.temb);
}

void dm_unet_forward_batches(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                             const float *tin, const int32_t *y, float *out)
{
    const unet_ws *w = ws->impl;
    const size_t d = (size_t)net->cfg.dim, od = (size_t)net->cfg.out_dim;
    for (int i0 = 0; i0 < n; i0 += w->cap) {
        const int m = n - i0 < w->cap ? n - i0 : w->cap;
        dm_unet_forward(net, params, ws, m, x + (size_t)i0 * d, tin + i0, y ? y + i0 : NULL, out + (size_t)i0 * od);
    }
}

const dm_net_vt dm_net_unet = {
    .init = unet_init,
    .free = dm_unet_free_net,
    .init_params = dm_unet_init_params,
    .ws_init = dm_unet_ws_init,
    .ws_free = dm_unet_ws_free,
    .forward = dm_unet_forward_batches,
    .backward = dm_unet_backward,
    .describe = unet_describe,
    .features = NULL, /* no pooled features: the cnn (cnn.c) has them */
};
