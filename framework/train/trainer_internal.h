/* trainer_internal.h — what the trainer's own files share; included only by train/trainer*.c.
 *
 * trainer_cm.c: the trainer's step for consistency models (diffusion.loss ct, ict, cd).
 *
 * Per step k of K: the grid sigma_0 < ... < sigma_{N-1} (Karras, the schedule's sigma_min and
 * sigma_max, the loss's rho) with N = N(k) (CT, iCT curricula; CD: fixed n); per row an index i
 * (CT, CD uniform on 0..N-2; iCT lognormal, diffusion/consistency.h) from stream train.t and one
 * noise draw z from train.noise; the student sees x0 + sigma_{i+1} z, the target
 *   CT, iCT  x0 + sigma_i z                         (the same z)
 *   CD       one Euler or Heun step of the teacher's PF-ODE dx/dsigma = (x - D(x; sigma))/sigma
 *            from the student's point down to sigma_i
 * and the loss is lambda_i d(f_theta(x_s, sigma_{i+1}), f_target(x_t, sigma_i)) with the target
 * network's weights: CT an EMA with rate mu(k) (consistency.h), CD with mu > 0 an EMA with rate
 * mu, iCT and CD with mu = 0 the student's own weights with the gradient stopped. lambda is 1 (CT,
 * CD) or 1/(sigma_{i+1} - sigma_i) (iCT). f = c_skip x + c_out F (the consistency
 * parameterization), so dL/dF = lambda c_out grad d / B. The eval EMA (train.ema_decay) is kept
 * as for every method. */
#ifndef DM_TRAIN_TRAINER_INTERNAL_H
#define DM_TRAIN_TRAINER_INTERNAL_H

#include "train/trainer.h"

/* A training forward of the network with weights w: dropout on, its per-item streams derived
 * from (train.dropout, step), so a step's masks depend only on the seed and the step (a resumed
 * run draws the same) and every forward of one step (the consistency target's and the student's)
 * draws the same masks, as openai/consistency_models does by restoring the RNG state. */
static inline void dm_trainer_net_forward(dm_trainer *tr, const float *w, int n, const float *x, const float *tin,
                                          const int32_t *y, float *out)
{
    tr->ws.train = 1;
    tr->ws.noise_seed = dm_seed_index(tr->dropout_seed, (uint64_t)tr->step);
    dm_net_forward(&tr->net, w, &tr->ws, n, x, tin, y, out);
    tr->ws.train = 0;
}

/* Buffers and the target network (a copy of the parameters). Called by dm_trainer_init. */
dm_status dm_cm_init(dm_trainer *tr, char *err);
void dm_cm_free(dm_trainer *tr);

/* Draw the batch, run target and student forward, write the loss and tr->dF (the student's
 * forward is the last, so a backward follows). DM_E_INPUT if CD has no teacher. */
dm_status dm_cm_forward_loss(dm_trainer *tr, double *loss, char *err);

/* After the optimizer step: move the target EMA (CT, CD with mu > 0). */
void dm_cm_after_step(dm_trainer *tr);

/* The number of grid points at the trainer's current step, and the target EMA rate. */
int dm_cm_n_points(const dm_trainer *tr);
double dm_cm_target_mu(const dm_trainer *tr);

#endif
