#include "diffusion/denoiser_net.h"

#include "core/alloc.h"

static dm_status eval(void *ctx, size_t n, const float *x, const double *t, float *x0, float *eps,
                      char *err)
{
    dm_net_denoiser *nd = ctx;
    const size_t d = (size_t)nd->mlp->cfg.in_dim, fo = (size_t)nd->mlp->cfg.out_dim;
    (void)err;
    /* Rows of one sampler step share t: compute the coefficients once per distinct t. */
    double tc = 0.0;
    dm_param_coef c = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc) {
            tc = t[i];
            nd->param->coef(nd->param_opts, nd->sched->ops->alpha(nd->sched, tc),
                            nd->sched->ops->sigma(nd->sched, tc), nd->sigma_data, &c);
        }
        nd->tin[i] = (float)nd->sched->ops->c_noise(nd->sched, tc);
        for (size_t j = 0; j < d; j++)
            nd->xin[i * d + j] = (float)(c.c_in * x[i * d + j]);
    }
    dm_mlp_forward(nd->mlp, nd->params, &nd->ws, (int)n, nd->xin, nd->tin, nd->F);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i] != tc) {
            tc = t[i];
            nd->param->coef(nd->param_opts, nd->sched->ops->alpha(nd->sched, tc),
                            nd->sched->ops->sigma(nd->sched, tc), nd->sigma_data, &c);
        }
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

dm_status dm_net_denoiser_init(dm_net_denoiser *nd, dm_denoiser *den, const dm_mlp *mlp,
                               const float *params, const dm_schedule *sched,
                               const dm_param_ops *param, const void *param_opts,
                               double sigma_data, size_t max_batch, char *err)
{
    *nd = (dm_net_denoiser){ .mlp = mlp, .params = params, .sched = sched, .param = param,
                             .param_opts = param_opts, .sigma_data = sigma_data };
    dm_status st = dm_mlp_ws_init(&nd->ws, mlp, (int)max_batch, err);
    if (st)
        return st;
    nd->xin = dm_malloc_aligned(sizeof(float) * max_batch * (size_t)mlp->cfg.in_dim);
    nd->tin = dm_malloc_aligned(sizeof(float) * max_batch);
    nd->F = dm_malloc_aligned(sizeof(float) * max_batch * (size_t)mlp->cfg.out_dim);
    if (!nd->xin || !nd->tin || !nd->F) {
        dm_net_denoiser_free(nd);
        return dm_err(err, DM_E_NOMEM, "out of memory for a denoiser of batch %zu", max_batch);
    }
    *den = (dm_denoiser){ .ctx = nd, .dim = (size_t)mlp->cfg.in_dim, .max_batch = max_batch,
                          .eval = eval };
    return DM_OK;
}

void dm_net_denoiser_free(dm_net_denoiser *nd)
{
    dm_mlp_ws_free(&nd->ws);
    dm_free_aligned(nd->xin);
    dm_free_aligned(nd->tin);
    dm_free_aligned(nd->F);
    nd->xin = nd->tin = nd->F = NULL;
}
