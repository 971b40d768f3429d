/* losses.h — the loss plug-ins and their options structs. */
#ifndef DM_DIFFUSION_LOSSES_H
#define DM_DIFFUSION_LOSSES_H

#include "diffusion/loss.h"

enum { DM_MSE_EPS = 0, DM_MSE_X0 = 1 };
typedef struct dm_mse_opts {
    int target;   /* DM_MSE_EPS, DM_MSE_X0 */
} dm_mse_opts;

extern const dm_loss_ops dm_loss_mse;

#endif
