/* fd.c — the Fréchet distance (fd.h). */
#include "eval/fd.h"

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_matrix.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"

/* Largest feature dimension accepted: d^2 doubles per matrix. */
#define FD_MAX_DIM 4096

/* Eigenvalues (and vectors, if V) of the symmetric A (d, d), which is destroyed. */
static int eig_symm(gsl_matrix *A, gsl_vector *eval, gsl_matrix *V)
{
    const size_t d = A->size1;
    int rc;
    if (V) {
        gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc(d);
        if (!w)
            return -1;
        rc = gsl_eigen_symmv(A, eval, V, w);
        gsl_eigen_symmv_free(w);
    } else {
        gsl_eigen_symm_workspace *w = gsl_eigen_symm_alloc(d);
        if (!w)
            return -1;
        rc = gsl_eigen_symm(A, eval, w);
        gsl_eigen_symm_free(w);
    }
    return rc;
}

dm_status dm_fd_gaussians(const double *mu1, const double *S1, const double *mu2, const double *S2, size_t d,
                          double *fd, char *err)
{
    if (d < 1 || d > FD_MAX_DIM)
        return dm_err(err, DM_E_INPUT, "fd: feature dimension %zu is outside 1..%d", d, FD_MAX_DIM);
    dm_status st = DM_OK;
    /* GSL's default handler aborts on a failed allocation: its errors come back as codes here. */
    gsl_error_handler_t *handler = gsl_set_error_handler_off();
    gsl_matrix *A = gsl_matrix_alloc(d, d), *V = gsl_matrix_alloc(d, d), *R = gsl_matrix_alloc(d, d),
               *T = gsl_matrix_alloc(d, d);
    gsl_vector *ev = gsl_vector_alloc(d);
    if (!A || !V || !R || !T || !ev) {
        st = dm_err(err, DM_E_NOMEM, "fd: out of memory for %zux%zu matrices", d, d);
        goto out;
    }
    /* R = S1^(1/2) = V diag(sqrt(max(lambda, 0))) V^T */
    memcpy(A->data, S1, sizeof(double) * d * d);
    if (eig_symm(A, ev, V)) {
        st = dm_err(err, DM_E_NUMERIC, "fd: the eigensolver failed on the first covariance");
        goto out;
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = 0.0;
            for (size_t k = 0; k < d; k++)
                s += gsl_matrix_get(V, i, k) * sqrt(fmax(gsl_vector_get(ev, k), 0.0)) * gsl_matrix_get(V, j, k);
            gsl_matrix_set(R, i, j, s);
        }
    /* T = S2 R, then A = R T (symmetrized against rounding) */
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = 0.0;
            for (size_t k = 0; k < d; k++)
                s += S2[i * d + k] * gsl_matrix_get(R, k, j);
            gsl_matrix_set(T, i, j, s);
        }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = 0.0;
            for (size_t k = 0; k < d; k++)
                s += gsl_matrix_get(R, i, k) * gsl_matrix_get(T, k, j);
            gsl_matrix_set(A, i, j, s);
        }
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++) {
            const double s = 0.5 * (gsl_matrix_get(A, i, j) + gsl_matrix_get(A, j, i));
            gsl_matrix_set(A, i, j, s);
            gsl_matrix_set(A, j, i, s);
        }
    if (eig_symm(A, ev, NULL)) {
        st = dm_err(err, DM_E_NUMERIC, "fd: the eigensolver failed on S1^(1/2) S2 S1^(1/2)");
        goto out;
    }
    double dm2 = 0.0, tr = 0.0, trsqrt = 0.0;
    for (size_t i = 0; i < d; i++) {
        dm2 += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
        tr += S1[i * d + i] + S2[i * d + i];
        trsqrt += sqrt(fmax(gsl_vector_get(ev, i), 0.0));
    }
    *fd = dm2 + tr - 2.0 * trsqrt;
out:
    gsl_set_error_handler(handler);
    gsl_matrix_free(A);
    gsl_matrix_free(V);
    gsl_matrix_free(R);
    gsl_matrix_free(T);
    gsl_vector_free(ev);
    return st;
}

/* Mean (d) and covariance (d, d; n - 1 divisor) of x (n, d), in double. */
static void moments(const float *x, size_t n, size_t d, double *mu, double *S)
{
    memset(mu, 0, sizeof(double) * d);
    memset(S, 0, sizeof(double) * d * d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mu[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; a < d; a++) {
            const double ea = x[i * d + a] - mu[a];
            for (size_t b = a; b < d; b++)
                S[a * d + b] += ea * (x[i * d + b] - mu[b]);
        }
    for (size_t a = 0; a < d; a++)
        for (size_t b = a; b < d; b++)
            S[b * d + a] = S[a * d + b] /= (double)(n - 1);
}

dm_status dm_fd(const float *x, size_t n, const float *y, size_t m, size_t d, double *fd, char *err)
{
    if (n < 2 || m < 2)
        return dm_err(err, DM_E_INPUT, "fd: needs at least 2 points per set (got %zu and %zu)", n, m);
    if (d < 1 || d > FD_MAX_DIM)
        return dm_err(err, DM_E_INPUT, "fd: feature dimension %zu is outside 1..%d", d, FD_MAX_DIM);
    double *mu1 = dm_malloc(sizeof(double) * d), *mu2 = dm_malloc(sizeof(double) * d);
    double *S1 = dm_malloc(sizeof(double) * d * d), *S2 = dm_malloc(sizeof(double) * d * d);
    dm_status st;
    if (!mu1 || !mu2 || !S1 || !S2) {
        st = dm_err(err, DM_E_NOMEM, "fd: out of memory for the moments of %zu features", d);
    } else {
        moments(x, n, d, mu1, S1);
        moments(y, m, d, mu2, S2);
        st = dm_fd_gaussians(mu1, S1, mu2, S2, d, fd, err);
    }
    dm_free(mu1);
    dm_free(mu2);
    dm_free(S1);
    dm_free(S2);
    return st;
}
