#include "train/trainer_internal.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "diffusion/consistency.h"

static int max_points(const dm_trainer *tr)
{
    const dm_cm_loss_opts *o = tr->cm_opts;
    return tr->cm == DM_CM_KIND_CD ? (int)o->n : (int)o->s1 + 1;
}

int dm_cm_n_points(const dm_trainer *tr)
{
    const dm_cm_loss_opts *o = tr->cm_opts;
    const int64_t K = tr->topt->steps > 0 ? tr->topt->steps : 1;
    switch (tr->cm) {
    case DM_CM_KIND_CT:
        return dm_cm_ct_n_steps(tr->step, K, (int)o->s0, (int)o->s1);
    case DM_CM_KIND_ICT:
        return dm_cm_ict_n_steps(tr->step, K, (int)o->s0, (int)o->s1);
    default:
        return (int)o->n;
    }
}

double dm_cm_target_mu(const dm_trainer *tr)
{
    const dm_cm_loss_opts *o = tr->cm_opts;
    switch (tr->cm) {
    case DM_CM_KIND_CT:
        return dm_cm_ct_mu(dm_cm_n_points(tr), (int)o->s0, o->mu0);
    case DM_CM_KIND_CD:
        return o->mu0;
    default:
        return 0.0;
    }
}

dm_status dm_cm_init(dm_trainer *tr, char *err)
{
    const size_t B = (size_t)tr->topt->batch, d = tr->dim, fo = (size_t)tr->net.cfg.out_dim;
    const size_t np = tr->net.n_params, N = (size_t)max_points(tr);
    tr->cm_xs = dm_malloc_aligned(sizeof(float) * B * d);
    tr->cm_xt = dm_malloc_aligned(sizeof(float) * B * d);
    tr->cm_f = dm_malloc_aligned(sizeof(float) * B * d);
    tr->cm_tgt = dm_malloc_aligned(sizeof(float) * B * d);
    tr->cm_F2 = dm_malloc_aligned(sizeof(float) * B * fo);
    tr->cm_ts = dm_malloc(sizeof(double) * B);
    tr->cm_tt = dm_malloc(sizeof(double) * B);
    tr->cm_lambda = dm_malloc(sizeof(double) * B);
    tr->cm_cout = dm_malloc(sizeof(double) * B);
    tr->cm_grid = dm_malloc(sizeof(double) * N);
    tr->cm_p = dm_malloc(sizeof(double) * N);
    /* A target EMA exists for CT, and for CD with mu > 0; otherwise the target is the student. */
    const int ema_target = tr->cm == DM_CM_KIND_CT || (tr->cm == DM_CM_KIND_CD && tr->cm_opts->mu0 > 0);
    if (ema_target && (tr->target = dm_malloc_aligned(sizeof(float) * np)))
        memcpy(tr->target, tr->params, sizeof(float) * np);
    if (!tr->cm_xs || !tr->cm_xt || !tr->cm_f || !tr->cm_tgt || !tr->cm_F2 || !tr->cm_ts || !tr->cm_tt ||
        !tr->cm_lambda || !tr->cm_cout || !tr->cm_grid || !tr->cm_p || (ema_target && !tr->target))
        return dm_err(err, DM_E_NOMEM, "out of memory for consistency training at batch %zu", B);
    return DM_OK;
}

void dm_cm_free(dm_trainer *tr)
{
    dm_free_aligned(tr->cm_xs);
    dm_free_aligned(tr->cm_xt);
    dm_free_aligned(tr->cm_f);
    dm_free_aligned(tr->cm_tgt);
    dm_free_aligned(tr->cm_F2);
    dm_free_aligned(tr->target);
    dm_free(tr->cm_ts);
    dm_free(tr->cm_tt);
    dm_free(tr->cm_lambda);
    dm_free(tr->cm_cout);
    dm_free(tr->cm_grid);
    dm_free(tr->cm_p);
}

/* f(x, t) of n rows with the given weights into out (n, d); F gets the raw network output. The
 * coefficients of each row go to c_out (may be NULL). */
static void consistency_fn(dm_trainer *tr, const float *w, size_t n, const float *x, const double *t, float *F,
                           float *out, double *c_out)
{
    const size_t d = tr->dim, fo = (size_t)tr->net.cfg.out_dim;
    const dm_schedule *s = &tr->sched;
    for (size_t i = 0; i < n; i++) {
        dm_param_coef c;
        dm_param_coef_at(tr->param, tr->param_opts, s, t[i], tr->sigma_data, &c);
        tr->coef[i] = c;
        tr->tin[i] = (float)s->ops->c_noise(s, t[i]);
        for (size_t j = 0; j < d; j++)
            tr->xin[i * d + j] = (float)(c.c_in * x[i * d + j]);
    }
    dm_trainer_net_forward(tr, w, (int)n, tr->xin, tr->tin, NULL, F);
    for (size_t i = 0; i < n; i++) {
        const dm_param_coef *c = &tr->coef[i];
        if (c_out)
            c_out[i] = c->f_x0;
        for (size_t j = 0; j < d; j++)
            out[i * d + j] = c->f_x0 == 0.0 ? x[i * d + j]
                                            : (float)(c->x_x0 * x[i * d + j] + c->f_x0 * F[i * fo + j]);
    }
}

dm_status dm_cm_forward_loss(dm_trainer *tr, double *loss, char *err)
{
    const dm_cm_loss_opts *o = tr->cm_opts;
    const size_t B = (size_t)tr->topt->batch, d = tr->dim, nd = (size_t)tr->topt->n_data;
    const dm_schedule *s = &tr->sched;
    dm_status st;
    if (tr->cm == DM_CM_KIND_CD && !tr->teacher)
        return dm_err(err, DM_E_INPUT, "distill.teacher: consistency distillation has no teacher loaded");

    /* The grid and, for iCT, the index distribution of this step. */
    const int N = dm_cm_n_points(tr);
    dm_cm_karras_grid(N, s->t_min, s->t_max, o->rho, tr->cm_grid);
    if (tr->cm == DM_CM_KIND_ICT &&
        (st = dm_cm_ict_index_probs(N, tr->cm_grid, o->p_mean, o->p_std, tr->cm_p, err)))
        return st;

    /* Draws in a fixed order: indices of data, grid indices, noise (as the diffusion step). */
    for (size_t i = 0; i < B; i++) {
        size_t k = dm_rng_int(&tr->streams[0], nd);
        memcpy(tr->x0 + i * d, tr->train_x + k * d, sizeof(float) * d);
    }
    for (size_t i = 0; i < B; i++) {
        const int n = tr->cm == DM_CM_KIND_ICT ? dm_cm_sample_index(tr->cm_p, N - 1, dm_rng_uniform(&tr->streams[1]))
                                               : (int)dm_rng_int(&tr->streams[1], (unsigned long)(N - 1));
        tr->cm_tt[i] = tr->cm_grid[n];
        tr->cm_ts[i] = tr->cm_grid[n + 1];
        tr->cm_lambda[i] = tr->cm == DM_CM_KIND_ICT ? dm_cm_ict_weight(tr->cm_grid[n], tr->cm_grid[n + 1]) : 1.0;
    }
    for (size_t i = 0; i < B * d; i++)
        tr->eps[i] = (float)dm_rng_normal(&tr->streams[2]);
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            tr->cm_xs[q] = (float)(tr->x0[q] + tr->cm_ts[i] * tr->eps[q]);
            tr->cm_xt[q] = (float)(tr->x0[q] + tr->cm_tt[i] * tr->eps[q]);
        }
    /* The target and f buffers serve as the teacher's scratch: they are filled afterwards. */
    if (tr->cm == DM_CM_KIND_CD &&
        (st = dm_cm_teacher_step(tr->teacher, o->teacher_step == DM_CM_TEACHER_HEUN, B, tr->cm_xs, tr->cm_ts,
                                 tr->cm_tt, tr->cm_xt, tr->cm_tgt, tr->cm_f, err)))
        return st;

    /* The target first (no gradient), then the student, whose activations the backward uses. */
    consistency_fn(tr, tr->target ? tr->target : tr->params, B, tr->cm_xt, tr->cm_tt, tr->cm_F2, tr->cm_tgt, NULL);
    consistency_fn(tr, tr->params, B, tr->cm_xs, tr->cm_ts, tr->F, tr->cm_f, tr->cm_cout);
    *loss = dm_cm_loss_rows(o, B, d, (size_t)tr->net.cfg.out_dim, tr->cm_f, tr->cm_tgt, tr->cm_lambda, tr->cm_cout,
                            dm_cm_huber_c(d), tr->dF);
    return DM_OK;
}

void dm_cm_after_step(dm_trainer *tr)
{
    if (!tr->target)
        return;
    /* tr->step was already advanced: the rate of the step just taken. */
    tr->step--;
    const double mu = dm_cm_target_mu(tr);
    tr->step++;
    dm_ema_update(tr->target, tr->params, tr->net.n_params, mu);
}
