/* loss.h — training losses: a weighted squared error whose gradient with respect to the network
 * output F the trainer back-propagates.
 *
 * The loss sees one batch: x_t, the network output F, the clean x0 and noise eps that made x_t,
 * and each row's time and coefficients. It returns the batch loss (a mean, accumulated in double
 * in row order) and writes dL/dF.
 *
 * A loss that learns the DDPM reverse variance (variance() returns DM_VAR_LEARNED) has a network
 * of 2 d outputs per row: F's first d columns are the parameterization's output, the last d the
 * variance interpolation (diffusion/ddpm_step.h). A loss whose importance_t() is 1 has the trainer
 * draw t by importance sampling and pass the rows' weights w and collect row_loss. */
#ifndef DM_DIFFUSION_LOSS_H
#define DM_DIFFUSION_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/status.h"
#include "diffusion/param.h"
#include "diffusion/schedule.h"

typedef struct dm_loss_batch {
    size_t n, d;
    const float *x_t;             /* (n, d) */
    const float *F;               /* (n, d) network output */
    const float *x0;              /* (n, d) */
    const float *eps;             /* (n, d) */
    const double *t;              /* (n) */
    const double *alpha, *sigma;  /* (n) */
    const dm_param_coef *coef;    /* (n) */
    const dm_schedule *sched;     /* for weightings that need more than alpha, sigma (g^2) */
    double sigma_data;            /* the data's standard deviation (EDM weighting) */
    size_t f_cols;                /* columns of F and dF: d, or 2 d for a learned variance */
    const double *w;              /* (n) importance weights of the rows' times; NULL: all 1 */
    double *row_loss;             /* (n) out, may be NULL: each row's loss before w (t-sampler history) */
    const int32_t *y;             /* (n) the rows' class labels (the classifier loss reads them) */
    size_t n_classes;
} dm_loss_batch;

typedef struct dm_loss_ops {
    dm_plugin info;
    /* DM_E_INPUT if the loss cannot be used with this schedule / parameterization. */
    dm_status (*check)(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err);
    /* Returns the loss; writes dF (n, d). NULL for the consistency losses (see `consistency`). */
    double (*eval)(const void *opts, const dm_loss_batch *b, float *dF);
    /* Optional: the reverse-process variance the loss trains the model for (DM_VAR_BETA,
     * DM_VAR_BETA_TILDE, DM_VAR_LEARNED), or -1 when it defines none (NULL: -1). */
    int (*variance)(const void *opts);
    /* Optional: 1 if training times are drawn by importance sampling (NULL: 0). */
    int (*importance_t)(const void *opts);
    /* Optional: 1 if the network trains on the clean data (no noise: x_t = x0, c_in 1, c_noise 0;
     * a classifier of clean items) (NULL: 0). */
    int (*clean)(const void *opts);
    /* A consistency loss (DM_CM_KIND_CT, _ICT, _CD; 0 for the others): the trainer runs its
     * consistency step (train/trainer_cm.c) instead of one forward pass and eval. */
    int consistency;
    /* 1: a classifier loss (xent): the network outputs n_classes logits of p(y | x_t), f_cols
     * = n_classes, and the run trains a noisy classifier instead of a denoiser. */
    int classifier;
} dm_loss_ops;

enum { DM_CM_KIND_CT = 1, DM_CM_KIND_ICT = 2, DM_CM_KIND_CD = 3 };

static inline int dm_loss_variance(const dm_loss_ops *l, const void *opts)
{
    return l->variance ? l->variance(opts) : -1;
}
static inline int dm_loss_clean(const dm_loss_ops *l, const void *opts)
{
    return l->clean ? l->clean(opts) : 0;
}
static inline int dm_loss_importance_t(const dm_loss_ops *l, const void *opts)
{
    return l->importance_t ? l->importance_t(opts) : 0;
}

extern const dm_plugin *const dm_loss_registry[];

#endif
