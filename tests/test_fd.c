/* test_fd.c — the Fréchet distance (eval/fd.h) against exact answers: a set with itself is 0; two
 * Gaussians with non-commuting 2x2 covariances give the closed form
 * tr (S1 S2)^(1/2) = sqrt(tr S1 S2 + 2 sqrt(det S1 det S2)); in 6 dimensions the trace equals the
 * sum of the square roots of the (real, positive) eigenvalues of the non-symmetric S1 S2 from
 * GSL's non-symmetric solver (a second route); sample moments converge to the Gaussians' value. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_complex.h>
#include <gsl/gsl_complex_math.h>
#include <gsl/gsl_eigen.h>

#include "core/rng.h"
#include "eval/fd.h"

static void test_self_is_zero(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { N = 400, D = 16 };
    float *x = malloc(sizeof(float) * N * D);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 3, err), DM_OK);
    for (int i = 0; i < N * D; i++)
        x[i] = (float)(dm_rng_normal(&rng) * (1 + i % D) + 0.5 * (i % 3));
    double fd;
    assert_int_equal(dm_fd(x, N, x, N, D, &fd, err), DM_OK);
    assert_true(fabs(fd) < 1e-8 * D * 100);
    free(x);
    dm_rng_free(&rng);
}

static void test_closed_form_2x2(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    /* S1 S2 != S2 S1 */
    const double mu1[2] = { 0.3, -1.0 }, mu2[2] = { 1.1, 0.4 };
    const double S1[4] = { 2.0, 0.7, 0.7, 1.0 }, S2[4] = { 0.5, -0.3, -0.3, 3.0 };
    double P[4], Q[4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            P[i * 2 + j] = S1[i * 2] * S2[j] + S1[i * 2 + 1] * S2[2 + j];
            Q[i * 2 + j] = S2[i * 2] * S1[j] + S2[i * 2 + 1] * S1[2 + j];
        }
    assert_true(fabs(P[1] - Q[1]) > 0.1);
    const double det1 = S1[0] * S1[3] - S1[1] * S1[2], det2 = S2[0] * S2[3] - S2[1] * S2[2];
    const double trsqrt = sqrt(P[0] + P[3] + 2.0 * sqrt(det1 * det2));
    const double dmu = (mu1[0] - mu2[0]) * (mu1[0] - mu2[0]) + (mu1[1] - mu2[1]) * (mu1[1] - mu2[1]);
    const double want = dmu + S1[0] + S1[3] + S2[0] + S2[3] - 2.0 * trsqrt;
    double fd;
    assert_int_equal(dm_fd_gaussians(mu1, S1, mu2, S2, 2, &fd, err), DM_OK);
    if (fabs(fd - want) > 1e-12 * fabs(want))
        fail_msg("fd %.17g, closed form %.17g", fd, want);
    /* symmetric in its arguments */
    double back;
    assert_int_equal(dm_fd_gaussians(mu2, S2, mu1, S1, 2, &back, err), DM_OK);
    assert_true(fabs(back - fd) < 1e-12 * fabs(fd));
}

/* A random symmetric positive definite matrix A A^T / d + 0.1 I. */
static void spd(dm_rng *rng, size_t d, double *S)
{
    double A[64];
    for (size_t i = 0; i < d * d; i++)
        A[i] = dm_rng_normal(rng);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = i == j ? 0.1 : 0.0;
            for (size_t k = 0; k < d; k++)
                s += A[i * d + k] * A[j * d + k] / (double)d;
            S[i * d + j] = s;
        }
}

static void test_nonsymmetric_route(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    enum { D = 6 };
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    double S1[D * D], S2[D * D], P[D * D], mu[D] = { 0 };
    spd(&rng, D, S1);
    spd(&rng, D, S2);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += S1[i * D + k] * S2[k * D + j];
            P[i * D + j] = s;
        }
    gsl_matrix_view pv = gsl_matrix_view_array(P, D, D);
    gsl_vector_complex *ev = gsl_vector_complex_alloc(D);
    gsl_eigen_nonsymm_workspace *w = gsl_eigen_nonsymm_alloc(D);
    assert_int_equal(gsl_eigen_nonsymm(&pv.matrix, ev, w), 0);
    double trsqrt = 0, tr = 0;
    for (int i = 0; i < D; i++) {
        gsl_complex z = gsl_vector_complex_get(ev, i);
        assert_true(fabs(GSL_IMAG(z)) < 1e-9 && GSL_REAL(z) > 0);
        trsqrt += sqrt(GSL_REAL(z));
        tr += S1[i * D + i] + S2[i * D + i];
    }
    gsl_eigen_nonsymm_free(w);
    gsl_vector_complex_free(ev);
    double fd;
    assert_int_equal(dm_fd_gaussians(mu, S1, mu, S2, D, &fd, err), DM_OK);
    if (fabs(fd - (tr - 2 * trsqrt)) > 1e-10 * tr)
        fail_msg("fd %.17g, by the eigenvalues of S1 S2 %.17g", fd, tr - 2 * trsqrt);
    dm_rng_free(&rng);
}

/* Samples of N(0, S1) and N(m, S2) by Cholesky-free means (x = L z with L lower from S by hand
 * for 2x2): the sample fd approaches the Gaussians' as n grows. */
static void test_sample_moments(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const double S1[4] = { 2.0, 0.7, 0.7, 1.0 }, S2[4] = { 0.5, -0.3, -0.3, 3.0 };
    const double mu1[2] = { 0, 0 }, mu2[2] = { 1.0, -0.5 };
    double want;
    assert_int_equal(dm_fd_gaussians(mu1, S1, mu2, S2, 2, &want, err), DM_OK);
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N * 2), *y = malloc(sizeof(float) * N * 2);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 5, err), DM_OK);
    const double *S[2] = { S1, S2 }, *mu[2] = { mu1, mu2 };
    float *out[2] = { x, y };
    for (int s = 0; s < 2; s++) {
        const double l11 = sqrt(S[s][0]), l21 = S[s][2] / l11, l22 = sqrt(S[s][3] - l21 * l21);
        for (int i = 0; i < N; i++) {
            const double z1 = dm_rng_normal(&rng), z2 = dm_rng_normal(&rng);
            out[s][2 * i] = (float)(mu[s][0] + l11 * z1);
            out[s][2 * i + 1] = (float)(mu[s][1] + l21 * z1 + l22 * z2);
        }
    }
    double fd;
    assert_int_equal(dm_fd(x, N, y, N, 2, &fd, err), DM_OK);
    if (fabs(fd - want) > 0.02 * want)
        fail_msg("sample fd %.6g, Gaussians' %.6g", fd, want);
    assert_int_equal(dm_fd(x, 1, y, N, 2, &fd, err), DM_E_INPUT);
    free(x);
    free(y);
    dm_rng_free(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_is_zero),
        cmocka_unit_test(test_closed_form_2x2),
        cmocka_unit_test(test_nonsymmetric_route),
        cmocka_unit_test(test_sample_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
