/* loss.h — training losses: a weighted squared error whose gradient with respect to the network
 * output F the trainer back-propagates.
 *
 * The loss sees one batch: x_t, the network output F, the clean x0 and noise eps that made x_t,
 * and each row's time and coefficients. It returns the batch loss (a mean, accumulated in double
 * in row order) and writes dL/dF. */
#ifndef DM_DIFFUSION_LOSS_H
#define DM_DIFFUSION_LOSS_H

#include <stddef.h>

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
} dm_loss_batch;

typedef struct dm_loss_ops {
    dm_plugin info;
    /* DM_E_INPUT if the loss cannot be used with this schedule / parameterization. */
    dm_status (*check)(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err);
    /* Returns the loss; writes dF (n, d). */
    double (*eval)(const void *opts, const dm_loss_batch *b, float *dF);
} dm_loss_ops;

extern const dm_plugin *const dm_loss_registry[];

#endif
