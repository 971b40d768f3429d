#include "train/schema.h"

#include <stddef.h>

#include "data/dataset.h"
#include "diffusion/guidance.h"
#include "diffusion/loss.h"
#include "diffusion/param.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "nn/model.h"

#define R(f) offsetof(dm_root_opts, f)
static const dm_param_desc root_params[] = {
    { "name", DM_OPT_STR, "run", 0, 0, NULL, DM_OPT_NOHASH, R(name),
      "short name; the run id is <name>-<config hash>-s<seed>" },
    { "seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, DM_OPT_SEED, R(seed),
      "master seed: every random stream of the run derives from it" },
    DM_OPT_END,
};
#undef R

static const char *const optimizers[] = { "adam", "adamw", NULL };
#define T(f) offsetof(dm_train_opts, f)
static const dm_param_desc train_params[] = {
    { "steps", DM_OPT_INT, "2000", 0, 1e9, NULL, 0, T(steps), "optimizer steps" },
    { "batch", DM_OPT_INT, "1024", 1, 1 << 20, NULL, 0, T(batch), "batch size" },
    { "n_data", DM_OPT_INT, "100000", 1, 1e8, NULL, 0, T(n_data),
      "training points drawn from the data generator (stream data.train)" },
    { "optimizer", DM_OPT_CHOICE, "adam", 0, 0, optimizers, 0, T(optimizer),
      "adam, or adamw (decoupled weight decay)" },
    { "lr", DM_OPT_REAL, "1e-3", 0, 1e30, NULL, 0, T(lr), "learning rate (no upper bound to speak of: a diverging run is a valid experiment)" },
    { "warmup", DM_OPT_INT, "0", 0, 1e9, NULL, 0, T(warmup), "linear learning-rate warm-up steps" },
    { "beta1", DM_OPT_REAL, "0.9", 0, 0.999999, NULL, 0, T(beta1), "Adam beta1" },
    { "beta2", DM_OPT_REAL, "0.999", 0, 0.999999999, NULL, 0, T(beta2), "Adam beta2" },
    { "eps", DM_OPT_REAL, "1e-8", 1e-20, 1, NULL, 0, T(eps), "Adam epsilon" },
    { "weight_decay", DM_OPT_REAL, "0", 0, 1, NULL, 0, T(weight_decay), "AdamW decoupled weight decay" },
    { "grad_clip", DM_OPT_REAL, "0", 0, 1e9, NULL, 0, T(grad_clip),
      "clip the gradient's global L2 norm to this value; 0 = no clipping" },
    { "ema_decay", DM_OPT_REAL, "0.999", 0, 1, NULL, 0, T(ema_decay), "decay of the parameters' EMA" },
    { "label_dropout", DM_OPT_REAL, "0", 0, 1, NULL, 0, T(label_dropout),
      "conditional models: probability that a training label is replaced by the null class (classifier-free "
      "guidance needs > 0; Ho & Salimans use 0.1-0.2)" },
    DM_OPT_END,
};
#undef T

#define E(f) offsetof(dm_eval_opts, f)
static const dm_param_desc eval_params[] = {
    { "n_samples", DM_OPT_INT, "10000", 2, 1e7, NULL, 0, E(n_samples), "samples drawn at the end of the run" },
    { "n_ref", DM_OPT_INT, "10000", 2, 1e7, NULL, 0, E(n_ref),
      "held-out reference points (stream data.ref of eval.seed: the same for every run seed)" },
    { "seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, 0, E(seed),
      "fixes the reference set, SWD projections and MMD bandwidth, so metrics compare across runs" },
    { "swd_projections", DM_OPT_INT, "256", 1, 100000, NULL, 0, E(swd_projections),
      "random directions of the sliced Wasserstein distance" },
    { "mmd_max", DM_OPT_INT, "4000", 2, 1e6, NULL, 0, E(mmd_max),
      "MMD^2 uses the first min(n, mmd_max) samples and reference points (its cost is quadratic)" },
    { "batch", DM_OPT_INT, "10000", 1, 1 << 20, NULL, 0, E(batch), "network batch size while sampling" },
    { "use_ema", DM_OPT_BOOL, "true", 0, 0, NULL, 0, E(use_ema), "sample with the EMA weights" },
    { "nll", DM_OPT_BOOL, "false", 0, 0, NULL, 0, E(nll),
      "also record the likelihood of reference points: the PF-ODE NLL (continuous schedules) or the DDPM "
      "variational bound (discrete schedules)" },
    { "nll_n", DM_OPT_INT, "1000", 1, 1e6, NULL, 0, E(nll_n),
      "reference points of the likelihood (and of the posterior statistics and model_err)" },
    { "nll_sigma", DM_OPT_REAL, "0", 0, 1e6, NULL, 0, E(nll_sigma),
      "continuous schedules: the PF-ODE likelihood of the data blurred by this noise level, the density of "
      "x0 + nll_sigma eps at x0 (x_t / alpha at the time where sigma/alpha = nll_sigma), the same for every "
      "schedule; 0: of x_t at t = 1e-5, score_sde's setting" },
    { "posterior", DM_OPT_BOOL, "false", 0, 0, NULL, 0, E(posterior),
      "mixture data: record statistics of the exact posterior p(x0 | x_t) (spread, modes covered, how far "
      "E[x0 | x_t] sits from the data) at posterior_levels times, and a picture of posterior draws at each" },
    { "posterior_levels", DM_OPT_INT, "8", 2, 100, NULL, 0, E(posterior_levels),
      "times of the posterior statistics: the schedule's sampling grid of this many points, its clean end "
      "replaced by the smallest time" },
    { "ode_err", DM_OPT_BOOL, "false", 0, 0, NULL, 0, E(ode_err),
      "deterministic samplers: record ode_err and ode_err_median, each sample's RMS distance (in data stds) to "
      "the PF-ODE solved by RK45 at tolerance 1e-9 from the same noise over the sampler's span (stored once as "
      "/samples/ode_ref_*); continuous schedules only" },
    { "ode_err_n", DM_OPT_INT, "1000", 1, 1e7, NULL, 0, E(ode_err_n),
      "samples compared by ode_err (the first min(ode_err_n, n_samples)); the reference costs thousands of "
      "evaluations per sample" },
    { "model_err", DM_OPT_BOOL, "false", 0, 0, NULL, 0, E(model_err),
      "mixture data: record model_err, the mean |D_theta(x, t) - D*(x, t)|^2 / d against the exact denoiser on "
      "the first nll_n reference points noised (stream eval.model_err of eval.seed) at each model_err_levels" },
    { "model_err_levels", DM_OPT_REALS, "[0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]", 1e-6, 1e6, NULL, 0,
      E(model_err_levels),
      "noise levels sigma/alpha of model_err (the schedule's time of each; discrete schedules: the nearest step)" },
    { "features", DM_OPT_STR, "", 0, 0, NULL, 0, E(features),
      "image data: the feature network of fd, kid, precision and recall, a finished run of a classifier of clean "
      "items with a feature head (model cnn, diffusion.loss {type: xent, clean: true}) by id or unique prefix, or "
      "a spec file (with features_seed); '' = pixel-space metrics only" },
    { "features_seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, 0, E(features_seed),
      "with a spec file as features: the seed of its run" },
    { "pr_max", DM_OPT_INT, "5000", 4, 1e6, NULL, 0, E(pr_max),
      "precision and recall use the first min(n, pr_max) samples and reference points (k-NN: quadratic cost)" },
    DM_OPT_END,
};
#undef E

#define D(f) offsetof(dm_distill_opts, f)
static const dm_param_desc distill_params[] = {
    { "teacher", DM_OPT_STR, "", 0, 0, NULL, 0, D(teacher),
      "cd's teacher: a finished run's id (or a unique prefix), a spec file (with teacher_seed: the run of that "
      "spec and seed), or 'analytic' (the mixture's exact denoiser)" },
    { "teacher_seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, 0, D(teacher_seed),
      "with a spec file as teacher: the seed of the teacher run" },
    { "init_from_teacher", DM_OPT_BOOL, "false", 0, 0, NULL, 0, D(init_from_teacher),
      "start the student from the teacher's EMA weights (same network shape needed)" },
    DM_OPT_END,
};
#undef D

static const char *const progress_modes[] = { "auto", "bar", "lines", "none", NULL };
#define U(f) offsetof(dm_run_opts, f)
static const dm_param_desc run_params[] = {
    { "threads", DM_OPT_INT, "0", 0, 1024, NULL, DM_OPT_NOHASH, U(threads),
      "threads for OpenMP and OpenBLAS; 0 = OMP_NUM_THREADS or all cores (results do not depend on it)" },
    { "log_every", DM_OPT_INT, "100", 1, 1e9, NULL, DM_OPT_NOHASH, U(log_every),
      "steps between points of the metric series (each the mean over its interval)" },
    { "ckpt_every", DM_OPT_INT, "1000", 1, 1e9, NULL, DM_OPT_NOHASH, U(ckpt_every),
      "steps between checkpoints" },
    { "progress", DM_OPT_CHOICE, "auto", 0, 0, progress_modes, DM_OPT_NOHASH, U(progress),
      "auto (a bar on a terminal, log lines otherwise), bar, lines, none" },
    DM_OPT_END,
};
#undef U

static const dm_plugin root_section = { "", "top level", root_params, sizeof(dm_root_opts) };
static const dm_plugin train_section = { "train", "the common trainer", train_params, sizeof(dm_train_opts) };
static const dm_plugin eval_section = { "eval", "evaluation at the end of a run", eval_params, sizeof(dm_eval_opts) };
static const dm_plugin distill_section = { "distill", "consistency distillation", distill_params,
                                           sizeof(dm_distill_opts) };
static const dm_plugin run_section = { "run", "execution (not part of the config hash)", run_params, sizeof(dm_run_opts) };

static const dm_section_desc sections[] = {
    { "", "top level", &root_section, NULL, NULL, NULL },
    { "data", "the data generator", NULL, dm_data_registry, "eight_gaussians", "dataset" },
    { "model", "the network", NULL, dm_model_registry, "mlp", "model" },
    { "diffusion.schedule", "noise schedule", NULL, dm_schedule_registry, "ddpm_linear", "schedule" },
    { "diffusion.param", "parameterization of the network output", NULL, dm_param_registry, "eps",
      "parameterization" },
    { "diffusion.loss", "training loss", NULL, dm_loss_registry, "mse", "loss" },
    { "sampler", "sampler of the final evaluation", NULL, dm_sampler_registry, "ddpm", "sampler" },
    { "guidance", "guidance of the final sampling", NULL, dm_guidance_registry, "none", "guidance" },
    { "train", "trainer", &train_section, NULL, NULL, NULL },
    { "eval", "evaluation", &eval_section, NULL, NULL, NULL },
    { "distill", "consistency distillation", &distill_section, NULL, NULL, NULL },
    { "run", "execution", &run_section, NULL, NULL, NULL },
};

const dm_schema dm_spec_schema = { sections, sizeof sections / sizeof sections[0] };
