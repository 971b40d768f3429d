#include "diffusion/denoiser_net.h"

#include "core/alloc.h"

_Static_assert((int)DM_NULL_CLASS == (int)DM_NET_NULL_CLASS, "the null class of denoisers and networks differ");

/* The parameterization's coefficients at time t. Rows of one sampler step share t, so callers
 * recompute them only when t changes. */
static void row_coef(const dm_net_denoiser *nd, double t, dm_param_coef *c)
{
    dm_param_coef_at(nd->param, nd->param_opts, nd->sched, t, nd->sigma_data, c);
}

/* The network's input c_in x and c_noise(t) for n rows (labels go to the network as they are),
 * and one forward pass into nd->F. */
static void forward(dm_net_denoiser *nd, size_t n, const float *x, const double *t, const int32_t *y)
{
    const size_t d = nd->dim;
    double tc = 0.0;
    dm_param_coef c = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc)
            row_coef(nd, tc = t[i], &c);
        nd->tin[i] = (float)nd->sched->ops->c_noise(nd->sched, tc);
        for (size_t j = 0; j < d; j++)
            nd->xin[i * d + j] = (float)(c.c_in * x[i * d + j]);
    }
    dm_net_forward(nd->net, nd->params, &nd->ws, (int)n, nd->xin, nd->tin, nd->n_classes > 0 ? y : NULL, nd->F);
}

static dm_status check_labels(const dm_net_denoiser *nd, size_t n, const int32_t *y, char *err)
{
    for (size_t i = 0; y && nd->n_classes > 0 && i < n; i++)
        if (y[i] != DM_NULL_CLASS && (y[i] < 0 || y[i] >= nd->n_classes))
            return dm_err(err, DM_E_INPUT, "denoiser: class %d is not one of the network's %d classes", (int)y[i],
                          nd->n_classes);
    return DM_OK;
}

static dm_status eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                      float *eps, char *err)
{
    dm_net_denoiser *nd = ctx;
    const size_t d = nd->dim, fo = (size_t)nd->net->cfg.out_dim;
    dm_status st = check_labels(nd, n, y, err);
    if (st)
        return st;
    forward(nd, n, x, t, y);
    double tc = 0.0;
    dm_param_coef c = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc)
            row_coef(nd, tc = t[i], &c);
        for (size_t j = 0; j < d; j++) {
            const double xv = x[i * d + j], fv = nd->F[i * fo + j];
            if (x0)
                x0[i * d + j] = (float)(c.x_x0 * xv + c.f_x0 * fv);
            if (eps)
                eps[i * d + j] = (float)(c.x_eps * xv + c.f_eps * fv);
        }
    }
    return DM_OK;
}

/* eval, plus the learned variance fraction v = (F_var + 1)/2 of a network with 2 d outputs (the
 * second half; improved-diffusion's model_var_values, not clamped). */
static dm_status eval_var(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                          float *eps, float *v, char *err)
{
    dm_net_denoiser *nd = ctx;
    const size_t d = nd->dim, fo = (size_t)nd->net->cfg.out_dim;
    dm_status st = eval(ctx, n, x, t, y, x0, eps, err);
    for (size_t i = 0; i < n && !st; i++)
        for (size_t j = 0; j < d; j++)
            v[i * d + j] = 0.5f * (nd->F[i * fo + d + j] + 1.0f);
    return st;
}

/* x0_hat and its exact divergence (denoiser.h eval_div). With x0_hat_j = x_x0 x_j +
 * f_x0 F_j(c_in x) (param.h; the coefficients depend only on the row's t),
 *   d x0_hat_j / d x_j = x_x0 + f_x0 c_in (d F_j / d xin_j),
 * so div = d x_x0 + f_x0 c_in tr(dF/dxin). The trace comes from dim vector-Jacobian products
 * after one forward: a backward with the cotangent e_j in every row gives row i's
 * e_j^T dF/dxin, whose j-th entry is the diagonal element (rows do not interact). That is exact
 * (up to float rounding), unlike Hutchinson's estimate zᵀ(dF/dx)z, at dim backward passes —
 * cheap for the toy data's dim = 2. The parameter gradients the backward also forms go to a
 * scratch block and are dropped. */
static dm_status eval_div(void *ctx, size_t n, const float *x, const double *t, float *x0, double *div,
                          char *err)
{
    dm_net_denoiser *nd = ctx;
    const size_t d = nd->dim, fo = (size_t)nd->net->cfg.out_dim;
    (void)err;
    forward(nd, n, x, t, NULL);
    if (div) {
        for (size_t i = 0; i < n; i++)
            div[i] = 0.0;
        for (size_t q = 0; q < n * fo; q++)
            nd->dout[q] = 0.0f;
        for (size_t j = 0; j < d; j++) {
            for (size_t i = 0; i < n; i++)
                nd->dout[i * fo + j] = 1.0f;
            dm_net_backward(nd->net, nd->params, &nd->ws, (int)n, nd->dout, nd->grads, nd->dxin);
            for (size_t i = 0; i < n; i++) {
                div[i] += nd->dxin[i * d + j];
                nd->dout[i * fo + j] = 0.0f;
            }
        }
    }
    double tc = 0.0;
    dm_param_coef c = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc)
            row_coef(nd, tc = t[i], &c);
        for (size_t j = 0; j < d && x0; j++)
            x0[i * d + j] = (float)(c.x_x0 * x[i * d + j] + c.f_x0 * nd->F[i * fo + j]);
        if (div)
            div[i] = (double)d * c.x_x0 + c.f_x0 * c.c_in * div[i];
    }
    return DM_OK;
}

/* x0_hat and the Hutchinson quadratic form zᵀ (∂x0_hat/∂x) z of each row for the probe z
 * (denoiser.h eval_hutch). By the chain rule of eval_div, ∂x0_hat/∂x = x_x0 I + f_x0 c_in dF/dxin,
 * so
 *   zᵀ (∂x0_hat/∂x) z = x_x0 |z|² + f_x0 c_in zᵀ (dF/dxin) z.
 * One backward after the forward, with the cotangent z in the first dim output columns of every
 * row (zero in the learned-variance half of a 2 dim output, which x0_hat does not use), gives row
 * i's vector-Jacobian product z_iᵀ dF/dxin; its dot product with z_i is the quadratic form (the
 * vjp form of score_sde_pytorch likelihood.py get_div_fn: sum(grad(sum(fn * eps)) * eps)). */
static dm_status eval_hutch(void *ctx, size_t n, const float *x, const double *t, const float *z,
                            float *x0, double *zjz, char *err)
{
    dm_net_denoiser *nd = ctx;
    const size_t d = nd->dim, fo = (size_t)nd->net->cfg.out_dim;
    (void)err;
    forward(nd, n, x, t, NULL);
    if (zjz) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < fo; j++)
                nd->dout[i * fo + j] = j < d ? z[i * d + j] : 0.0f;
        dm_net_backward(nd->net, nd->params, &nd->ws, (int)n, nd->dout, nd->grads, nd->dxin);
    }
    double tc = 0.0;
    dm_param_coef c = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc)
            row_coef(nd, tc = t[i], &c);
        for (size_t j = 0; j < d && x0; j++)
            x0[i * d + j] = (float)(c.x_x0 * x[i * d + j] + c.f_x0 * nd->F[i * fo + j]);
        if (zjz) {
            double zz = 0.0, zjfz = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double zj = z[i * d + j];
                zz += zj * zj;
                zjfz += zj * nd->dxin[i * d + j];
            }
            zjz[i] = c.x_x0 * zz + c.f_x0 * c.c_in * zjfz;
        }
    }
    return DM_OK;
}

dm_status dm_net_denoiser_init(dm_net_denoiser *nd, dm_denoiser *den, const dm_net *net,
                               const float *params, const dm_schedule *sched,
                               const dm_param_ops *param, const void *param_opts,
                               double sigma_data, size_t max_batch, char *err)
{
    if (net->batch_cap && max_batch > net->batch_cap) /* the network's activations: callers batch by max_batch */
        max_batch = net->batch_cap;
    const size_t d = (size_t)net->cfg.dim, fo = (size_t)net->cfg.out_dim;
    *nd = (dm_net_denoiser){ .net = net, .params = params, .sched = sched, .param = param,
                             .param_opts = param_opts, .sigma_data = sigma_data, .dim = d,
                             .n_classes = net->cfg.n_classes };
    dm_status st = dm_net_ws_init(net, &nd->ws, (int)max_batch, err);
    if (st)
        return st;
    nd->xin = dm_malloc_aligned(sizeof(float) * max_batch * d);
    nd->tin = dm_malloc_aligned(sizeof(float) * max_batch);
    nd->F = dm_malloc_aligned(sizeof(float) * max_batch * fo);
    nd->dout = dm_malloc_aligned(sizeof(float) * max_batch * fo);
    nd->dxin = dm_malloc_aligned(sizeof(float) * max_batch * d);
    nd->grads = dm_malloc_aligned(sizeof(float) * net->n_params);
    if (!nd->xin || !nd->tin || !nd->F || !nd->dout || !nd->dxin || !nd->grads) {
        dm_net_denoiser_free(nd);
        return dm_err(err, DM_E_NOMEM, "out of memory for a denoiser of batch %zu", max_batch);
    }
    *den = (dm_denoiser){ .ctx = nd, .dim = d, .max_batch = max_batch,
                          .eval = eval, .eval_div = eval_div,
                          .eval_hutch = eval_hutch, .eval_var = fo == 2 * d ? eval_var : NULL };
    return DM_OK;
}

void dm_net_denoiser_free(dm_net_denoiser *nd)
{
    dm_net_ws_free(nd->net, &nd->ws);
    dm_free_aligned(nd->xin);
    dm_free_aligned(nd->tin);
    dm_free_aligned(nd->F);
    dm_free_aligned(nd->dout);
    dm_free_aligned(nd->dxin);
    dm_free_aligned(nd->grads);
    nd->xin = nd->tin = nd->F = nd->dout = nd->dxin = nd->grads = NULL;
}
