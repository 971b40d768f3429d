/* posterior.h — how un-unique denoising is: statistics of the exact posterior p(x0 | x_t) of a
 * Gaussian mixture (FORMULAS.md: itself a mixture sum_k r_k N(m_k, v_k I)) at one time.
 *
 * For n clean points x0_i, x_t,i = alpha x0_i + sigma eps_i (eps from rng), and means over i of:
 *   std        sqrt(tr Cov[x0 | x_t] / d): the posterior's spread,
 *              Cov = sum_k r_k (v_k I + (m_k - D)(m_k - D)^T), D = E[x0 | x_t]
 *   modes      exp(H(r)): the effective number of components the posterior covers
 *   modes90    the fewest components that hold 90% of its mass
 *   gap_data   |D - nearest point of the data set|: how far the denoiser's answer (what training
 *              regresses to) sits from any data point
 *   gap_mode   |D - nearest component mean| / that component's std
 *   err        |D - x0_i|: the distance from the answer to the clean point that made x_t
 * As t -> 0 the posterior collapses onto x0 (std, gaps and err -> 0, modes -> 1); at large t it
 * is the data distribution itself and D its mean, far from every data point. */
#ifndef DM_EVAL_POSTERIOR_H
#define DM_EVAL_POSTERIOR_H

#include <stddef.h>

#include "core/rng.h"
#include "core/status.h"
#include "data/dataset.h"

typedef struct dm_posterior_stats {
    double std, modes, modes90, gap_data, gap_mode, err;
} dm_posterior_stats;

/* x0 (n, d) clean points, data (nd, d) the data set for gap_data; noise from rng (n d normals, in
 * row order). */
dm_status dm_posterior_stats_at(const dm_gmm *g, double alpha, double sigma, const float *x0, size_t n,
                                const float *data, size_t nd, dm_rng *rng, dm_posterior_stats *out, char *err);

/* m draws from the exact posterior p(x0 | x_t = x) (x: d values) into out (m, d). */
void dm_posterior_draw(const dm_gmm *g, double alpha, double sigma, const double *x, size_t m, dm_rng *rng,
                       float *out);

#endif
