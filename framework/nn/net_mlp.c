/* net_mlp.c — the toy MLP (nn/mlp.h) as a network (nn/net.h).
 *
 * A conditional MLP takes the label as input columns: its input row is [x, onehot(y)] with
 * n_classes + 1 one-hot columns, the last the null class — a learned class embedding added to the
 * first layer's pre-activation (its column of W_0). The row is built here, in the workspace. */
#include "nn/net_mlp.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/mlp.h"

typedef struct mlp_ws {
    dm_mlp_ws ws;
    float *xin;   /* (max_batch, in_dim) [x, onehot(y)] of a conditional MLP; else NULL */
    float *dxin;  /* (max_batch, in_dim) its input gradient; else NULL */
} mlp_ws;

static int in_dim(const dm_net_cfg *c)
{
    return c->dim + (c->n_classes > 0 ? c->n_classes + 1 : 0);
}

static dm_status mlp_init(dm_net *net, const void *opts, char *err)
{
    const dm_mlp_opts *o = opts;
    dm_mlp *m = dm_calloc(1, sizeof *m);
    if (!m)
        return dm_err(err, DM_E_NOMEM, "mlp: out of memory for the network's description");
    const dm_mlp_cfg cfg = { .in_dim = in_dim(&net->cfg), .out_dim = net->cfg.out_dim, .nfreq = (int)o->nfreq,
                             .width = (int)o->width, .depth = (int)o->depth };
    dm_status st = dm_mlp_init(m, &cfg, err);
    if (st) {
        dm_free(m);
        return st;
    }
    net->impl = m;
    net->n_params = m->n_params;
    return DM_OK;
}

static void mlp_free(dm_net *net)
{
    dm_mlp_free(net->impl);
    dm_free(net->impl);
    net->impl = NULL;
}

static void mlp_init_params(const dm_net *net, float *params, dm_rng *rng)
{
    dm_mlp_init_params(net->impl, params, rng);
}

static void mlp_ws_free(dm_net_ws *ws)
{
    mlp_ws *w = ws->impl;
    dm_mlp_ws_free(&w->ws);
    dm_free_aligned(w->xin);
    dm_free_aligned(w->dxin);
    dm_free(w);
    ws->impl = NULL;
}

static dm_status mlp_ws_init(const dm_net *net, dm_net_ws *ws, int max_batch, char *err)
{
    const dm_mlp *m = net->impl;
    mlp_ws *w = dm_calloc(1, sizeof *w);
    if (!w)
        return dm_err(err, DM_E_NOMEM, "mlp: out of memory for the workspace of a batch of %d", max_batch);
    ws->impl = w;
    dm_status st = dm_mlp_ws_init(&w->ws, m, max_batch, err);
    if (!st && net->cfg.n_classes > 0) {
        const size_t nb = sizeof(float) * (size_t)max_batch * (size_t)m->cfg.in_dim;
        w->xin = dm_malloc_aligned(nb);
        w->dxin = dm_malloc_aligned(nb);
        if (!w->xin || !w->dxin)
            st = dm_err(err, DM_E_NOMEM, "mlp: out of memory for the label input columns of a batch of %d", max_batch);
    }
    if (st)
        mlp_ws_free(ws);
    return st;
}

static void mlp_forward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *x,
                        const float *tin, const int32_t *y, float *out)
{
    const dm_mlp *m = net->impl;
    mlp_ws *w = ws->impl;
    const int C = net->cfg.n_classes;
    if (C == 0) {
        dm_mlp_forward(m, params, &w->ws, n, x, tin, out);
        return;
    }
    const size_t d = (size_t)net->cfg.dim, din = (size_t)m->cfg.in_dim;
    for (size_t i = 0; i < (size_t)n; i++) {
        float *row = w->xin + i * din;
        memcpy(row, x + i * d, sizeof(float) * d);
        memset(row + d, 0, sizeof(float) * (size_t)(C + 1));
        const int32_t yi = y ? y[i] : DM_NET_NULL_CLASS;
        row[d + (size_t)(yi == DM_NET_NULL_CLASS ? C : yi)] = 1.0f;
    }
    dm_mlp_forward(m, params, &w->ws, n, w->xin, tin, out);
}

static void mlp_backward(const dm_net *net, const float *params, dm_net_ws *ws, int n, const float *dout,
                         float *grads, float *dx)
{
    const dm_mlp *m = net->impl;
    mlp_ws *w = ws->impl;
    if (!dx || net->cfg.n_classes == 0) {
        dm_mlp_backward(m, params, &w->ws, n, dout, grads, dx);
        return;
    }
    dm_mlp_backward(m, params, &w->ws, n, dout, grads, w->dxin);
    const size_t d = (size_t)net->cfg.dim, din = (size_t)m->cfg.in_dim;
    for (size_t i = 0; i < (size_t)n; i++)
        memcpy(dx + i * d, w->dxin + i * din, sizeof(float) * d);
}

static void mlp_describe(const dm_net *net, char *buf, size_t size)
{
    const dm_mlp_cfg *c = &((const dm_mlp *)net->impl)->cfg;
    snprintf(buf, size, "mlp in %d (%d classes) out %d width %d depth %d nfreq %d", net->cfg.dim,
             net->cfg.n_classes, c->out_dim, c->width, c->depth, c->nfreq);
}

const dm_net_vt dm_net_mlp = {
    .init = mlp_init,
    .free = mlp_free,
    .init_params = mlp_init_params,
    .ws_init = mlp_ws_init,
    .ws_free = mlp_ws_free,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .describe = mlp_describe,
};

dm_status dm_net_mlp_new(dm_net *net, int dim, int out_dim, int n_classes, int width, int depth, int nfreq,
                         char *err)
{
    const dm_mlp_opts o = { .width = width, .depth = depth, .nfreq = nfreq, .conditional = n_classes > 0 };
    const dm_net_cfg cfg = { .dim = dim, .c = dim, .h = 1, .w = 1, .out_dim = out_dim, .n_classes = n_classes };
    return dm_net_init(net, &dm_net_mlp, &o, &cfg, err);
}
