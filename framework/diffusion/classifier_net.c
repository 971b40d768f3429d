#include "diffusion/classifier_net.h"

#include <math.h>
#include <string.h>

#include "diffusion/denoiser.h"

#include "core/alloc.h"

void dm_log_softmax(size_t C, const float *logits, double *out)
{
    double mx = -INFINITY, s = 0.0;
    for (size_t k = 0; k < C; k++)
        if (logits[k] > mx)
            mx = logits[k];
    for (size_t k = 0; k < C; k++)
        s += exp((double)logits[k] - mx);
    const double lse = mx + log(s);
    for (size_t k = 0; k < C; k++)
        out[k] = (double)logits[k] - lse;
}

static dm_status eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, double *logp,
                      float *grad, char *err)
{
    dm_net_classifier *nc = ctx;
    const size_t d = (size_t)nc->net->cfg.dim, C = (size_t)nc->net->cfg.out_dim;
    double tc = 0.0, lsm[256];
    if (C > 256)
        return dm_err(err, DM_E_INPUT, "classifier: at most 256 classes");
    for (size_t i = 0; i < n; i++) {
        if (y[i] != DM_NULL_CLASS && (y[i] < 0 || (size_t)y[i] >= C))
            return dm_err(err, DM_E_INPUT, "classifier: class %d is not one of its %zu classes", (int)y[i], C);
        if (nc->clean) {
            nc->cin[i] = 1.0;
            nc->tin[i] = 0.0f;
            memcpy(nc->xin + i * d, x + i * d, sizeof(float) * d);
            continue;
        }
        if (i == 0 || t[i] != tc) {
            dm_param_coef c;
            dm_param_coef_at(nc->param, nc->param_opts, nc->sched, tc = t[i], nc->sigma_data, &c);
            nc->cin[i] = c.c_in;
        } else {
            nc->cin[i] = nc->cin[i - 1];
        }
        nc->tin[i] = (float)nc->sched->ops->c_noise(nc->sched, tc);
        for (size_t j = 0; j < d; j++)
            nc->xin[i * d + j] = (float)(nc->cin[i] * x[i * d + j]);
    }
    dm_net_forward(nc->net, nc->params, &nc->ws, (int)n, nc->xin, nc->tin, NULL, nc->F);
    for (size_t i = 0; i < n; i++) {
        dm_log_softmax(C, nc->F + i * C, lsm);
        const int nul = y[i] == DM_NULL_CLASS;
        if (logp)
            logp[i] = nul ? 0.0 : lsm[y[i]];
        /* d log_softmax_y / d F_k = [k = y] - softmax_k */
        for (size_t k = 0; k < C; k++)
            nc->dout[i * C + k] = nul ? 0.0f : (float)(((size_t)y[i] == k ? 1.0 : 0.0) - exp(lsm[k]));
    }
    if (!grad)
        return DM_OK;
    dm_net_backward(nc->net, nc->params, &nc->ws, (int)n, nc->dout, nc->grads, nc->dxin);
    for (size_t i = 0; i < n; i++)   /* d log p / dx = c_in d log p / d xin */
        for (size_t j = 0; j < d; j++)
            grad[i * d + j] = (float)(nc->cin[i] * nc->dxin[i * d + j]);
    return DM_OK;
}

dm_status dm_net_classifier_init(dm_net_classifier *nc, dm_classifier *clf, const dm_net *net, const float *params,
                                 const dm_schedule *sched, const dm_param_ops *param, const void *param_opts,
                                 double sigma_data, size_t max_batch, char *err)
{
    if (net->batch_cap && max_batch > net->batch_cap) /* the network's activations: callers batch by max_batch */
        max_batch = net->batch_cap;
    *nc = (dm_net_classifier){ .net = net, .params = params, .sched = sched, .param = param,
                               .param_opts = param_opts, .sigma_data = sigma_data };
    dm_status st = dm_net_ws_init(net, &nc->ws, (int)max_batch, err);
    if (st)
        return st;
    const size_t d = (size_t)net->cfg.dim, C = (size_t)net->cfg.out_dim;
    nc->xin = dm_malloc_aligned(sizeof(float) * max_batch * d);
    nc->tin = dm_malloc_aligned(sizeof(float) * max_batch);
    nc->F = dm_malloc_aligned(sizeof(float) * max_batch * C);
    nc->dout = dm_malloc_aligned(sizeof(float) * max_batch * C);
    nc->dxin = dm_malloc_aligned(sizeof(float) * max_batch * d);
    nc->grads = dm_malloc_aligned(sizeof(float) * net->n_params);
    nc->cin = dm_malloc(sizeof(double) * max_batch);
    if (!nc->xin || !nc->tin || !nc->F || !nc->dout || !nc->dxin || !nc->grads || !nc->cin) {
        dm_net_classifier_free(nc);
        return dm_err(err, DM_E_NOMEM, "out of memory for a classifier of batch %zu", max_batch);
    }
    *clf = (dm_classifier){ .ctx = nc, .dim = d, .n_classes = C, .max_batch = max_batch, .eval = eval };
    return DM_OK;
}

void dm_net_classifier_free(dm_net_classifier *nc)
{
    dm_net_ws_free(nc->net, &nc->ws);
    dm_free_aligned(nc->xin);
    dm_free_aligned(nc->tin);
    dm_free_aligned(nc->F);
    dm_free_aligned(nc->dout);
    dm_free_aligned(nc->dxin);
    dm_free_aligned(nc->grads);
    dm_free(nc->cin);
    nc->xin = nc->tin = nc->F = nc->dout = nc->dxin = nc->grads = NULL;
    nc->cin = NULL;
}
