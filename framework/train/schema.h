/* schema.h — the sections of a difflab spec and the options of its fixed sections.
 *
 *   name, seed                 top level
 *   data                       a data plug-in (data/dataset.h)
 *   model                      a network plug-in (nn/model.h)
 *   diffusion.schedule         a schedule plug-in
 *   diffusion.param            a parameterization plug-in
 *   diffusion.loss             a loss plug-in
 *   sampler                    the sampler of the run's final evaluation
 *   guidance                   guidance of that sampling (diffusion/guidance.h)
 *   train                      trainer options
 *   eval                       evaluation options (reference set, metrics)
 *   run                        execution options that do not change results (not hashed) */
#ifndef DM_TRAIN_SCHEMA_H
#define DM_TRAIN_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/options.h"

typedef struct dm_root_opts {
    char name[DM_OPT_STR_MAX];
    int64_t seed;
} dm_root_opts;

enum { DM_OPTIM_ADAM = 0, DM_OPTIM_ADAMW = 1 };
typedef struct dm_train_opts {
    int64_t steps, batch, n_data, warmup;
    int optimizer;
    double lr, beta1, beta2, eps, weight_decay, grad_clip, ema_decay;
    double label_dropout;   /* conditional models: probability that a label becomes the null class */
} dm_train_opts;

typedef struct dm_eval_opts {
    int64_t n_samples, n_ref, seed, swd_projections, mmd_max, batch, nll_n, posterior_levels;
    bool use_ema, nll, posterior;
    double nll_sigma;   /* > 0: the PF-ODE likelihood starts where sigma/alpha = nll_sigma */
    /* eval.ode_err: the sampler's distance to the PF-ODE reference (train/record.c) */
    bool ode_err;
    int64_t ode_err_n;
    bool model_err;              /* mixture data: |D_theta - D*|^2 / d at each of model_err_levels */
    dm_reals model_err_levels;   /* the levels sigma/alpha of model_err */
    char features[DM_OPT_STR_MAX]; /* the feature network of the image metrics (train/features.h); "": none */
    int64_t features_seed;         /* with a spec file: its run's seed */
    int64_t pr_max;                /* precision/recall use the first min(n, pr_max) points of each set */
} dm_eval_opts;

enum { DM_PROGRESS_AUTO = 0, DM_PROGRESS_BAR, DM_PROGRESS_LINES, DM_PROGRESS_NONE };
typedef struct dm_run_opts {
    int64_t threads, log_every, ckpt_every;
    int progress;
} dm_run_opts;

/* Consistency distillation's teacher (diffusion.loss: cd). */
typedef struct dm_distill_opts {
    char teacher[DM_OPT_STR_MAX];   /* "": none; "analytic"; a run id (or unique prefix); a spec file */
    int64_t teacher_seed;           /* with a spec file: the teacher run's seed */
    bool init_from_teacher;         /* the student starts from the teacher's EMA weights */
} dm_distill_opts;

extern const dm_schema dm_spec_schema;

#endif
