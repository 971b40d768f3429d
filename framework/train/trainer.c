#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "diffusion/samplers.h"
#include "nn/model.h"
#include "train/trainer_internal.h"

static const char *const stream_names[DM_TRAIN_N_STREAMS] = { "train.batch", "train.t", "train.noise" };

static dm_status gen_data(const dm_trainer *tr, uint64_t seed, const char *stream, dm_data_split split,
                          size_t n, float **out, int32_t **labels, char *err)
{
    dm_rng rng = { 0 };
    dm_status st = dm_rng_init(&rng, dm_seed_derive(seed, stream), err);
    if (st)
        return st;
    *out = dm_malloc_aligned(sizeof(float) * n * tr->dim);
    *labels = dm_malloc(sizeof(int32_t) * n);
    if (!*out || !*labels) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for %zu data points", n);
        goto out;
    }
    st = tr->data->generate(tr->data_opts, split, n, &rng, *out, *labels, err);
out:
    dm_rng_free(&rng);
    return st;
}

static double data_std(const float *x, size_t n)
{
    double s = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    const double mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        s2 += (x[i] - mean) * (x[i] - mean);
    return sqrt(s2 / (double)n);
}

void dm_trainer_net_cfg(const dm_spec *spec, dm_net_cfg *cfg)
{
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const void *dopts = dm_spec_opts(spec, "data");
    const dm_loss_ops *lo = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    const void *lopts = dm_spec_opts(spec, "diffusion.loss");
    const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(spec, "model");
    const int dim = (int)da->dim(dopts), C = (int)da->n_classes(dopts);
    memset(cfg, 0, sizeof *cfg);
    cfg->dim = dim;
    dm_data_shape(da, dopts, &cfg->c, &cfg->h, &cfg->w);
    cfg->out_dim = lo->classifier ? C : dim * (dm_loss_variance(lo, lopts) == DM_VAR_LEARNED ? 2 : 1);
    cfg->n_classes = mo->conditional(dm_spec_opts(spec, "model")) ? C : 0;
}

/* The network, its optimizer state and the training streams. On failure the caller frees. */
static dm_status init_network(dm_trainer *tr, const dm_model_ops *model, uint64_t seed, char *err)
{
    dm_status st;
    dm_net_cfg cfg;
    dm_trainer_net_cfg(tr->spec, &cfg);
    const int out_dim = cfg.out_dim;
    if ((st = dm_net_init(&tr->net, model->net, dm_spec_opts(tr->spec, "model"), &cfg, err)))
        return st;
    const size_t np = tr->net.n_params, B = (size_t)tr->topt->batch, d = tr->dim;
    tr->params = dm_malloc_aligned(sizeof(float) * np);
    tr->grads = dm_malloc_aligned(sizeof(float) * np);
    tr->ema = dm_malloc_aligned(sizeof(float) * np);
    tr->x0 = dm_malloc_aligned(sizeof(float) * B * d);
    tr->eps = dm_malloc_aligned(sizeof(float) * B * d);
    tr->xt = dm_malloc_aligned(sizeof(float) * B * d);
    tr->xin = dm_malloc_aligned(sizeof(float) * B * d);
    tr->y = dm_malloc(sizeof(int32_t) * B);
    tr->tin = dm_malloc_aligned(sizeof(float) * B);
    tr->F = dm_malloc_aligned(sizeof(float) * B * (size_t)out_dim);
    tr->dF = dm_malloc_aligned(sizeof(float) * B * (size_t)out_dim);
    tr->t = dm_malloc(sizeof(double) * B);
    tr->alpha = dm_malloc(sizeof(double) * B);
    tr->sigma = dm_malloc(sizeof(double) * B);
    tr->w = dm_malloc(sizeof(double) * B);
    tr->row_loss = dm_malloc(sizeof(double) * B);
    tr->coef = dm_malloc(sizeof(dm_param_coef) * B);
    if (!tr->params || !tr->grads || !tr->ema || !tr->x0 || !tr->eps || !tr->xt || !tr->xin || !tr->y ||
        !tr->tin || !tr->F || !tr->dF || !tr->t || !tr->alpha || !tr->sigma || !tr->w || !tr->row_loss || !tr->coef)
        return dm_err(err, DM_E_NOMEM, "out of memory for a model of %zu parameters at batch %zu", np, B);
    if (tr->importance_t && (st = dm_tsampler_init(&tr->tsampler, tr->sched.T, err)))
        return st;
    if ((st = dm_net_ws_init(&tr->net, &tr->ws, (int)B, err)))
        return st;
    const dm_train_opts *to = tr->topt;
    if ((st = dm_adam_init(&tr->adam, np, to->lr, to->beta1, to->beta2, to->eps,
                           to->optimizer == DM_OPTIM_ADAMW ? to->weight_decay : 0.0, err)))
        return st;

    dm_rng init_rng = { 0 };
    uint64_t init_seed = dm_seed_derive(seed, "model.init");
    if ((st = dm_rng_init(&init_rng, init_seed, err)))
        return st;
    dm_net_init_params(&tr->net, tr->params, &init_rng);
    dm_rng_free(&init_rng);
    memcpy(tr->ema, tr->params, sizeof(float) * np);

    for (int k = 0; k < DM_TRAIN_N_STREAMS; k++)
        if ((st = dm_rng_init(&tr->streams[k], dm_seed_derive(seed, stream_names[k]), err)))
            return st;
    tr->dropout_seed = dm_seed_derive(seed, "train.dropout");
    return DM_OK;
}

dm_status dm_trainer_init(dm_trainer *tr, const dm_spec *spec, dm_runrec *rec, char *err)
{
    dm_status st;
    memset(tr, 0, sizeof *tr);
    tr->spec = spec;
    tr->root = dm_spec_opts(spec, "");
    tr->topt = dm_spec_opts(spec, "train");
    tr->eopt = dm_spec_opts(spec, "eval");
    tr->ropt = dm_spec_opts(spec, "run");
    tr->data = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    tr->data_opts = dm_spec_opts(spec, "data");
    tr->param = (const dm_param_ops *)dm_spec_plugin(spec, "diffusion.param");
    tr->param_opts = dm_spec_opts(spec, "diffusion.param");
    tr->loss = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    tr->loss_opts = dm_spec_opts(spec, "diffusion.loss");
    tr->sampler = (const dm_sampler_ops *)dm_spec_plugin(spec, "sampler");
    tr->sampler_opts = dm_spec_opts(spec, "sampler");
    const dm_model_ops *model = (const dm_model_ops *)dm_spec_plugin(spec, "model");
    const uint64_t seed = (uint64_t)tr->root->seed;
    tr->loss_variance = dm_loss_variance(tr->loss, tr->loss_opts);
    tr->cm = tr->loss->consistency;
    tr->cm_opts = tr->cm ? tr->loss_opts : NULL;
    tr->importance_t = dm_loss_importance_t(tr->loss, tr->loss_opts);
    tr->clean = dm_loss_clean(tr->loss, tr->loss_opts);
    tr->classifier = tr->loss->classifier;
    tr->conditional = model->conditional(dm_spec_opts(spec, "model"));
    tr->guidance = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    tr->guidance_opts = dm_spec_opts(spec, "guidance");

    if ((st = dm_schedule_init(&tr->sched, (const dm_schedule_ops *)dm_spec_plugin(spec, "diffusion.schedule"),
                               dm_spec_opts(spec, "diffusion.schedule"), err)))
        return st;

    /* Data: the training set from the run's seed, the reference set from eval.seed alone. */
    tr->dim = tr->data->dim(tr->data_opts);
    dm_data_shape(tr->data, tr->data_opts, &tr->shape[0], &tr->shape[1], &tr->shape[2]);
    tr->n_classes = tr->data->n_classes(tr->data_opts);
    const size_t nd = (size_t)tr->topt->n_data, nr = (size_t)tr->eopt->n_ref;
    if ((st = gen_data(tr, seed, "data.train", DM_DATA_TRAIN, nd, &tr->train_x, &tr->train_y, err)))
        goto fail;
    if ((st = gen_data(tr, (uint64_t)tr->eopt->seed, "data.ref", DM_DATA_TEST, nr, &tr->ref_x, &tr->ref_y, err)))
        goto fail;
    /* The run's one sigma_data: the parameterization's option if it sets one, else measured. */
    tr->data_std = data_std(tr->train_x, nd * tr->dim);
    const double configured = tr->param->sigma_data ? tr->param->sigma_data(tr->param_opts) : 0.0;
    tr->sigma_data = configured > 0 ? configured : tr->data_std;
    dm_sha256_hex(tr->train_x, sizeof(float) * nd * tr->dim, tr->data_sha256);

    /* The mixture: for the analytic model, and for guidance by the mixture's exact classifier. */
    const dm_classifier_guidance_opts *cg = tr->guidance_opts;
    const int analytic_clf = tr->guidance->kind == DM_GUIDE_CLASSIFIER && strcmp(cg->classifier, "analytic") == 0;
    if ((model->analytic || analytic_clf) && (st = dm_data_gmm(tr->data, tr->data_opts, &tr->gmm, err)))
        goto fail;
    if (analytic_clf) {
        dm_gmm_classifier_init(&tr->clf_gd, &tr->clf_gmm, &tr->gmm, &tr->sched, (size_t)tr->eopt->batch);
        tr->guide_clf = &tr->clf_gmm;
        snprintf(tr->guide_clf_id, sizeof tr->guide_clf_id, "analytic");
    }
    tr->analytic = model->analytic;
    if (!tr->analytic && ((st = init_network(tr, model, seed, err)) || (tr->cm && (st = dm_cm_init(tr, err)))))
        goto fail;
    /* CD from the mixture's exact denoiser needs no teacher run. */
    const dm_distill_opts *dist = dm_spec_opts(spec, "distill");
    if (tr->cm == DM_CM_KIND_CD && strcmp(dist->teacher, "analytic") == 0) {
        if (!tr->gmm.k && (st = dm_data_gmm(tr->data, tr->data_opts, &tr->gmm, err)))
            goto fail;
        tr->analytic_teacher = 1;
        dm_gmm_denoiser_init(&tr->teacher_gd, &tr->teacher_gden, &tr->gmm, &tr->sched, (size_t)tr->topt->batch);
        tr->teacher = &tr->teacher_gden;
    }

    /* Provenance of the randomness and the data. */
    if (rec) {
        rec->seed = seed;
        const char *named[] = { "data.train", "model.init", "train.batch", "train.t", "train.noise", "eval.noise" };
        for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
            if ((st = dm_runrec_add_seed(rec, named[k], dm_seed_derive(seed, named[k]), err)))
                goto fail;
        if ((st = dm_runrec_add_seed(rec, "data.ref", dm_seed_derive((uint64_t)tr->eopt->seed, "data.ref"), err)))
            goto fail;
        dm_free(rec->data_name);
        if (!(rec->data_name = dm_strdup(tr->data->info.name))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory recording the data set's name");
            goto fail;
        }
        rec->data_n_train = (int64_t)nd;
        rec->data_n_test = (int64_t)nr;
        rec->data_dim = (int64_t)tr->dim;
        rec->data_c = tr->shape[0];
        rec->data_h = tr->shape[1];
        rec->data_w = tr->shape[2];
        rec->data_std = tr->data_std;
        memcpy(rec->data_sha256, tr->data_sha256, 65);
    }
    return DM_OK;
fail:
    dm_trainer_free(tr);
    return st;
}

void dm_trainer_free(dm_trainer *tr)
{
    dm_schedule_free(&tr->sched);
    dm_gmm_free(&tr->gmm);
    if (tr->cm)
        dm_cm_free(tr);
    dm_free_aligned(tr->train_x);
    dm_free_aligned(tr->ref_x);
    dm_free(tr->train_y);
    dm_free(tr->ref_y);
    dm_free(tr->y);
    dm_free_aligned(tr->params);
    dm_free_aligned(tr->grads);
    dm_free_aligned(tr->ema);
    dm_free_aligned(tr->x0);
    dm_free_aligned(tr->eps);
    dm_free_aligned(tr->xt);
    dm_free_aligned(tr->xin);
    dm_free_aligned(tr->tin);
    dm_free_aligned(tr->F);
    dm_free_aligned(tr->dF);
    dm_free(tr->t);
    dm_free(tr->alpha);
    dm_free(tr->sigma);
    dm_free(tr->w);
    dm_free(tr->row_loss);
    dm_free(tr->coef);
    if (tr->tsampler.T)
        dm_tsampler_free(&tr->tsampler);
    dm_net_ws_free(&tr->net, &tr->ws);
    dm_net_free(&tr->net);
    if (tr->adam.m)
        dm_adam_free(&tr->adam);
    for (int k = 0; k < DM_TRAIN_N_STREAMS; k++)
        dm_rng_free(&tr->streams[k]);
    memset(tr, 0, sizeof *tr);
}

/* The diffusion losses: one forward pass at the drawn times, the loss and dF. */
static double diffusion_forward_loss(dm_trainer *tr)
{
    const size_t B = (size_t)tr->topt->batch, d = tr->dim, nd = (size_t)tr->topt->n_data;
    const dm_schedule *s = &tr->sched;

    /* Draws in a fixed order from three streams: indices, times (then, with label dropout, one
     * uniform per row), noise. */
    const int C = tr->conditional ? (int)tr->n_classes : 0;
    for (size_t i = 0; i < B; i++) {
        size_t k = dm_rng_int(&tr->streams[0], nd);
        memcpy(tr->x0 + i * d, tr->train_x + k * d, sizeof(float) * d);
        tr->y[i] = tr->train_y[k];
    }
    if (tr->clean) /* the clean data: no time, no noise */
        for (size_t i = 0; i < B; i++)
            tr->t[i] = 0.0;
    else if (tr->importance_t)
        dm_tsampler_draw(&tr->tsampler, &tr->streams[1], B, tr->t, tr->w);
    else
        for (size_t i = 0; i < B; i++)
            tr->t[i] = s->ops->sample_t(s, &tr->streams[1]);
    if (C > 0 && tr->topt->label_dropout > 0)
        for (size_t i = 0; i < B; i++)
            if (dm_rng_uniform(&tr->streams[1]) < tr->topt->label_dropout)
                tr->y[i] = DM_NULL_CLASS;
    for (size_t i = 0; !tr->clean && i < B * d; i++)
        tr->eps[i] = (float)dm_rng_normal(&tr->streams[2]);

    for (size_t i = 0; tr->clean && i < B; i++) {
        tr->alpha[i] = 1.0;
        tr->sigma[i] = 0.0;
        tr->coef[i] = (dm_param_coef){ .c_in = 1.0 };
        tr->tin[i] = 0.0f;
        memcpy(tr->xt + i * d, tr->x0 + i * d, sizeof(float) * d);
        memcpy(tr->xin + i * d, tr->x0 + i * d, sizeof(float) * d);
    }
    for (size_t i = 0; !tr->clean && i < B; i++) {
        const double a = s->ops->alpha(s, tr->t[i]), sg = s->ops->sigma(s, tr->t[i]);
        tr->alpha[i] = a;
        tr->sigma[i] = sg;
        dm_param_coef_at(tr->param, tr->param_opts, s, tr->t[i], tr->sigma_data, &tr->coef[i]);
        tr->tin[i] = (float)s->ops->c_noise(s, tr->t[i]);
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            tr->xt[q] = (float)(a * tr->x0[q] + sg * tr->eps[q]);
        }
        const double c_in = tr->coef[i].c_in;
        for (size_t j = 0; j < d; j++)
            tr->xin[i * d + j] = (float)(c_in * tr->xt[i * d + j]);
    }

    dm_trainer_net_forward(tr, tr->params, (int)B, tr->xin, tr->tin, C > 0 ? tr->y : NULL, tr->F);
    const dm_loss_batch lb = { .n = B, .d = d, .x_t = tr->xt, .F = tr->F, .x0 = tr->x0,
                               .eps = tr->eps, .t = tr->t, .alpha = tr->alpha,
                               .sigma = tr->sigma, .coef = tr->coef, .sched = s,
                               .sigma_data = tr->sigma_data, .f_cols = (size_t)tr->net.cfg.out_dim,
                               .w = tr->importance_t ? tr->w : NULL,
                               .row_loss = tr->importance_t ? tr->row_loss : NULL,
                               .y = tr->y, .n_classes = tr->n_classes };
    return tr->loss->eval(tr->loss_opts, &lb, tr->dF);
}

dm_status dm_trainer_step(dm_trainer *tr, double *loss_out, double *gnorm_out, char *err)
{
    const size_t B = (size_t)tr->topt->batch;
    double loss;
    if (tr->cm) {
        dm_status st = dm_cm_forward_loss(tr, &loss, err);
        if (st)
            return st;
    } else {
        loss = diffusion_forward_loss(tr);
    }
    *loss_out = loss;
    if (!isfinite(loss))
        return dm_err(err, DM_E_NUMERIC, "the loss is %s at step %lld", isnan(loss) ? "NaN" : "infinite",
                      (long long)tr->step + 1);
    dm_net_backward(&tr->net, tr->params, &tr->ws, (int)B, tr->dF, tr->grads, NULL);
    const double gnorm = dm_clip_grad_norm(tr->grads, tr->net.n_params, tr->topt->grad_clip);
    *gnorm_out = gnorm;
    if (!isfinite(gnorm))
        return dm_err(err, DM_E_NUMERIC, "the gradient norm is %s at step %lld",
                      isnan(gnorm) ? "NaN" : "infinite", (long long)tr->step + 1);

    double lr = tr->topt->lr;
    if (tr->topt->warmup > 0 && tr->step < tr->topt->warmup)
        lr *= (double)(tr->step + 1) / (double)tr->topt->warmup;
    dm_adam_step(&tr->adam, tr->params, tr->grads, lr);
    if (tr->importance_t)
        dm_tsampler_update(&tr->tsampler, B, tr->t, tr->row_loss);
    dm_ema_update(tr->ema, tr->params, tr->net.n_params, tr->topt->ema_decay);
    tr->step++;
    if (tr->cm)
        dm_cm_after_step(tr);
    return DM_OK;
}

dm_status dm_trainer_ckpt_entries(dm_trainer *tr, dm_ckpt *c, void *rng_buf, char *err)
{
    (void)err;
    static const char *const rng_entry[DM_TRAIN_N_STREAMS] = { "rng/train.batch", "rng/train.t", "rng/train.noise" };
    const size_t np = tr->net.n_params;
    size_t k = 0;
    c->step = tr->step;
    c->entries[k++] = (dm_ckpt_entry){ (char *)"params", DM_CKPT_F32, np, tr->params };
    c->entries[k++] = (dm_ckpt_entry){ (char *)"ema", DM_CKPT_F32, np, tr->ema };
    c->entries[k++] = (dm_ckpt_entry){ (char *)"adam/m", DM_CKPT_F32, np, tr->adam.m };
    c->entries[k++] = (dm_ckpt_entry){ (char *)"adam/v", DM_CKPT_F32, np, tr->adam.v };
    c->entries[k++] = (dm_ckpt_entry){ (char *)"adam/t", DM_CKPT_I64, 1, &tr->adam.t };
    unsigned char *buf = rng_buf;
    for (int s = 0; s < DM_TRAIN_N_STREAMS; s++) {
        size_t sz = dm_rng_state_size(&tr->streams[s]);
        dm_rng_state_get(&tr->streams[s], buf);
        c->entries[k++] = (dm_ckpt_entry){ (char *)rng_entry[s], DM_CKPT_U8, sz, buf };
        buf += sz;
    }
    if (tr->importance_t) {
        const size_t T = (size_t)tr->tsampler.T;
        c->entries[k++] = (dm_ckpt_entry){ (char *)"tsampler/history", DM_CKPT_F64, T * DM_TSAMPLER_HISTORY,
                                           tr->tsampler.history };
        c->entries[k++] = (dm_ckpt_entry){ (char *)"tsampler/count", DM_CKPT_I64, T, tr->tsampler.count };
    }
    if (tr->target)
        c->entries[k++] = (dm_ckpt_entry){ (char *)"cm/target", DM_CKPT_F32, np, tr->target };
    c->n = k;
    c->owns = 0;
    return DM_OK;
}

dm_status dm_trainer_restore(dm_trainer *tr, const dm_ckpt *c, char *err)
{
    static const char *const rng_entry[DM_TRAIN_N_STREAMS] = { "rng/train.batch", "rng/train.t", "rng/train.noise" };
    const size_t np = tr->net.n_params;
    struct { const char *name; void *dst; size_t count; } f32[] = {
        { "params", tr->params, np }, { "ema", tr->ema, np }, { "adam/m", tr->adam.m, np }, { "adam/v", tr->adam.v, np },
    };
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) {
        const dm_ckpt_entry *e = dm_ckpt_find(c, f32[i].name);
        if (!e || e->type != DM_CKPT_F32 || e->count != f32[i].count)
            return dm_err(err, DM_E_IO, "checkpoint lacks '%s' of %zu float32 values", f32[i].name, f32[i].count);
        memcpy(f32[i].dst, e->data, sizeof(float) * e->count);
    }
    const dm_ckpt_entry *t = dm_ckpt_find(c, "adam/t");
    if (!t || t->type != DM_CKPT_I64 || t->count != 1)
        return dm_err(err, DM_E_IO, "checkpoint lacks 'adam/t'");
    tr->adam.t = *(const int64_t *)t->data;
    for (int s = 0; s < DM_TRAIN_N_STREAMS; s++) {
        const dm_ckpt_entry *e = dm_ckpt_find(c, rng_entry[s]);
        if (!e || e->type != DM_CKPT_U8 || e->count != dm_rng_state_size(&tr->streams[s]))
            return dm_err(err, DM_E_IO, "checkpoint lacks the state of stream '%s'", rng_entry[s] + 4);
        dm_rng_state_set(&tr->streams[s], e->data);
    }
    if (tr->importance_t) {
        const size_t T = (size_t)tr->tsampler.T;
        const dm_ckpt_entry *h = dm_ckpt_find(c, "tsampler/history"), *n = dm_ckpt_find(c, "tsampler/count");
        if (!h || h->type != DM_CKPT_F64 || h->count != T * DM_TSAMPLER_HISTORY || !n || n->type != DM_CKPT_I64 ||
            n->count != T)
            return dm_err(err, DM_E_IO, "checkpoint lacks the t-sampler history of %zu steps", T);
        memcpy(tr->tsampler.history, h->data, sizeof(double) * h->count);
        memcpy(tr->tsampler.count, n->data, sizeof(int64_t) * n->count);
    }
    if (tr->target) {
        const dm_ckpt_entry *e = dm_ckpt_find(c, "cm/target");
        if (!e || e->type != DM_CKPT_F32 || e->count != np)
            return dm_err(err, DM_E_IO, "checkpoint lacks the consistency target network 'cm/target'");
        memcpy(tr->target, e->data, sizeof(float) * np);
    }
    tr->step = c->step;
    return DM_OK;
}

dm_status dm_trainer_set_teacher(dm_trainer *tr, const dm_denoiser *teacher, const dm_net *net, const float *weights,
                                 char *err)
{
    const dm_distill_opts *dist = dm_spec_opts(tr->spec, "distill");
    if (teacher->dim != tr->dim)
        return dm_err(err, DM_E_INPUT, "distill.teacher: the teacher's data have dimension %zu, the student's %zu",
                      teacher->dim, tr->dim);
    if (teacher->max_batch < (size_t)tr->topt->batch)
        return dm_err(err, DM_E_INPUT, "distill.teacher: the teacher's denoiser takes batches of %zu, below train.batch "
                      "%lld", teacher->max_batch, (long long)tr->topt->batch);
    if (dist->init_from_teacher) {
        char a[256] = "none: analytic", b[256];
        if (net)
            dm_net_describe(net, a, sizeof a);
        dm_net_describe(&tr->net, b, sizeof b);
        if (!net || strcmp(a, b) != 0)
            return dm_err(err, DM_E_INPUT, "distill.init_from_teacher: the teacher's network (%s) has another shape "
                          "than the student's (%s)", a, b);
        const size_t nb = sizeof(float) * tr->net.n_params;
        memcpy(tr->params, weights, nb);
        memcpy(tr->ema, weights, nb);
        if (tr->target)
            memcpy(tr->target, weights, nb);
    }
    tr->teacher = teacher;
    return DM_OK;
}

dm_status dm_trainer_params_finite(const dm_trainer *tr, char *err)
{
    const float *blocks[2] = { tr->params, tr->ema };
    static const char *const names[2] = { "parameters", "EMA parameters" };
    for (int b = 0; b < 2 && blocks[b]; b++)
        for (size_t i = 0; i < tr->net.n_params; i++)
            if (!isfinite(blocks[b][i]))
                return dm_err(err, DM_E_NUMERIC, "the %s hold %s at step %lld (entry %zu)", names[b],
                              isnan(blocks[b][i]) ? "NaN" : "Inf", (long long)tr->step, i);
    return DM_OK;
}

void dm_trainer_params_sha256(const dm_trainer *tr, char hex[65])
{
    const size_t nb = sizeof(float) * tr->net.n_params;
    const void *parts[2] = { tr->params, tr->ema };
    const size_t sizes[2] = { nb, nb };
    dm_sha256_hex_parts(parts, sizes, 2, hex);
}

