/* trainer.h — the common trainer: batch -> t -> noise -> forward -> loss -> backward -> clip ->
 * Adam -> EMA, for any schedule, parameterization and loss of the spec.
 *
 * Randomness: the batch indices, the times and the noise each come from their own named stream
 * (train.batch, train.t, train.noise), the initial weights from model.init and the training data
 * from data.train, all derived from the master seed; the reference set from data.ref of
 * eval.seed. The trainer owns every buffer it uses (one block per kind: parameters, gradients,
 * EMA, Adam moments), and a step does not allocate. */
#ifndef DM_TRAIN_TRAINER_H
#define DM_TRAIN_TRAINER_H

#include <stdint.h>

#include "core/progress.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "diffusion/classifier.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/denoiser_net.h"
#include "diffusion/guidance.h"
#include "diffusion/loss.h"
#include "diffusion/losses.h"
#include "diffusion/param.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "io/runlog.h"
#include "io/runrec.h"
#include "io/spec.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "train/schema.h"
#include "train/tsampler.h"

enum { DM_TRAIN_N_STREAMS = 3 };

typedef struct dm_trainer {
    const dm_spec *spec;
    const dm_root_opts *root;
    const dm_train_opts *topt;
    const dm_eval_opts *eopt;
    const dm_run_opts *ropt;
    const dm_data_ops *data;       const void *data_opts;
    const dm_param_ops *param;     const void *param_opts;
    const dm_loss_ops *loss;       const void *loss_opts;
    const dm_sampler_ops *sampler; const void *sampler_opts;
    dm_schedule sched;
    int loss_variance;             /* dm_loss_variance(): DM_VAR_LEARNED = 2 d network outputs, -1 none */
    int importance_t;              /* training times by importance sampling (tsampler) */
    int clean;                     /* the loss trains on clean data (x_t = x0, c_in 1, c_noise 0) */
    dm_tsampler tsampler;

    size_t dim;
    int shape[3];       /* (C, H, W) of an item: the data's shape, (dim, 1, 1) for point data */
    size_t n_classes;   /* the dataset's classes */
    int conditional;    /* model.conditional: the model takes class labels */
    int classifier;     /* diffusion.loss xent: the run trains a noisy classifier p(y | x_t) */
    float *train_x;     /* (n_data, dim) */
    int32_t *train_y;   /* (n_data) labels */
    float *ref_x;       /* (n_ref, dim) held-out reference set */
    int32_t *ref_y;     /* (n_ref) its labels */
    double data_std;    /* std of train_x over all coordinates (recorded in /data) */
    double sigma_data;  /* the run's sigma_data: the parameterization's option, else data_std */
    char data_sha256[65];

    int analytic;                  /* model.type analytic: no network, the mixture's exact denoiser */
    dm_gmm gmm;                    /* analytic: the dataset's mixture */
    dm_net net;
    float *params, *grads, *ema;   /* (n_params) each */
    dm_adam adam;
    dm_net_ws ws;

    /* per-step batch buffers, B = train.batch */
    float *x0, *eps, *xt, *xin, *tin, *F, *dF;   /* (B, dim): x0, eps, xt, xin = c_in xt; (B) tin; (B, out_dim) */
    int32_t *y;                                  /* (B) the batch's labels, after dropout */
    double *t, *alpha, *sigma, *w, *row_loss;    /* (B) */
    dm_param_coef *coef;                         /* (B) */

    /* consistency models (diffusion.loss ct, ict, cd; train/trainer_cm.c) */
    int cm;                                      /* DM_CM_KIND_*, 0 for the diffusion losses */
    const dm_cm_loss_opts *cm_opts;
    float *target;                               /* (n_params) the target network's EMA; NULL: the student */
    float *cm_xs, *cm_xt, *cm_f, *cm_tgt, *cm_F2;  /* (B, dim) / (B, out_dim) */
    double *cm_ts, *cm_tt, *cm_lambda, *cm_cout, *cm_grid, *cm_p;  /* (B) / (max N) */
    const dm_denoiser *teacher;                  /* cd: the teacher's denoiser (dm_trainer_set_teacher) */
    int analytic_teacher;                        /* cd with distill.teacher: analytic (gmm holds the mixture) */
    dm_gmm_denoiser teacher_gd;
    dm_denoiser teacher_gden;

    /* guidance of the final sampling (guidance.h): the classifier of classifier guidance, the
     * mixture's exact one (analytic) or a classifier run's (dm_trainer_set_classifier) */
    const dm_guidance_ops *guidance; const void *guidance_opts;
    const dm_classifier *guide_clf;
    char guide_clf_id[256];                      /* its run id, or "analytic" (recorded with the samples) */
    struct dm_features *features;                /* the feature network of the image metrics (train/features.h) */
    dm_gmm_denoiser clf_gd;
    dm_classifier clf_gmm;

    dm_rng streams[DM_TRAIN_N_STREAMS];          /* train.batch, train.t, train.noise */
    uint64_t dropout_seed;                       /* train.dropout: step k's masks from dm_seed_index(., k) */
    int64_t step;                                /* steps done */
    /* Progress of the phases after training (sampling, likelihoods, metrics): the run's id leads
     * its lines (set by run.c and sample.c; may be NULL); the model denoisers count into phase. */
    const char *run_id;
    dm_phase phase;
} dm_trainer;

/* Opens a progress phase of the trainer (run.progress decides how it shows); total in items of
 * network evaluations, 0 when not known. dm_trainer_phase_end closes it, with st the phase's
 * outcome ("done in", or "stopped after" when st is an error). */
void dm_trainer_phase_begin(dm_trainer *tr, int64_t total, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void dm_trainer_phase_end(dm_trainer *tr, dm_status st);

/* Resolve the spec's plug-ins and check that they fit together (DM_E_INPUT names the keys).
 * Does no heavy work: called before anything is written. */
dm_status dm_trainer_check(const dm_spec *spec, char *err);

/* The shape of the network spec builds: the data's dimension and item shape, its outputs (the
 * classes of a classifier; 2 dim with a learned variance), its classes if conditional. */
void dm_trainer_net_cfg(const dm_spec *spec, dm_net_cfg *cfg);

/* Build data, model, optimizer and streams; record seeds and data provenance in rec. */
dm_status dm_trainer_init(dm_trainer *tr, const dm_spec *spec, dm_runrec *rec, char *err);
void dm_trainer_free(dm_trainer *tr);

/* One optimizer step. loss and grad_norm (before clipping) of the step. DM_E_NUMERIC if the loss
 * or gradient is not finite (the parameters are then left as they were before the step). */
dm_status dm_trainer_step(dm_trainer *tr, double *loss, double *grad_norm, char *err);

/* The run has something to train (not an analytic model). */
static inline int dm_trainer_trains(const dm_trainer *tr) { return !tr->analytic; }

/* The model as a denoiser: the mixture's exact one (analytic), or the network with its EMA
 * (use_ema) or training weights. */
typedef struct dm_model_denoiser {
    dm_gmm_denoiser gd;
    dm_net_denoiser nd;
    int net;
    dm_denoiser inner; /* the model; the caller's denoiser forwards to it, adding each call's */
    dm_phase *phase;   /* items to the trainer's open phase (progress) */
} dm_model_denoiser;
dm_status dm_model_denoiser_init(dm_trainer *tr, size_t batch, int use_ema, dm_model_denoiser *md,
                                 dm_denoiser *den, char *err);
void dm_model_denoiser_free(dm_model_denoiser *md);

/* The samples are class-conditional: the model is conditional or guidance is on. */
int dm_trainer_samples_conditional(const dm_trainer *tr);
/* The class of sample i of a class-conditional sample set: i mod n_classes (balanced, the same for
 * every sampler and run of a dataset). */
static inline int32_t dm_trainer_sample_class(const dm_trainer *tr, size_t i)
{
    return (int32_t)(i % tr->n_classes);
}

/* Draw eval.n_samples samples with the spec's sampler (EMA weights if eval.use_ema) and guidance
 * into x (n, dim), noise from the per-sample streams of the run's eval stream; sample i of a
 * class-conditional set has class dm_trainer_sample_class(i). */
dm_status dm_trainer_sample(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                            float *x, int64_t *nfe, char *err);

/* Classifier guidance by a classifier run: its classifier (borrowed; same dimension and classes,
 * max_batch >= eval.batch). Before sampling. */
dm_status dm_trainer_set_classifier(dm_trainer *tr, const dm_classifier *clf, char *err);

/* The PF-ODE log-likelihood (eval/nll.h: exact divergence up to 2-D, Hutchinson's estimate with
 * probes from stream "eval.hutchinson" of eval.seed above) of the first eval.nll_n reference
 * points under the model (EMA weights if eval.use_ema): the mean negative log-likelihood in nats
 * per point. */
dm_status dm_trainer_nll(dm_trainer *tr, double *nll, int64_t *nfe, char *err);
/* Where that likelihood starts: t = DM_NLL_EPS (1e-5), or with eval.nll_sigma > 0 the time at
 * which sigma/alpha = eval.nll_sigma (the same blur of the data for every schedule). DM_E_INPUT
 * naming eval.nll_sigma when the schedule does not reach it. */
dm_status dm_trainer_nll_start(const dm_trainer *tr, double *eps, char *err);

/* The reverse-process variance of the model's DDPM bound (eval.nll on a discrete schedule): the
 * spec's ddpm sampler's variance; else the loss's (learned, or the vlb loss's fixed one); else beta. */
int dm_trainer_reverse_variance(const dm_trainer *tr);

/* The DDPM variational bound of the first eval.nll_n reference points (discrete schedules;
 * eval/vlb.h): the mean bound in nats per point, and T (the evaluations per point). */
dm_status dm_trainer_vlb(dm_trainer *tr, double *vlb, int64_t *nfe, char *err);

/* Checkpoint state: the entries point into the trainer (valid until the next step). At most
 * DM_TRAIN_CKPT_ENTRIES entries. */
enum { DM_TRAIN_CKPT_ENTRIES = 16 };
dm_status dm_trainer_ckpt_entries(dm_trainer *tr, dm_ckpt *c, void *rng_buf, char *err);
/* Restore from a checkpoint read with dm_ckpt_read. */
dm_status dm_trainer_restore(dm_trainer *tr, const dm_ckpt *c, char *err);

/* CD: the teacher's denoiser (borrowed; its max_batch >= train.batch, time = sigma) and, for
 * distill.init_from_teacher, its network and EMA weights to start from (same shape). Before the
 * first step. */
dm_status dm_trainer_set_teacher(dm_trainer *tr, const dm_denoiser *teacher, const dm_net *net, const float *weights,
                                 char *err);

/* DM_E_NUMERIC naming the block, step and entry if a parameter or EMA value is NaN or Inf. */
dm_status dm_trainer_params_finite(const dm_trainer *tr, char *err);

/* SHA-256 hex of the final parameter bytes followed by the EMA bytes (float32, little-endian). */
void dm_trainer_params_sha256(const dm_trainer *tr, char hex[65]);

#endif
