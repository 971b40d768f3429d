/* model_err.h — the model's error against the exact denoiser, by noise level: where two trained
 * models differ, not only what their samples show.
 *
 *   model_err(sigma/alpha) = mean over i of |D_theta(x_i, t) - D*(x_i, t)|^2 / d,
 *   x_i = alpha(t) x0_i + sigma(t) eps_i,
 * with D* the exact denoiser E[x0 | x_t] of the data's Gaussian mixture (diffusion/denoiser_gmm.h)
 * and t the schedule's time of the level sigma/alpha. A noise level is named by sigma/alpha, the
 * quantity every schedule shares (x_t / alpha = x0 + (sigma/alpha) eps), so models on different
 * schedules compare at the same level. Both denoisers see the same (x, t, labels); the mean is
 * taken in index order in double, so the value does not depend on batching or the thread count.
 * Computes and returns; the caller records (train/record.h). */
#ifndef DM_EVAL_MODEL_ERR_H
#define DM_EVAL_MODEL_ERR_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "diffusion/denoiser.h"
#include "diffusion/schedule.h"

/* The time of the noise level `level` = sigma/alpha. Continuous schedules: the t in
 * [t_min, t_max] where sigma(t)/alpha(t) = level (dm_schedule_t_at_ratio); *actual = level. Discrete schedules: the step nearest in log sigma/alpha,
 * *actual = its sigma/alpha. DM_E_INPUT naming `key` and the schedule's range when the level lies
 * outside [sigma/alpha(t_min), sigma/alpha(t_max)] (continuous), or no step is within a factor 2
 * of it (discrete). */
dm_status dm_model_err_time(const dm_schedule *s, double level, const char *key, double *t, double *actual,
                            char *err);

/* model_err at time t of schedule s: x0 (n, d) clean points, eps (n, d) their noise, y (n) labels
 * handed to both denoisers (NULL: unconditional). model and exact must have dim d. */
dm_status dm_model_err(const dm_denoiser *model, const dm_denoiser *exact, const dm_schedule *s, double t,
                       const float *x0, const float *eps, const int32_t *y, size_t n, double *out, char *err);

#endif
