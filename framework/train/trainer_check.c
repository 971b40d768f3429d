/* trainer_check.c — dm_trainer_check: the spec's plug-ins resolved and checked to fit together,
 * before anything heavy is built or written. */
#include "train/trainer.h"

#include <stdio.h>
#include <string.h>

#include "core/path.h"
#include "diffusion/ode_ref.h"
#include "diffusion/samplers.h"
#include "eval/model_err.h"
#include "nn/model.h"

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
                      "unconditional network and no guidance (%s)", mo->analytic ? "the model is analytic"
                      : cond ? "model.conditional is true" : "guidance is set");
    if (mo->net && mo->net->features && !lo->classifier)
        return dm_err(err, DM_E_INPUT, "model.type: '%s' pools each item into one vector: a classifier (diffusion.loss: "
                      "{type: xent, clean: true} for a feature network); a denoiser needs model.type unet (images) "
                      "or mlp", mo->info.name);
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

/* eval.model_err: mixture data, a model with a denoiser, and every level on the schedule. */
static dm_status check_model_err(const dm_spec *spec, const dm_schedule *sched, char *err)
{
    const dm_eval_opts *eo = dm_spec_opts(spec, "eval");
    if (!eo->model_err)
        return DM_OK;
    dm_status st = need_mixture(spec, "eval.model_err", "model_err (against the exact denoiser)", err);
    if (st)
        return st;
    if (((const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss"))->classifier)
        return dm_err(err, DM_E_INPUT, "eval.model_err: a classifier run (diffusion.loss xent) has no denoiser to "
                      "compare with the exact one");
    const dm_reals *lv = &eo->model_err_levels;
    if (lv->n == 0 || lv->rows != 0)
        return dm_err(err, DM_E_INPUT, "eval.model_err_levels: needs a flat list of at least one noise level "
                      "sigma/alpha, e.g. [0.1, 1, 10]");
    for (size_t l = 0; l < lv->n; l++) {
        double t, actual;
        if ((st = dm_model_err_time(sched, lv->v[l], "eval.model_err_levels", &t, &actual, err)))
            return st;
    }
    return DM_OK;
}

/* The run's name becomes a folder and a lock file under the results folder (run id
 * <name>-<hash>-s<seed>): it must not leave it. */
/* The network builds for the data (shapes, levels, groups): refused before anything is written. */
static dm_status check_network(const dm_spec *spec, char *err)
{
    const dm_model_ops *mo = (const dm_model_ops *)dm_spec_plugin(spec, "model");
    if (mo->analytic)
        return DM_OK;
    dm_net_cfg cfg;
    dm_trainer_net_cfg(spec, &cfg);
    dm_net net;
    const dm_status st = dm_net_init(&net, mo->net, dm_spec_opts(spec, "model"), &cfg, err);
    if (!st)
        dm_net_free(&net);
    return st;
}

static dm_status check_name(const dm_spec *spec, char *err)
{
    const dm_root_opts *root = dm_spec_opts(spec, "");
    if (!dm_path_name_ok(root->name))
        return dm_err(err, DM_E_INPUT, "name: '%s' cannot name a run folder: a run name is " DM_PATH_NAME_RULE,
                      root->name);
    return DM_OK;
}

dm_status dm_trainer_check(const dm_spec *spec, char *err)
{
    dm_status st = check_name(spec, err);
    return locate(spec, st ? st : check_plugins(spec, err), err);
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
    if ((st = check_network(spec, err)))
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
    const dm_eval_opts *eo = dm_spec_opts(spec, "eval");
    if (eo->posterior && (st = need_mixture(spec, "eval.posterior", "the exact posterior", err)))
        goto out;
    double t_nll;
    if (eo->nll && eo->nll_sigma > 0 &&
        (st = dm_schedule_t_at_ratio(&sched, eo->nll_sigma, "eval.nll_sigma", &t_nll, err)))
        goto out;
    if (((const dm_eval_opts *)dm_spec_opts(spec, "eval"))->ode_err &&
        (st = dm_ode_ref_check(sa, dm_spec_opts(spec, "sampler"), &sched, err)))
        goto out;
    if ((st = check_model_err(spec, &sched, err)))
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

