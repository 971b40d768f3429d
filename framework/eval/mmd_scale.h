/* mmd_scale.h — MMD^2 at the data's scale ("mmd2_ms"): one kernel made of DM_MMD_SCALES RBF
 * bandwidths spaced geometrically from the data's finest scale to its global one, so that blur
 * within a mode is seen as well as misplaced mass between modes.
 *
 *   mmd2_ms = (1/B) sum_b MMD^2_u(k_b) / kappa_b,   k_b(x, y) = exp(-|x - y|^2 / (2 h_b^2)),
 *   kappa_b = E k_b(x, x') over two independent data points,
 * i.e. the unbiased MMD^2 (Gretton et al. 2012, eq. 3) with the kernel (1/B) sum_b k_b / kappa_b,
 * a positive combination of RBFs (characteristic). Dividing by kappa_b puts every scale on the
 * same footing: without it the global-scale terms, whose values are largest, carry the mode-weight
 * noise of every set and drown the fine scales, where blur within a mode shows (8 Gaussians,
 * n = 1000, std x 1.5: blurred value / exact-vs-exact spread 5.6 with it, 2.6 without, 0.4 for the
 * median-heuristic mmd2). The value is the MMD^2 relative to the data's own kernel mass: 0 in
 * expectation for perfect samples, up to about 2 for disjoint sets.
 *
 * The kernel comes from the data set alone, never from a run's samples:
 *   Gaussian mixture (exact): h_lo = sqrt(d / 2) min_k s_k (the component std in 2-D, scaled so
 *     that a component's pairs keep kernel values near e^-2 in any dimension); h_hi =
 *     sqrt(2 tr Cov[x]), tr Cov = sum_k w_k (d s_k^2 + |mu_k - mean|^2), the RMS distance between
 *     two data points (8 Gaussians of radius 2, std 0.1: 0.1 to 2.84; mmd2's median heuristic is
 *     about 2.8); kappa_b = sum_kl w_k w_l (h^2 / (h^2 + v))^(d/2) exp(-|mu_k - mu_l|^2 / (2 (h^2 +
 *     v))), v = s_k^2 + s_l^2, in closed form;
 *   other data: h_hi = sqrt(2 tr Cov) of the reference set (two passes, index order), h_lo =
 *     h_hi / 16; kappa_b the mean kernel value over the pairs of the first min(n_ref, 1000)
 *     reference points (index order, double, libm exp).
 * Bandwidths and kappas are rounded to 3 significant digits before use, so the values recorded
 * in the eval's settings ("mmd_h", "mmd_kappa") are exactly those used, and are equal for every
 * run of one mixture (for other data, for runs with the same reference set). Runs compare on
 * mmd2_ms only when these agree; the old "mmd2" (one median-heuristic bandwidth, metrics.h) is
 * unchanged. */
#ifndef DM_EVAL_MMD_SCALE_H
#define DM_EVAL_MMD_SCALE_H

#include <stddef.h>

#include "core/status.h"
#include "data/dataset.h"

enum { DM_MMD_SCALES = 5 };

typedef struct dm_mmd_kernel {
    double h[DM_MMD_SCALES];       /* bandwidths, increasing */
    double kappa[DM_MMD_SCALES];   /* the data's mean kernel value at each */
} dm_mmd_kernel;

/* The kernel of a data set: from the mixture g when not NULL, else from ref (n_ref, d). */
dm_status dm_mmd_kernel_of(const dm_gmm *g, const float *ref, size_t n_ref, size_t d, dm_mmd_kernel *k, char *err);

/* mmd2_ms of a (na, d) and b (nb, d) under kernel k (dm_mmd2_unbiased_multi, one pass). */
dm_status dm_mmd2_ms(const float *a, size_t na, const float *b, size_t nb, size_t d, const dm_mmd_kernel *k,
                     double *out, char *err);

#endif
