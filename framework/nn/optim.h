/* optim.h — Adam / AdamW, EMA of parameters, gradient-norm clipping, on flat float32 blocks.
 *
 * Adam follows torch.optim.Adam (bias-corrected moments, eps added to sqrt(v_hat)); AdamW adds
 * decoupled weight decay p -= lr*wd*p before the update. Norms accumulate in double over fixed
 * chunks summed in order, so they do not depend on the thread count. */
#ifndef DM_NN_OPTIM_H
#define DM_NN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dm_adam {
    size_t n;
    double lr, beta1, beta2, eps, weight_decay; /* weight_decay > 0: AdamW (decoupled) */
    int64_t t;          /* steps taken */
    float *m, *v;       /* (n) moments, one block each */
} dm_adam;

dm_status dm_adam_init(dm_adam *a, size_t n, double lr, double beta1, double beta2, double eps,
                       double weight_decay, char *err);
void dm_adam_free(dm_adam *a);
/* One step with learning rate lr (the caller's schedule). */
void dm_adam_step(dm_adam *a, float *params, const float *grads, double lr);

/* ema = decay*ema + (1 - decay)*p */
void dm_ema_update(float *ema, const float *p, size_t n, double decay);

/* L2 norm of g in double, fixed order. */
double dm_l2_norm(const float *g, size_t n);
/* Scale g so its norm is at most max_norm (no-op if max_norm <= 0); returns the norm before. */
double dm_clip_grad_norm(float *g, size_t n, double max_norm);

#endif
