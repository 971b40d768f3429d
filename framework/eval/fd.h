/* fd.h — the Fréchet distance between two sets of feature vectors, each taken as a Gaussian
 * (Heusel et al. 2017, the formula of FID; issue 17). difflab's image metric `fd` is this distance
 * in the feature space of a feature network difflab trains itself, not FID's Inception space.
 *
 *   fd = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2),
 *   tr (S1 S2)^(1/2) = sum_i sqrt(max(0, lambda_i)),  lambda = eig(S1^(1/2) S2 S1^(1/2)),
 *
 * where S1^(1/2) is the symmetric square root of S1 (eigenvalues clipped at 0) and the eigenvalues
 * come from GSL's symmetric eigensolver: S1 S2 itself is not symmetric, but S1^(1/2) S2 S1^(1/2)
 * is, and has the same eigenvalues. Means and covariances in double; covariances with the n - 1
 * divisor (numpy's cov, as pytorch-fid). */
#ifndef DM_EVAL_FD_H
#define DM_EVAL_FD_H

#include <stddef.h>

#include "core/status.h"

/* fd of two Gaussians: means mu (d), covariances S (d, d) row-major, symmetric. */
dm_status dm_fd_gaussians(const double *mu1, const double *S1, const double *mu2, const double *S2, size_t d,
                          double *fd, char *err);

/* fd of two sets: x (n, d) and y (m, d), n, m >= 2. */
dm_status dm_fd(const float *x, size_t n, const float *y, size_t m, size_t d, double *fd, char *err);

#endif
