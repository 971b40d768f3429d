#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/denoiser_net.h"
#include "diffusion/samplers.h"
#include "eval/nll.h"
#include "eval/vlb.h"
#include "nn/model.h"
#include "train/cm_step.h"

static const char *const stream_names[DM_TRAIN_N_STREAMS] = { "train.batch", "train.t", "train.noise" };

/* Plug-in checks say "KEY: what is wrong"; prefix the place KEY was given (file:line:col or the
 * override), as the loader does for its own errors. */
static dm_status locate(const dm_spec *spec, dm_status st, char *err)
{
    if (st == DM_OK || !err)
        return st;
    size_t k = strspn(err, "abcdefghijklmnopqrstuvwxyz0123456789_.");
    if (k == 0 || k >= 256 || err[k] != ':')
        return st;
    char key[256], where[512];
    memcpy(key, err, k);
    key[k] = 0;
    dm_spec_where(spec, key, where, sizeof where);
    dm_err_prefix(err, "%s", where);
    return st;
}

static dm_status check_plugins(const dm_spec *spec, char *err);

/* DM_E_INPUT "KEY: WHAT needs a Gaussian-mixture dataset ..." unless the spec's data is a mixture. */
static dm_status need_mixture(const dm_spec *spec, const char *key, const char *what, char *err)
{
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    dm_gmm g;
    const dm_status gs = dm_data_gmm(da, dm_spec_opts(spec, "data"), &g, err);
    if (gs == DM_E_NOMEM)
        return gs;
    if (gs != DM_OK)
        return dm_err(err, DM_E_INPUT, "%s: %s needs a Gaussian-mixture dataset (gmm, eight_gaussians); '%s' is not one",
                      key, what, da->info.name);
    dm_gmm_free(&g);
    return DM_OK;
}

/* Labels, label dropout, classifier runs and guidance fit the model and the data. */
static dm_status check_conditioning(const dm_spec *spec, char *err)
{
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(spec, "model");
    const dm_loss_ops *lo = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    const dm_guidance_ops *gu = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    const dm_sampler_ops *sa = (const dm_sampler_ops *)dm_spec_plugin(spec, "sampler");
    const dm_train_opts *to = dm_spec_opts(spec, "train");
    const size_t C = da->n_classes(dm_spec_opts(spec, "data"));
    const int cond = mo->conditional(dm_spec_opts(spec, "model"));
    if (C > 256)
        return dm_err(err, DM_E_INPUT, "data.type: '%s' has %zu classes; at most 256", da->info.name, C);
    if ((cond || lo->classifier || gu->kind != DM_GUIDE_NONE) && C < 2)
        return dm_err(err, DM_E_INPUT, "%s: the dataset '%s' has one class: nothing to condition on",
                      cond ? "model.conditional" : lo->classifier ? "diffusion.loss.type" : "guidance.type",
                      da->info.name);
    if (to->label_dropout > 0 && (!cond || mo->analytic))
        return dm_err(err, DM_E_INPUT, "train.label_dropout: only a conditional network (model: {type: mlp, "
                      "conditional: true}) takes labels to drop");
    if (cond && lo->consistency)
        return dm_err(err, DM_E_INPUT, "model.conditional: the consistency losses train unconditional models here");
    if (lo->classifier && (mo->analytic || cond || gu->kind != DM_GUIDE_NONE))
        return dm_err(err, DM_E_INPUT, "diffusion.loss.type: xent trains a classifier p(y | x_t): it needs an "
                      "unconditional mlp and no guidance (%s)", mo->analytic ? "the model is analytic"
                      : cond ? "model.conditional is true" : "guidance is set");
    if (gu->kind == DM_GUIDE_CFG && !cond)
        return dm_err(err, DM_E_INPUT, "guidance.type: cfg combines a conditional and an unconditional prediction "
                      "of one model; set model.conditional: true (and train.label_dropout > 0 for a network)");
    if (gu->kind == DM_GUIDE_CFG && !mo->analytic && !(to->label_dropout > 0))
        return dm_err(err, DM_E_INPUT, "guidance.type: cfg needs train.label_dropout > 0: the unconditional "
                      "prediction is the null class, which training without dropout never shows the network");
    if (gu->kind == DM_GUIDE_CLASSIFIER) {
        const dm_classifier_guidance_opts *cg = dm_spec_opts(spec, "guidance");
        if (!cg->classifier[0])
            return dm_err(err, DM_E_INPUT, "guidance.classifier: classifier guidance needs a classifier: a finished "
                          "run trained with diffusion.loss xent (its id, or a spec file with classifier_seed), or "
                          "'analytic'");
        const dm_status st = strcmp(cg->classifier, "analytic") == 0
                                 ? need_mixture(spec, "guidance.classifier", "analytic", err) : DM_OK;
        if (st)
            return st;
    }
    if (gu->kind != DM_GUIDE_NONE && sa == &dm_sampler_ddpm &&
        ((const dm_ddpm_sampler_opts *)dm_spec_opts(spec, "sampler"))->variance == DM_VAR_LEARNED)
        return dm_err(err, DM_E_INPUT, "sampler.variance: learned is not guided; choose beta or beta_tilde with "
                      "guidance");
    return DM_OK;
}

dm_status dm_trainer_check(const dm_spec *spec, char *err)
{
    return locate(spec, check_plugins(spec, err), err);
}

static dm_status check_plugins(const dm_spec *spec, char *err)
{
    dm_schedule sched;
    const dm_schedule_ops *so = (const dm_schedule_ops *)dm_spec_plugin(spec, "diffusion.schedule");
    const dm_param_ops *po = (const dm_param_ops *)dm_spec_plugin(spec, "diffusion.param");
    const dm_loss_ops *lo = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    const dm_sampler_ops *sa = (const dm_sampler_ops *)dm_spec_plugin(spec, "sampler");
    const dm_data_ops *da = (const dm_data_ops *)dm_spec_plugin(spec, "data");
    const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(spec, "model");
    dm_status st = da->check ? da->check(dm_spec_opts(spec, "data"), err) : DM_OK;
    if (st)
        return st;
    if (mo->analytic && (st = need_mixture(spec, "model.type", "analytic", err)))
        return st;
    if ((st = dm_schedule_init(&sched, so, dm_spec_opts(spec, "diffusion.schedule"), err)))
        goto out;
    if ((st = po->check(dm_spec_opts(spec, "diffusion.param"), &sched, err)))
        goto out;
    if ((st = lo->check(dm_spec_opts(spec, "diffusion.loss"), &sched, po, err)))
        goto out;
    if ((st = sa->check(dm_spec_opts(spec, "sampler"), &sched, err)))
        goto out;
    const dm_distill_opts *dist = dm_spec_opts(spec, "distill");
    if (lo->consistency == DM_CM_KIND_CD && !dist->teacher[0]) {
        st = dm_err(err, DM_E_INPUT, "distill.teacher: the cd loss distills a teacher: name a finished run (its id), "
                    "a spec file with distill.teacher_seed, or 'analytic'");
        goto out;
    }
    if (lo->consistency != DM_CM_KIND_CD && dist->teacher[0]) {
        st = dm_err(err, DM_E_INPUT, "distill.teacher: only the cd loss has a teacher; the loss is '%s'", lo->info.name);
        goto out;
    }
    if (lo->consistency == DM_CM_KIND_CD && strcmp(dist->teacher, "analytic") == 0) {
        if ((st = need_mixture(spec, "distill.teacher", "analytic", err)))
            goto out;
        if (dist->init_from_teacher) {
            st = dm_err(err, DM_E_INPUT, "distill.init_from_teacher: the analytic teacher has no weights to start from");
            goto out;
        }
    }
    if (mo->analytic && lo->consistency) {
        st = dm_err(err, DM_E_INPUT, "model.type: analytic has nothing to train; the %s loss trains a network",
                    lo->info.name);
        goto out;
    }
    if ((st = check_conditioning(spec, err)))
        goto out;
    if (((const dm_eval_opts *)dm_spec_opts(spec, "eval"))->posterior &&
        (st = need_mixture(spec, "eval.posterior", "the exact posterior", err)))
        goto out;
    if (sa == &dm_sampler_ddpm && ((const dm_ddpm_sampler_opts *)dm_spec_opts(spec, "sampler"))->variance == DM_VAR_LEARNED &&
        dm_loss_variance(lo, dm_spec_opts(spec, "diffusion.loss")) != DM_VAR_LEARNED)
        st = dm_err(err, DM_E_INPUT,
                    "sampler.variance: learned needs a model trained with a learned variance (diffusion.loss.type: "
                    "hybrid, or vlb with variance: learned); the loss is '%s'%s",
                    lo->info.name, mo->analytic ? " and the model analytic" : "");
out:
    dm_schedule_free(&sched);
    return st;
}

static dm_status gen_data(const dm_trainer *tr, uint64_t seed, const char *stream, size_t n,
                          float **out, int32_t **labels, char *err)
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
    st = tr->data->generate(tr->data_opts, n, &rng, *out, *labels, err);
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

/* The network, its optimizer state and the training streams. On failure the caller frees. */
static dm_status init_network(dm_trainer *tr, const dm_model_ops *model, uint64_t seed, char *err)
{
    dm_status st;
    dm_mlp_cfg cfg;
    const int out_dim = tr->classifier ? (int)tr->n_classes
                                       : (int)tr->dim * (tr->loss_variance == DM_VAR_LEARNED ? 2 : 1);
    const void *mo = dm_spec_opts(tr->spec, "model");
    model->mlp_cfg(mo, dm_model_in_dim(model, mo, (int)tr->dim, (int)tr->n_classes), out_dim, &cfg);
    if ((st = dm_mlp_init(&tr->mlp, &cfg, err)))
        return st;
    const size_t np = tr->mlp.n_params, B = (size_t)tr->topt->batch, d = tr->dim, din = (size_t)cfg.in_dim;
    tr->params = dm_malloc_aligned(sizeof(float) * np);
    tr->grads = dm_malloc_aligned(sizeof(float) * np);
    tr->ema = dm_malloc_aligned(sizeof(float) * np);
    tr->x0 = dm_malloc_aligned(sizeof(float) * B * d);
    tr->eps = dm_malloc_aligned(sizeof(float) * B * d);
    tr->xt = dm_malloc_aligned(sizeof(float) * B * d);
    tr->xin = dm_malloc_aligned(sizeof(float) * B * din);
    tr->y = dm_malloc(sizeof(int32_t) * B);
    tr->tin = dm_malloc_aligned(sizeof(float) * B);
    tr->F = dm_malloc_aligned(sizeof(float) * B * (size_t)cfg.out_dim);
    tr->dF = dm_malloc_aligned(sizeof(float) * B * (size_t)cfg.out_dim);
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
    if ((st = dm_mlp_ws_init(&tr->ws, &tr->mlp, (int)B, err)))
        return st;
    const dm_train_opts *to = tr->topt;
    if ((st = dm_adam_init(&tr->adam, np, to->lr, to->beta1, to->beta2, to->eps,
                           to->optimizer == DM_OPTIM_ADAMW ? to->weight_decay : 0.0, err)))
        return st;

    dm_rng init_rng = { 0 };
    uint64_t init_seed = dm_seed_derive(seed, "model.init");
    if ((st = dm_rng_init(&init_rng, init_seed, err)))
        return st;
    dm_mlp_init_params(&tr->mlp, tr->params, &init_rng);
    dm_rng_free(&init_rng);
    memcpy(tr->ema, tr->params, sizeof(float) * np);

    for (int k = 0; k < DM_TRAIN_N_STREAMS; k++)
        if ((st = dm_rng_init(&tr->streams[k], dm_seed_derive(seed, stream_names[k]), err)))
            return st;
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
    tr->classifier = tr->loss->classifier;
    tr->conditional = model->conditional(dm_spec_opts(spec, "model"));
    tr->guidance = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    tr->guidance_opts = dm_spec_opts(spec, "guidance");

    if ((st = dm_schedule_init(&tr->sched, (const dm_schedule_ops *)dm_spec_plugin(spec, "diffusion.schedule"),
                               dm_spec_opts(spec, "diffusion.schedule"), err)))
        return st;

    /* Data: the training set from the run's seed, the reference set from eval.seed alone. */
    tr->dim = tr->data->dim(tr->data_opts);
    tr->n_classes = tr->data->n_classes(tr->data_opts);
    const size_t nd = (size_t)tr->topt->n_data, nr = (size_t)tr->eopt->n_ref;
    if ((st = gen_data(tr, seed, "data.train", nd, &tr->train_x, &tr->train_y, err)))
        goto fail;
    if ((st = gen_data(tr, (uint64_t)tr->eopt->seed, "data.ref", nr, &tr->ref_x, &tr->ref_y, err)))
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
            st = dm_err(err, DM_E_NOMEM, "out of memory");
            goto fail;
        }
        rec->data_n_train = (int64_t)nd;
        rec->data_n_test = (int64_t)nr;
        rec->data_dim = (int64_t)tr->dim;
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
    dm_mlp_ws_free(&tr->ws);
    if (tr->mlp.n_layers)
        dm_mlp_free(&tr->mlp);
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
    const size_t din = (size_t)tr->mlp.cfg.in_dim;
    const int C = tr->conditional ? (int)tr->n_classes : 0;
    for (size_t i = 0; i < B; i++) {
        size_t k = dm_rng_int(&tr->streams[0], nd);
        memcpy(tr->x0 + i * d, tr->train_x + k * d, sizeof(float) * d);
        tr->y[i] = tr->train_y[k];
    }
    if (tr->importance_t)
        dm_tsampler_draw(&tr->tsampler, &tr->streams[1], B, tr->t, tr->w);
    else
        for (size_t i = 0; i < B; i++)
            tr->t[i] = s->ops->sample_t(s, &tr->streams[1]);
    if (C > 0 && tr->topt->label_dropout > 0)
        for (size_t i = 0; i < B; i++)
            if (dm_rng_uniform(&tr->streams[1]) < tr->topt->label_dropout)
                tr->y[i] = DM_NULL_CLASS;
    for (size_t i = 0; i < B * d; i++)
        tr->eps[i] = (float)dm_rng_normal(&tr->streams[2]);

    for (size_t i = 0; i < B; i++) {
        const double a = s->ops->alpha(s, tr->t[i]), sg = s->ops->sigma(s, tr->t[i]);
        tr->alpha[i] = a;
        tr->sigma[i] = sg;
        dm_param_coef_at(tr->param, tr->param_opts, s, tr->t[i], tr->sigma_data, &tr->coef[i]);
        tr->tin[i] = (float)s->ops->c_noise(s, tr->t[i]);
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            tr->xt[q] = (float)(a * tr->x0[q] + sg * tr->eps[q]);
        }
        dm_net_input_row(tr->xin + i * din, d, tr->xt + i * d, tr->coef[i].c_in, C, tr->y[i]);
    }

    dm_mlp_forward(&tr->mlp, tr->params, &tr->ws, (int)B, tr->xin, tr->tin, tr->F);
    const dm_loss_batch lb = { .n = B, .d = d, .x_t = tr->xt, .F = tr->F, .x0 = tr->x0,
                               .eps = tr->eps, .t = tr->t, .alpha = tr->alpha,
                               .sigma = tr->sigma, .coef = tr->coef, .sched = s,
                               .sigma_data = tr->sigma_data, .f_cols = (size_t)tr->mlp.cfg.out_dim,
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
    dm_mlp_backward(&tr->mlp, tr->params, &tr->ws, (int)B, tr->dF, tr->grads, NULL);
    const double gnorm = dm_clip_grad_norm(tr->grads, tr->mlp.n_params, tr->topt->grad_clip);
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
    dm_ema_update(tr->ema, tr->params, tr->mlp.n_params, tr->topt->ema_decay);
    tr->step++;
    if (tr->cm)
        dm_cm_after_step(tr);
    return DM_OK;
}

dm_status dm_model_denoiser_init(dm_trainer *tr, size_t batch, int use_ema, dm_model_denoiser *md,
                                 dm_denoiser *den, char *err)
{
    md->net = !tr->analytic;
    if (!md->net) {
        dm_gmm_denoiser_init(&md->gd, den, &tr->gmm, &tr->sched, batch);
        return DM_OK;
    }
    return dm_net_denoiser_init(&md->nd, den, &tr->mlp, use_ema ? tr->ema : tr->params, &tr->sched,
                                tr->param, tr->param_opts, tr->sigma_data, tr->conditional ? (int)tr->n_classes : 0,
                                batch, err);
}

void dm_model_denoiser_free(dm_model_denoiser *md)
{
    if (md->net)
        dm_net_denoiser_free(&md->nd);
    md->net = 0;
}

static dm_status model_denoiser_init(dm_trainer *tr, size_t batch, dm_model_denoiser *md, dm_denoiser *den,
                                     char *err)
{
    return dm_model_denoiser_init(tr, batch, tr->eopt->use_ema, md, den, err);
}

static void model_denoiser_free(dm_model_denoiser *md) { dm_model_denoiser_free(md); }

dm_status dm_trainer_sample(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                            float *x, int64_t *nfe, char *err)
{
    const size_t n = (size_t)tr->eopt->n_samples;
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    dm_model_denoiser md;
    dm_denoiser den, gden;
    dm_guided_denoiser gd = { 0 };
    dm_rng *rngs;
    int32_t *labels = NULL;
    const int kind = tr->guidance->kind;
    dm_status st = dm_rng_streams_new(dm_seed_derive((uint64_t)tr->root->seed, "eval.noise"), n, &rngs, err);
    if (st)
        return st;
    if (dm_trainer_samples_conditional(tr)) {
        if (!(labels = dm_malloc(sizeof(int32_t) * n))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory for %zu labels", n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            labels[i] = dm_trainer_sample_class(tr, i);
    }
    if ((st = model_denoiser_init(tr, batch, &md, &den, err)))
        goto out;
    const dm_denoiser *use = &den;
    if (kind != DM_GUIDE_NONE) {
        st = dm_guided_denoiser_init(&gd, &gden, &den, kind, dm_guidance_scale(tr->guidance, tr->guidance_opts),
                                     tr->guide_clf, &tr->sched, err);
        use = &gden;
    }
    if (!st) {
        dm_denoiser run = *use;
        run.y = labels;
        st = dm_sampler_sample(sampler, sopts, &run, &tr->sched, n, rngs, x, nfe, err);
    }
    dm_guided_denoiser_free(&gd);
    model_denoiser_free(&md);
out:
    dm_free(labels);
    dm_rng_streams_free(rngs, n);
    return st;
}

int dm_trainer_samples_conditional(const dm_trainer *tr)
{
    return !tr->classifier && (tr->conditional || tr->guidance->kind != DM_GUIDE_NONE);
}

dm_status dm_trainer_set_classifier(dm_trainer *tr, const dm_classifier *clf, char *err)
{
    if (clf->dim != tr->dim)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier's data have dimension %zu, the model's %zu",
                      clf->dim, tr->dim);
    if (clf->n_classes != tr->n_classes)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier has %zu classes, the dataset %zu",
                      clf->n_classes, tr->n_classes);
    if (clf->max_batch < (size_t)tr->eopt->batch && clf->max_batch < (size_t)tr->eopt->n_samples)
        return dm_err(err, DM_E_INPUT, "guidance.classifier: the classifier takes batches of %zu, below eval.batch",
                      clf->max_batch);
    tr->guide_clf = clf;
    return DM_OK;
}

dm_status dm_trainer_nll(dm_trainer *tr, double *nll, int64_t *nfe, char *err)
{
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref);
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    dm_model_denoiser md;
    dm_denoiser den;
    dm_status st;
    double *logp = dm_malloc(sizeof(double) * n);
    if (!logp)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu log-likelihoods", n);
    if (!(st = model_denoiser_init(tr, batch, &md, &den, err))) {
        /* score_sde's likelihood settings: from t = 1e-5, rtol = atol = 1e-5 (FORMULAS.md, RK45).
         * The Hutchinson probes (above 2-D) come from eval.seed, as the reference points: every
         * run estimates on the same points with the same probes. */
        st = dm_nll_pfode(&den, &tr->sched, tr->ref_x, n, DM_NLL_EPS, DM_NLL_TOL, DM_NLL_TOL,
                          dm_seed_derive((uint64_t)tr->eopt->seed, "eval.hutchinson"), logp, nfe, err);
        model_denoiser_free(&md);
    }
    if (!st) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += logp[i];
        *nll = -sum / (double)n;
    }
    dm_free(logp);
    return st;
}

int dm_trainer_reverse_variance(const dm_trainer *tr)
{
    if (tr->sampler == &dm_sampler_ddpm)
        return ((const dm_ddpm_sampler_opts *)tr->sampler_opts)->variance;
    return tr->loss_variance >= 0 ? tr->loss_variance : DM_VAR_BETA;
}

dm_status dm_trainer_vlb(dm_trainer *tr, double *vlb, int64_t *nfe, char *err)
{
    const size_t n = (size_t)(tr->eopt->nll_n < tr->eopt->n_ref ? tr->eopt->nll_n : tr->eopt->n_ref);
    const size_t batch = (size_t)tr->eopt->batch < n ? (size_t)tr->eopt->batch : n;
    dm_model_denoiser md;
    dm_denoiser den;
    dm_rng *rngs;
    double *bound = dm_malloc(sizeof(double) * n);
    if (!bound)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu bounds", n);
    /* The noise comes from eval.seed, as the reference points: runs compare on the same draws. */
    dm_status st = dm_rng_streams_new(dm_seed_derive((uint64_t)tr->eopt->seed, "eval.vlb"), n, &rngs, err);
    if (st) {
        dm_free(bound);
        return st;
    }
    if (!(st = model_denoiser_init(tr, batch, &md, &den, err))) {
        st = dm_vlb(&den, &tr->sched, dm_trainer_reverse_variance(tr), tr->ref_x, n, rngs, bound, NULL, NULL, err);
        model_denoiser_free(&md);
    }
    if (!st) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += bound[i];
        *vlb = sum / (double)n;
        *nfe = tr->sched.T;
    }
    dm_rng_streams_free(rngs, n);
    dm_free(bound);
    return st;
}

dm_status dm_trainer_ckpt_entries(dm_trainer *tr, dm_ckpt *c, void *rng_buf, char *err)
{
    (void)err;
    static const char *const rng_entry[DM_TRAIN_N_STREAMS] = { "rng/train.batch", "rng/train.t", "rng/train.noise" };
    const size_t np = tr->mlp.n_params;
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
    const size_t np = tr->mlp.n_params;
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

dm_status dm_trainer_set_teacher(dm_trainer *tr, const dm_denoiser *teacher, const dm_mlp *mlp, const float *weights,
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
        if (!mlp || memcmp(&mlp->cfg, &tr->mlp.cfg, sizeof mlp->cfg) != 0)
            return dm_err(err, DM_E_INPUT, "distill.init_from_teacher: the teacher's network (%s) has another shape "
                          "than the student's (width %d, depth %d, nfreq %d, %d outputs)",
                          mlp ? "width/depth/nfreq/outputs differ" : "none: analytic",
                          tr->mlp.cfg.width, tr->mlp.cfg.depth, tr->mlp.cfg.nfreq, tr->mlp.cfg.out_dim);
        const size_t nb = sizeof(float) * tr->mlp.n_params;
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
        for (size_t i = 0; i < tr->mlp.n_params; i++)
            if (!isfinite(blocks[b][i]))
                return dm_err(err, DM_E_NUMERIC, "the %s hold %s at step %lld (entry %zu)", names[b],
                              isnan(blocks[b][i]) ? "NaN" : "Inf", (long long)tr->step, i);
    return DM_OK;
}

void dm_trainer_params_sha256(const dm_trainer *tr, char hex[65])
{
    const size_t nb = sizeof(float) * tr->mlp.n_params;
    const void *parts[2] = { tr->params, tr->ema };
    const size_t sizes[2] = { nb, nb };
    dm_sha256_hex_parts(parts, sizes, 2, hex);
}
