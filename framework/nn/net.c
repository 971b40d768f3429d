/* net.c — building and freeing a network of any model (net.h). */
#include "nn/net.h"

#include <limits.h>
#include <string.h>

dm_status dm_net_init(dm_net *net, const dm_net_vt *vt, const void *opts, const dm_net_cfg *cfg, char *err)
{
    memset(net, 0, sizeof *net);
    if (!vt)
        return dm_err(err, DM_E_INPUT, "model: this model has no network (analytic)");
    if (cfg->dim < 1 || cfg->c < 1 || cfg->h < 1 || cfg->w < 1 || cfg->out_dim < 1 || cfg->n_classes < 0 ||
        (long long)cfg->c * cfg->h * cfg->w != cfg->dim)
        return dm_err(err, DM_E_INPUT, "model: bad data shape %dx%dx%d for dimension %d (%d outputs, %d classes)",
                      cfg->c, cfg->h, cfg->w, cfg->dim, cfg->out_dim, cfg->n_classes);
    net->vt = vt;
    net->cfg = *cfg;
    dm_status st = vt->init(net, opts, err);
    if (st)
        memset(net, 0, sizeof *net);
    return st;
}

void dm_net_free(dm_net *net)
{
    if (net && net->vt)
        net->vt->free(net);
    if (net)
        memset(net, 0, sizeof *net);
}

dm_status dm_net_ws_init(const dm_net *net, dm_net_ws *ws, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "model: batch %d out of range", max_batch);
    ws->max_batch = max_batch;
    dm_status st = net->vt->ws_init(net, ws, max_batch, err);
    if (st)
        memset(ws, 0, sizeof *ws);
    return st;
}

void dm_net_ws_free(const dm_net *net, dm_net_ws *ws)
{
    if (net && net->vt && ws && ws->impl)
        net->vt->ws_free(ws);
    if (ws)
        memset(ws, 0, sizeof *ws);
}
