/* The exact-posterior statistics (eval/posterior.h) against closed forms: one Gaussian component
 * (the posterior N(m, s^2 sigma^2 / (s^2 + sigma^2) I) covers one mode, its spread is known, and
 * the denoiser's error |D - x0| has a known mean), two far-apart components at large and small
 * noise (two modes, then one), and draws from the posterior with the right mean and spread. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "eval/posterior.h"

enum { N = 4000 };

static void test_one_component(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double w = 1.0, mu[2] = { 0.5, -1.0 }, s = 0.3;
    const dm_gmm g = { .k = 1, .dim = 2, .w = &w, .mu = mu, .s = &s };
    float *x0 = dm_malloc(sizeof(float) * N * 2);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 1, err), DM_OK);
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < 2; j++)
            x0[i * 2 + j] = (float)(mu[j] + s * dm_rng_normal(&rng));
    const double sigmas[] = { 0.05, 0.3, 2.0 };
    for (int k = 0; k < 3; k++) {
        const double sg = sigmas[k], v = s * s * sg * sg / (s * s + sg * sg);
        dm_posterior_stats ps;
        assert_int_equal(dm_posterior_stats_at(&g, 1.0, sg, x0, N, x0, N, &rng, &ps, err), DM_OK);
        assert_true(fabs(ps.std - sqrt(v)) < 1e-9);
        assert_true(fabs(ps.modes - 1.0) < 1e-12 && ps.modes90 == 1.0);
        /* D - x0 = (s^2 (x0 + sigma eps - mu)/(s^2 + sigma^2)) + mu - x0 is N(0, v I) in 2-D:
         * |D - x0| is Rayleigh with mean sqrt(v pi / 2). */
        assert_true(fabs(ps.err / sqrt(v * M_PI / 2) - 1.0) < 0.03);
    }
    /* Draws: mean m and per-coordinate variance v of the posterior at one point. */
    const double x[2] = { 1.0, 0.0 }, sg = 0.4, V = s * s + sg * sg;
    float *d = dm_malloc(sizeof(float) * N * 2);
    dm_posterior_draw(&g, 1.0, sg, x, N, &rng, d);
    for (int j = 0; j < 2; j++) {
        double m = 0, q = 0;
        for (size_t i = 0; i < N; i++)
            m += d[i * 2 + j];
        m /= N;
        for (size_t i = 0; i < N; i++)
            q += (d[i * 2 + j] - m) * (d[i * 2 + j] - m);
        q /= N - 1;
        const double want_m = mu[j] + s * s * (x[j] - mu[j]) / V, want_v = s * s * sg * sg / V;
        assert_true(fabs(m - want_m) < 4 * sqrt(want_v / N));
        assert_true(fabs(q / want_v - 1) < 0.08);
    }
    dm_free(d);
    dm_free(x0);
    dm_rng_free(&rng);
}

static void test_two_components(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double w[2] = { 0.5, 0.5 }, mu[4] = { -3.0, 0.0, 3.0, 0.0 }, s[2] = { 0.1, 0.1 };
    const dm_gmm g = { .k = 2, .dim = 2, .w = w, .mu = mu, .s = s };
    float *x0 = dm_malloc(sizeof(float) * N * 2);
    dm_rng rng = { 0 };
    assert_int_equal(dm_rng_init(&rng, 2, err), DM_OK);
    for (size_t i = 0; i < N; i++) {
        const int c = (int)(i % 2);
        x0[i * 2] = (float)(mu[2 * c] + 0.1 * dm_rng_normal(&rng));
        x0[i * 2 + 1] = (float)(0.1 * dm_rng_normal(&rng));
    }
    dm_posterior_stats big, small;
    assert_int_equal(dm_posterior_stats_at(&g, 1.0, 100.0, x0, N, x0, N, &rng, &big, err), DM_OK);
    assert_int_equal(dm_posterior_stats_at(&g, 1.0, 0.01, x0, N, x0, N, &rng, &small, err), DM_OK);
    /* sigma 100: the posterior is the data distribution: both modes, spread ~ the data's
     * (sqrt((9 + 0.01 + 0.01)/2)), and E[x0 | x_t] near the midpoint, 3 from every data point. */
    assert_true(big.modes > 1.99 && big.modes90 == 2.0);
    assert_true(fabs(big.std - sqrt((9.0 + 0.02) / 2)) < 0.05);
    assert_true(big.gap_data > 2.5 && big.gap_mode > 25);
    /* sigma 0.01: one mode, E[x0 | x_t] on the data. */
    assert_true(small.modes < 1.0001 && small.modes90 == 1.0 && small.gap_data < 0.05 && small.gap_mode < 3);
    dm_free(x0);
    dm_rng_free(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_component),
        cmocka_unit_test(test_two_components),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
