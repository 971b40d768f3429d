/* record.h — sampling and evaluating a trained (or analytic) model, recorded as evals of its run.
 *
 * dm_sample_record draws eval.n_samples points with a sampler, stores them as
 * /samples/<sampler>_<nfe> with the sampler's settings, and adds the evals "swd" and "mmd2"
 * against the reference set (eval/evaluate.h computes them, this module records them), "mmd2_ms"
 * (eval/mmd_scale.h; its bandwidths appended to its settings as "mmd_h") and, on mixture data,
 * "data_nll", "in_mode99", "mode_recall", "mode_chi2" (eval/mixture_metrics.h); with
 * `baseline` it first records the same metrics for the sampler's initial noise (sampler "noise",
 * nfe 0). The common random numbers (DESIGN.md) make every sampler of one run start from the same
 * noise. With eval.ode_err (deterministic samplers on continuous schedules, checked by
 * dm_trainer_check) it also adds "ode_err" and "ode_err_median" (eval/ode_err.h) against the
 * PF-ODE reference (diffusion/ode_ref.h), stored once per span, weights, guidance and n as the
 * sample set /samples/ode_ref_<nfe> and reused from the record by later samplers of the run.
 * Pictures go next to run.h5; the record is written by the caller. */
#ifndef DM_TRAIN_RECORD_H
#define DM_TRAIN_RECORD_H

#include "eval/evaluate.h"
#include "io/runrec.h"
#include "train/trainer.h"

/* pic_dir: where to write the set's picture (NULL: none): <set name>.svg, a scatter over the
 * reference data (io/plot.h), for 2-D data; <set name>.png, a grid of the first 64, for images. set_name (256 bytes,
 * may be NULL) receives the sample set's name (runrec.h). */
dm_status dm_sample_record(dm_trainer *tr, const dm_sampler_ops *sampler, const void *sopts,
                           dm_runrec *rec, int baseline, const char *pic_dir, dm_eval_result *res,
                           int64_t *nfe, char *set_name, char *err);

/* If eval.nll: the PF-ODE negative log-likelihood of the reference points, recorded as evals
 * "nll" (nats per point) and "bpd" (bits per dimension), sampler "pf_ode". */
dm_status dm_nll_record(dm_trainer *tr, dm_runrec *rec, char *err);

/* A classifier run (diffusion.loss xent): its accuracy and cross-entropy on the reference points
 * noised at up to five times of the schedule (its 4-step sampling grid with the clean end replaced
 * by the smallest time, duplicates dropped; noise from stream "eval.classifier" of eval.seed), recorded as evals
 * "accuracy" and "xent", sampler "classifier", nfe 0, settings {"t": time}. A classifier of clean
 * items (xent clean) gets one row of each on the clean reference points, settings {"clean": true}. */
dm_status dm_classifier_record(dm_trainer *tr, dm_runrec *rec, char *err);

/* If eval.posterior (mixture data): statistics of the exact posterior p(x0 | x_t) of the first
 * eval.nll_n reference points at eval.posterior_levels times (eval/posterior.h), recorded as evals
 * post_std, post_modes, post_modes90, gap_data, gap_mode, denoise_err (sampler "posterior", nfe 0,
 * settings {"t", "sigma": sigma/alpha}); noise from stream "eval.posterior" of the run's seed. With
 * pic_dir and 2-D data, posterior_<level>.svg: draws from the posterior of one noisy point over the
 * reference data. */
dm_status dm_posterior_record(dm_trainer *tr, dm_runrec *rec, const char *pic_dir, char *err);

/* If eval.model_err (mixture data): at each level sigma/alpha of eval.model_err_levels, the mean
 * |D_theta - D*|^2 / d of the model's denoiser (EMA weights if eval.use_ema) against the exact
 * one on the first eval.nll_n reference points noised at that level (eval/model_err.h; one noise
 * draw from stream "eval.model_err" of eval.seed serves every level and every run), recorded as
 * eval "model_err", sampler "model", nfe 0, settings {"t", "sigma": sigma/alpha}. A conditional
 * model is compared with the reference points' classes. */
dm_status dm_model_err_record(dm_trainer *tr, dm_runrec *rec, char *err);

#endif
