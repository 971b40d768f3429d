/* Consistency-model math (diffusion/consistency.h): the boundary condition bit for bit, the
 * scalings against closed forms, the Karras grid, the CT and iCT curricula by hand, iCT's index
 * distribution against numerical integration (tails included), the inverse CDF, the three
 * distances' gradients by central differences (with a tolerance shown to reject slightly wrong
 * gradients), pseudo-Huber's two limits, and the multistep noise. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"
#include "diffusion/consistency.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/schedules.h"

static int rel_close(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want);
}

/* A float of random sign and magnitude 10^e, e uniform in [-38, 38] (normal floats). */
static float wide_float(dm_rng *r)
{
    const double m = pow(10.0, 76.0 * dm_rng_uniform(r) - 38.0);
    const float f = (float)(m < FLT_MAX ? m : FLT_MAX);
    return dm_rng_uniform(r) < 0.5 ? -f : f;
}

/* ---- boundary scalings ---- */

static void test_boundary_bit_exact(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_rng r;
    assert_int_equal(dm_rng_init(&r, 20230302, err), DM_OK);
    static const double eps_list[] = { 0.002, 1e-5, 0.25, 3.0 };
    static const double sd_list[] = { 0.5, 1.0, 2.7, 1e-3 };
    static const float special[] = { -0.0f, 0.0f, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -FLT_MIN, 1.0f, 1e30f };
    enum { D = 64, N_SPECIAL = sizeof special / sizeof special[0] };
    float x[D], F[D], out[D];
    int n_checked = 0;
    for (int e = 0; e < 4; e++) {
        for (int s = 0; s < 4; s++) {
            dm_cm_coef c;
            dm_cm_coef_at(eps_list[e], eps_list[e], sd_list[s], &c);
            assert_true(c.c_skip == 1.0);
            assert_true(c.c_out == 0.0);
            for (int rep = 0; rep < 40; rep++) {
                for (int j = 0; j < D; j++) {
                    x[j] = wide_float(&r);
                    F[j] = wide_float(&r);
                }
                for (int j = 0; j < N_SPECIAL; j++) {
                    x[(rep + j) % D] = special[j];
                    F[(rep + 3 * j + 1) % D] = special[(j + rep) % N_SPECIAL];
                }
                /* f = c_skip x + c_out F, written out in double: x again (+0 == -0 here). */
                for (int j = 0; j < D; j++) {
                    const double f = c.c_skip * x[j] + c.c_out * F[j];
                    assert_true(f == x[j]);
                    n_checked++;
                }
                /* dm_cm_apply: bit for bit, -0.0 and denormals included. */
                dm_cm_apply(&c, D, x, F, out);
                assert_memory_equal(out, x, sizeof x);
            }
            /* At the boundary F is not even read. */
            F[0] = INFINITY;
            F[1] = NAN;
            dm_cm_apply(&c, D, x, F, out);
            assert_memory_equal(out, x, sizeof x);
        }
    }
    assert_int_equal(n_checked, 4 * 4 * 40 * D);

    /* One ulp above the boundary the network output counts: the test above is not vacuous. */
    dm_cm_coef c;
    dm_cm_coef_at(nextafter(0.002, 1.0), 0.002, 0.5, &c);
    assert_true(c.c_out > 0.0);
    const float one = 1.0f, big = 1e30f;
    float o;
    dm_cm_apply(&c, 1, &one, &big, &o);
    assert_true(o != one);
    dm_rng_free(&r);
}

static void test_coef_closed_forms(void **state)
{
    (void)state;
    dm_cm_coef c;
    /* Dyadic: eps 0.25, t 0.75, sd 0.5: t - eps = 0.5, c_skip = 0.25/(0.25 + 0.25) = 1/2,
     * t^2 + sd^2 = 0.8125, c_out = 0.5 * 0.5/sqrt(0.8125), c_in = 1/sqrt(0.8125). */
    dm_cm_coef_at(0.75, 0.25, 0.5, &c);
    assert_true(c.c_skip == 0.5);
    assert_true(rel_close(c.c_out, 0.25 / 0.9013878188659973, 1e-15));
    assert_true(rel_close(c.c_in, 1.0 / 0.9013878188659973, 1e-15));
    /* eps 0.25, t 1.25, sd 1: c_skip = 1/2, sqrt(2.5625) = 1.6007810593582121. */
    dm_cm_coef_at(1.25, 0.25, 1.0, &c);
    assert_true(c.c_skip == 0.5);
    assert_true(rel_close(c.c_out, 1.0 / 1.6007810593582121, 1e-15));
    assert_true(rel_close(c.c_in, 1.0 / 1.6007810593582121, 1e-15));

    /* The CM defaults (eps 0.002, sd 0.5) at several t, against the same formulas rearranged:
     * c_skip = 1/(1 + ((t - eps)/sd)^2), c_out = (t - eps)/sqrt(1 + (t/sd)^2),
     * c_in = (1/sd)/sqrt(1 + (t/sd)^2), c_noise = 250 ln t. */
    static const double ts[] = { 0.0021, 0.01, 0.3, 0.5, 1.0, 5.0, 80.0 };
    const double eps = 0.002, sd = 0.5;
    for (int k = 0; k < 7; k++) {
        const double t = ts[k], u = (t - eps) / sd, v = sqrt(1.0 + (t / sd) * (t / sd));
        dm_cm_coef_at(t, eps, sd, &c);
        assert_true(rel_close(c.c_skip, 1.0 / (1.0 + u * u), 1e-14));
        assert_true(rel_close(c.c_out, (t - eps) / v, 1e-14));
        assert_true(rel_close(c.c_in, 1.0 / sd / v, 1e-14));
        assert_true(rel_close(c.c_noise, 250.0 * log(t), 1e-14));
        /* c_skip in (0, 1) and c_out > 0 past the boundary. */
        assert_true(c.c_skip > 0.0 && c.c_skip < 1.0 && c.c_out > 0.0);
    }
    /* c_noise = 1000 * 0.25 * ln(t + 1e-44): 0 at t = 1, 250 ln 80 at 80, finite at t = 0. */
    dm_cm_coef_at(1.0, 0.002, 0.5, &c);
    assert_true(c.c_noise == 0.0);
    dm_cm_coef_at(80.0, 0.002, 0.5, &c);
    assert_true(rel_close(c.c_noise, 250.0 * 4.382026634673881, 1e-15));
    dm_cm_coef_at(0.0, 0.0, 0.5, &c);
    assert_true(rel_close(c.c_noise, 250.0 * log(1e-44), 1e-15));
    /* With eps = 0 they are EDM's scalings (Karras et al. 2022, Table 1): sigma 0.5 = sd gives
     * c_skip 1/2, c_out sd/sqrt 2, c_in 1/(sd sqrt 2). */
    dm_cm_coef_at(0.5, 0.0, 0.5, &c);
    assert_true(c.c_skip == 0.5);
    assert_true(rel_close(c.c_out, 0.5 / M_SQRT2, 1e-15));
    assert_true(rel_close(c.c_in, 2.0 / M_SQRT2, 1e-15));
}

/* ---- Karras grid ---- */

static void test_karras_grid(void **state)
{
    (void)state;
    static const double combos[][3] = { { 0.002, 80.0, 7.0 }, { 1e-5, 1.0, 3.0 }, { 0.1, 0.3, 1.5 },
                                        { 0.002, 80.0, 1.0 }, { 0.02, 100.0, 7.0 }, { 0.002, 1.0, 7.0 } };
    static const int Ns[] = { 2, 3, 5, 11, 18, 40, 151, 201, 1281 };
    static double g[1281];
    int round_trip_inexact = 0;
    for (int k = 0; k < 6; k++) {
        const double lo = combos[k][0], hi = combos[k][1], rho = combos[k][2];
        const double a = pow(lo, 1.0 / rho), b = pow(hi, 1.0 / rho);
        round_trip_inexact += pow(a, rho) != lo || pow(b, rho) != hi;
        for (int m = 0; m < 9; m++) {
            const int N = Ns[m];
            dm_cm_karras_grid(N, lo, hi, rho, g);
            assert_true(g[0] == lo);
            assert_true(g[N - 1] == hi);
            assert_true(dm_cm_karras_sigma(0, N, lo, hi, rho) == lo);
            assert_true(dm_cm_karras_sigma(N - 1, N, lo, hi, rho) == hi);
            for (int i = 0; i < N; i++) {
                const double s = dm_cm_karras_sigma(i, N, lo, hi, rho);
                assert_memory_equal(&s, &g[i], sizeof s);
                if (i > 0)
                    assert_true(g[i] > g[i - 1]);
                if (i > 0 && i < N - 1) {
                    /* The reference's descending form at j = N-1-i, compared in the rho-th root
                     * (where both are a few ulps of t_max^(1/rho) from exact: near t_min the
                     * descending form cancels). */
                    const int j = N - 1 - i;
                    const double want = b + (double)j / (N - 1) * (a - b);
                    if (fabs(pow(g[i], 1.0 / rho) - want) > 1e-14 * b)
                        fail_msg("combo %d N %d i %d: %.17g vs %.17g", k, N, i, pow(g[i], 1.0 / rho), want);
                }
            }
        }
    }
    /* The exact ends matter: pow(pow(t, 1/rho), rho) misses some of them. */
    assert_true(round_trip_inexact > 0);

    /* By hand: N = 3 on [1, 9], rho = 2: ((1 + 3)/2)^2 = 4; rho = 1 is linear. */
    assert_true(dm_cm_karras_sigma(1, 3, 1.0, 9.0, 2.0) == 4.0);
    dm_cm_karras_grid(5, 0.5, 2.5, 1.0, g);
    const double lin[5] = { 0.5, 1.0, 1.5, 2.0, 2.5 };
    assert_memory_equal(g, lin, sizeof lin);
    /* Out-of-range indices clamp to the ends. */
    assert_true(dm_cm_karras_sigma(-3, 10, 0.002, 80.0, 7.0) == 0.002);
    assert_true(dm_cm_karras_sigma(12, 10, 0.002, 80.0, 7.0) == 80.0);
}

/* ---- CT and iCT curricula ---- */

static void test_ct_n_steps(void **state)
{
    (void)state;
    /* Hand values, K = 100: (2, 150): span (151^2 - 4) = 22797; k = 1: sqrt(231.97) = 15.23 -> 16,
     * k = 25: sqrt(5703.25) = 75.52 -> 76, k = 50: sqrt(11402.5) = 106.78 -> 107.
     * (2, 200): span 40397; k = 1: sqrt(407.97) = 20.2 -> 21, k = 50: sqrt(20202.5) = 142.1 -> 143,
     * k = 99: sqrt(39997.03) = 199.99 -> 200. N(0) = s0 (n = s0 - 1), N(K) = s1 + 1. */
    static const struct {
        int s0, s1;
        int64_t k;
        int N;
    } cases[] = { { 2, 150, 0, 2 },    { 2, 150, 1, 16 },   { 2, 150, 25, 76 },  { 2, 150, 50, 107 },
                  { 2, 150, 99, 151 }, { 2, 150, 100, 151 }, { 2, 200, 0, 2 },    { 2, 200, 1, 21 },
                  { 2, 200, 50, 143 }, { 2, 200, 99, 200 },  { 2, 200, 100, 201 }, { 1, 10, 0, 2 },
                  { 5, 40, 0, 5 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (dm_cm_ct_n_steps(cases[i].k, 100, cases[i].s0, cases[i].s1) != cases[i].N)
            fail_msg("s0 %d s1 %d k %lld: N %d, want %d", cases[i].s0, cases[i].s1, (long long)cases[i].k,
                     dm_cm_ct_n_steps(cases[i].k, 100, cases[i].s0, cases[i].s1), cases[i].N);

    /* Ends and monotonicity over whole runs of the published lengths; k outside [0, K] clamps. */
    static const struct {
        int s0, s1;
        int64_t K;
    } runs[] = { { 2, 150, 800000 }, { 2, 200, 800000 }, { 2, 150, 1000000 }, { 2, 150, 7 } };
    for (int r = 0; r < 4; r++) {
        const int s0 = runs[r].s0, s1 = runs[r].s1;
        const int64_t K = runs[r].K;
        assert_int_equal(dm_cm_ct_n_steps(0, K, s0, s1), s0);
        assert_int_equal(dm_cm_ct_n_steps(K, K, s0, s1), s1 + 1);
        assert_int_equal(dm_cm_ct_n_steps(K + 12345, K, s0, s1), s1 + 1);
        assert_int_equal(dm_cm_ct_n_steps(-5, K, s0, s1), s0);
        int prev = 0, changes = 0;
        for (int64_t k = 0; k <= K; k += K > 1000 ? 37 : 1) {
            const int N = dm_cm_ct_n_steps(k, K, s0, s1);
            assert_true(N >= prev);
            changes += N != prev;
            prev = N;
        }
        assert_true(changes > (K > 1000 ? 100 : 3));
    }
}

static void test_ct_mu(void **state)
{
    (void)state;
    /* The reference divides by n = N - 1: at k = 0 (N = 2 for s0 = 2) mu = mu0^2, not mu0. */
    const int N0 = dm_cm_ct_n_steps(0, 800000, 2, 200);
    assert_true(rel_close(dm_cm_ct_mu(N0, 2, 0.95), 0.9025, 1e-15));
    assert_true(rel_close(dm_cm_ct_mu(dm_cm_ct_n_steps(0, 100, 2, 150), 2, 0.9), 0.81, 1e-15));
    assert_true(dm_cm_ct_mu(N0, 2, 0.95) != 0.95);
    /* At k = K: exp(2 ln 0.9/150), exp(2 ln 0.95/200) (values from an independent evaluation). */
    assert_true(rel_close(dm_cm_ct_mu(151, 2, 0.9), 0.9985961794038429, 1e-15));
    assert_true(rel_close(dm_cm_ct_mu(201, 2, 0.95), 0.9994871985837377, 1e-15));
    /* s0 = 5 at k = 0: n = 4, mu0^(5/4). */
    assert_true(rel_close(dm_cm_ct_mu(dm_cm_ct_n_steps(0, 10, 5, 40), 5, 0.9), pow(0.9, 1.25), 1e-15));
    /* mu0 = 0 (a fixed, EMA-free target) stays 0. */
    assert_true(dm_cm_ct_mu(41, 2, 0.0) == 0.0);
    /* mu rises towards 1 as N grows. */
    double prev = 0.0;
    for (int64_t k = 0; k <= 1000; k++) {
        const double mu = dm_cm_ct_mu(dm_cm_ct_n_steps(k, 1000, 2, 150), 2, 0.9);
        assert_true(mu >= prev && mu < 1.0);
        prev = mu;
    }
}

static void test_ict_n_steps(void **state)
{
    (void)state;
    /* s0 10, s1 1280, K 400000: log2(128) + 1 = 8, K' = 50000, N doubles every 50000 steps. */
    static const struct {
        int64_t k;
        int N;
    } cases[] = { { 0, 11 },        { 49999, 11 },   { 50000, 21 },   { 99999, 21 },   { 100000, 41 },
                  { 150000, 81 },   { 200000, 161 }, { 250000, 321 }, { 300000, 641 }, { 349999, 641 },
                  { 350000, 1281 }, { 399999, 1281 }, { 400000, 1281 }, { 1000000000, 1281 },
                  { INT64_MAX, 1281 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (dm_cm_ict_n_steps(cases[i].k, 400000, 10, 1280) != cases[i].N)
            fail_msg("k %lld: N %d, want %d", (long long)cases[i].k,
                     dm_cm_ict_n_steps(cases[i].k, 400000, 10, 1280), cases[i].N);
    int prev = 0;
    for (int64_t k = 0; k <= 400000; k += 101) {
        const int N = dm_cm_ict_n_steps(k, 400000, 10, 1280);
        assert_true(N >= prev && N <= 1281);
        prev = N;
    }
    /* s1/s0 not a power of 2: floor(150/10) = 15, K' = floor(1000/(log2 15 + 1)) = floor(203.79) = 203;
     * the last doubling (160) is capped at 150. */
    assert_int_equal(dm_cm_ict_n_steps(202, 1000, 10, 150), 11);
    assert_int_equal(dm_cm_ict_n_steps(203, 1000, 10, 150), 21);
    assert_int_equal(dm_cm_ict_n_steps(406, 1000, 10, 150), 41);
    assert_int_equal(dm_cm_ict_n_steps(609, 1000, 10, 150), 81);
    assert_int_equal(dm_cm_ict_n_steps(811, 1000, 10, 150), 81);
    assert_int_equal(dm_cm_ict_n_steps(812, 1000, 10, 150), 151);
    /* s1/s0 not an integer: log2 of floor(100/3) = 33, not of 33.33: K' = floor(10000/6.0444) = 1654
     * (1650 without the floor). */
    assert_int_equal(dm_cm_ict_n_steps(1653, 10000, 3, 100), 4);
    assert_int_equal(dm_cm_ict_n_steps(1654, 10000, 3, 100), 7);
    assert_int_equal(dm_cm_ict_n_steps(3307, 10000, 3, 100), 7);
    assert_int_equal(dm_cm_ict_n_steps(3308, 10000, 3, 100), 13);
    assert_int_equal(dm_cm_ict_n_steps(8270, 10000, 3, 100), 97);
    assert_int_equal(dm_cm_ict_n_steps(9924, 10000, 3, 100), 101);
    /* Far past K, every number of doublings up to 2^70 stays capped (no shift overflow). */
    for (int e = 8; e <= 70; e++)
        assert_int_equal(dm_cm_ict_n_steps((int64_t)e * 50000, 400000, 10, 1280), 1281);
    /* K shorter than the number of stages: K' = floor(3/8) = 0 is guarded to 1. */
    assert_int_equal(dm_cm_ict_n_steps(0, 3, 10, 1280), 11);
    assert_int_equal(dm_cm_ict_n_steps(1, 3, 10, 1280), 21);
    assert_int_equal(dm_cm_ict_n_steps(2, 3, 10, 1280), 41);
    assert_int_equal(dm_cm_ict_n_steps(100, 3, 10, 1280), 1281);
    /* s0 = s1: constant. */
    assert_int_equal(dm_cm_ict_n_steps(0, 1000, 64, 64), 65);
    assert_int_equal(dm_cm_ict_n_steps(999, 1000, 64, 64), 65);
}

static void test_curriculum_check(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_cm_curriculum_check("train.ict", 400000, 10, 1280, err), DM_OK);
    assert_int_equal(dm_cm_curriculum_check("train.ct", 1, 2, 2, err), DM_OK);
    assert_int_equal(dm_cm_curriculum_check("train.ct", 0, 2, 150, err), DM_E_INPUT);
    assert_non_null(strstr(err, "train.ct: the curriculum needs at least 1 training step (K = 0)"));
    assert_int_equal(dm_cm_curriculum_check("train.ct", 100, 0, 150, err), DM_E_INPUT);
    assert_non_null(strstr(err, "1 <= s0 <= s1 (s0 = 0, s1 = 150)"));
    assert_int_equal(dm_cm_curriculum_check("train.ct", 100, 20, 10, err), DM_E_INPUT);
}

/* ---- iCT index distribution ---- */

/* The lognormal(P_mean, P_std) probability of [s_lo, s_hi] by composite Simpson on the normal
 * density of ln sigma (independent of erf). */
static double simpson_mass(double s_lo, double s_hi, double pm, double ps)
{
    enum { M = 1024 };
    const double a = log(s_lo), b = log(s_hi), h = (b - a) / M;
    double sum = 0.0;
    for (int k = 0; k <= M; k++) {
        const double z = (a + k * h - pm) / ps;
        const double w = k == 0 || k == M ? 1.0 : k % 2 ? 4.0 : 2.0;
        sum += w * exp(-0.5 * z * z);
    }
    return sum * h / 3.0 / (ps * sqrt(2.0 * M_PI));
}

static void test_ict_index_probs(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    static double sig[1281], p[1280], q[1280];

    /* The iCT setting: Karras grid (0.002, 80, 7) of N(k) points, P_mean -1.1, P_std 2. */
    static const int Ns[] = { 11, 41, 321, 1281 };
    for (int m = 0; m < 4; m++) {
        const int N = Ns[m];
        dm_cm_karras_grid(N, 0.002, 80.0, 7.0, sig);
        assert_int_equal(dm_cm_ict_index_probs(N, sig, -1.1, 2.0, p, err), DM_OK);
        double sum = 0.0, qsum = 0.0;
        for (int i = 0; i < N - 1; i++) {
            assert_true(p[i] > 0.0);
            sum += p[i];
            q[i] = simpson_mass(sig[i], sig[i + 1], -1.1, 2.0);
            qsum += q[i];
        }
        assert_true(fabs(sum - 1.0) < 1e-13);
        for (int i = 0; i < N - 1; i++)
            if (!rel_close(p[i], q[i] / qsum, 1e-9))
                fail_msg("N %d i %d: p %.17g, integrated %.17g", N, i, p[i], q[i] / qsum);
        /* The density per unit of ln sigma peaks on the interval holding P_mean (or a neighbour). */
        int best = 0;
        for (int i = 1; i < N - 1; i++)
            if (p[i] / log(sig[i + 1] / sig[i]) > p[best] / log(sig[best + 1] / sig[best]))
                best = i;
        assert_true(log(sig[best > 0 ? best - 1 : 0]) <= -1.1 &&
                    -1.1 <= log(sig[best + 2 < N ? best + 2 : N - 1]));
    }

    /* Narrow P_std: both ends of the grid sit about 20 standard deviations out, where a plain
     * erf difference is 1 - 1 = 0; the masses must stay positive and relatively accurate. */
    dm_cm_karras_grid(41, 0.002, 80.0, 7.0, sig);
    assert_int_equal(dm_cm_ict_index_probs(41, sig, -1.1, 0.25, p, err), DM_OK);
    double qsum = 0.0;
    for (int i = 0; i < 40; i++)
        qsum += q[i] = simpson_mass(sig[i], sig[i + 1], -1.1, 0.25);
    assert_true(p[0] > 0.0 && p[0] < 1e-60 && p[39] > 0.0 && p[39] < 1e-60);
    for (int i = 0; i < 40; i++)
        if (!rel_close(p[i], q[i] / qsum, 1e-6))
            fail_msg("narrow i %d: p %.17g, integrated %.17g", i, p[i], q[i] / qsum);

    /* A log-uniform grid ln sigma = -5, -4.9, ..., 5: p peaks on the interval centred on P_mean. */
    for (int i = 0; i <= 100; i++)
        sig[i] = exp(-5.0 + 0.1 * i);
    assert_int_equal(dm_cm_ict_index_probs(101, sig, -1.05, 2.0, p, err), DM_OK);
    int best = 0;
    for (int i = 1; i < 100; i++)
        best = p[i] > p[best] ? i : best;
    assert_int_equal(best, 39);   /* [-1.1, -1.0] */
    assert_true(rel_close(p[38], p[40], 1e-9));   /* symmetric about P_mean */
    assert_int_equal(dm_cm_ict_index_probs(101, sig, 0.35, 0.5, p, err), DM_OK);
    best = 0;
    for (int i = 1; i < 100; i++)
        best = p[i] > p[best] ? i : best;
    assert_int_equal(best, 53);   /* [0.3, 0.4] */
}

static void test_ict_index_probs_errors(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double p[4];
    const double ok[3] = { 0.5, 1.0, 2.0 };
    assert_int_equal(dm_cm_ict_index_probs(1, ok, -1.1, 2.0, p, err), DM_E_INPUT);
    assert_non_null(strstr(err, "at least 2 points"));
    assert_int_equal(dm_cm_ict_index_probs(3, ok, -1.1, 0.0, p, err), DM_E_INPUT);
    assert_int_equal(dm_cm_ict_index_probs(3, ok, NAN, 2.0, p, err), DM_E_INPUT);
    const double zero[3] = { 0.0, 1.0, 2.0 }, flat[3] = { 0.5, 1.0, 1.0 };
    assert_int_equal(dm_cm_ict_index_probs(3, zero, -1.1, 2.0, p, err), DM_E_INPUT);
    assert_int_equal(dm_cm_ict_index_probs(3, flat, -1.1, 2.0, p, err), DM_E_INPUT);
    assert_non_null(strstr(err, "not strictly ascending at 1"));
    /* All mass underflows: ln sigma ~ 23 under N(-1.1, 0.01^2). */
    const double far[3] = { 1e10, 2e10, 1e11 };
    assert_int_equal(dm_cm_ict_index_probs(3, far, -1.1, 0.01, p, err), DM_E_INPUT);
    assert_non_null(strstr(err, "no mass on the grid"));
}

static void test_sample_index_edges(void **state)
{
    (void)state;
    const double p[7] = { 0.0, 0.0, 0.25, 0.5, 0.0, 0.25, 0.0 };
    const double below1 = nextafter(1.0, 0.0);
    assert_int_equal(dm_cm_sample_index(p, 7, 0.0), 2);   /* first index with p > 0 */
    assert_int_equal(dm_cm_sample_index(p, 7, nextafter(0.25, 0.0)), 2);
    assert_int_equal(dm_cm_sample_index(p, 7, 0.25), 3);   /* CDF steps are right-continuous */
    assert_int_equal(dm_cm_sample_index(p, 7, 0.7499), 3);
    assert_int_equal(dm_cm_sample_index(p, 7, 0.75), 5);
    assert_int_equal(dm_cm_sample_index(p, 7, below1), 5);   /* last index with p > 0, not 6 */
    /* Ten 0.1s sum to 0.9999999999999999 < u: still the last index, never past the end. */
    double tenth[10];
    for (int i = 0; i < 10; i++)
        tenth[i] = 0.1;
    assert_int_equal(dm_cm_sample_index(tenth, 10, below1), 9);
    assert_int_equal(dm_cm_sample_index(tenth, 10, 0.0), 0);
    /* Nothing to draw. */
    const double none[3] = { 0.0, 0.0, 0.0 };
    assert_int_equal(dm_cm_sample_index(none, 3, 0.5), -1);
    assert_int_equal(dm_cm_sample_index(p, 0, 0.5), -1);
    /* Single point. */
    const double single = 1.0;
    assert_int_equal(dm_cm_sample_index(&single, 1, below1), 0);
}

static void test_sample_index_frequencies(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_rng r;
    assert_int_equal(dm_rng_init(&r, 7, err), DM_OK);
    const double p[5] = { 0.1, 0.2, 0.0, 0.3, 0.4 };
    enum { DRAWS = 200000 };
    long count[5] = { 0 };
    for (int k = 0; k < DRAWS; k++) {
        const int i = dm_cm_sample_index(p, 5, dm_rng_uniform(&r));
        assert_true(i >= 0 && i < 5);
        count[i]++;
    }
    assert_int_equal(count[2], 0);
    for (int i = 0; i < 5; i++) {
        const double mean = DRAWS * p[i], sd = sqrt(DRAWS * p[i] * (1.0 - p[i]));
        if (fabs((double)count[i] - mean) > 5.0 * sd + 1e-9)
            fail_msg("index %d drawn %ld times, expected %.0f +- %.0f", i, count[i], mean, sd);
    }
    dm_rng_free(&r);
}

static void test_ict_weight(void **state)
{
    (void)state;
    assert_true(dm_cm_ict_weight(1.0, 1.5) == 2.0);
    assert_true(dm_cm_ict_weight(0.002, 0.0025) == 1.0 / (0.0025 - 0.002));
    /* Larger gaps, smaller weight. */
    double sig[41];
    dm_cm_karras_grid(41, 0.002, 80.0, 7.0, sig);
    for (int i = 1; i < 40; i++)
        assert_true(dm_cm_ict_weight(sig[i], sig[i + 1]) < dm_cm_ict_weight(sig[i - 1], sig[i]));
}

/* ---- distances ---- */

static void test_distance_hand_values(void **state)
{
    (void)state;
    const float x[2] = { 3.0f, 4.0f }, y[2] = { 0.0f, 0.0f };
    float g[2];
    assert_true(dm_cm_distance(DM_CM_L2, 2, x, y, 0.0, g) == 12.5);   /* (9 + 16)/2 */
    assert_true(g[0] == 3.0f && g[1] == 4.0f);                          /* 2 r/d */
    assert_true(dm_cm_distance(DM_CM_L1, 2, x, y, 0.0, g) == 3.5);    /* (3 + 4)/2 */
    assert_true(g[0] == 0.5f && g[1] == 0.5f);
    const double ph = dm_cm_distance(DM_CM_PSEUDO_HUBER, 2, x, y, 1.0, g);
    assert_true(rel_close(ph, sqrt(26.0) - 1.0, 1e-15));
    assert_true(g[0] == (float)(3.0 / sqrt(26.0)) && g[1] == (float)(4.0 / sqrt(26.0)));
    /* A component with x = y: l1's subgradient 0 there. */
    const float a[3] = { 1.0f, -2.0f, 0.5f }, b[3] = { 0.5f, 0.0f, 0.5f };
    float h[3];
    assert_true(rel_close(dm_cm_distance(DM_CM_L2, 3, a, b, 0.0, h), 4.25 / 3.0, 1e-15));
    assert_true(rel_close(dm_cm_distance(DM_CM_L1, 3, a, b, 0.0, h), 2.5 / 3.0, 1e-15));
    assert_true(h[0] == (float)(1.0 / 3.0) && h[1] == (float)(-1.0 / 3.0) && h[2] == 0.0f);
    /* x = y: all three distances and gradients 0. */
    for (int kind = DM_CM_L2; kind <= DM_CM_PSEUDO_HUBER; kind++) {
        assert_true(dm_cm_distance(kind, 3, a, a, 0.01, h) == 0.0);
        assert_true(h[0] == 0.0f && h[1] == 0.0f && h[2] == 0.0f);
    }
    /* dx may be NULL. */
    assert_true(dm_cm_distance(DM_CM_L2, 2, x, y, 0.0, NULL) == 12.5);
    /* c = 0.00054 sqrt(d): CIFAR-10's d = 3 * 32 * 32 gives 0.0299298...; d = 1 gives 0.00054. */
    assert_true(rel_close(dm_cm_huber_c(3072), 0.0299298379547902, 1e-14));
    assert_true(dm_cm_huber_c(1) == 0.00054);
    assert_true(dm_cm_huber_c(4) == 0.00108);
}

/* Central difference of the distance in x_k (x on a 2^-8 lattice, h = 2^-12: x +- h exact). */
static double fd(int kind, size_t d, float *x, const float *y, double c, size_t k)
{
    const float h = 1.0f / 4096.0f, keep = x[k];
    x[k] = keep + h;
    const double lp = dm_cm_distance(kind, d, x, y, c, NULL);
    x[k] = keep - h;
    const double lm = dm_cm_distance(kind, d, x, y, c, NULL);
    x[k] = keep;
    return (lp - lm) / (2.0 * (double)h);
}

enum { GMAX = 257 };
static const double GRAD_TOL = 1e-5;   /* relative to the largest gradient component */

/* 1 if the gradient g matches central differences everywhere. */
static int grad_ok(int kind, size_t d, float *x, const float *y, double c, const float *g)
{
    double gmax = 0.0;
    for (size_t k = 0; k < d; k++)
        gmax = fmax(gmax, fabs(g[k]));
    for (size_t k = 0; k < d; k++)
        if (fabs(fd(kind, d, x, y, c, k) - g[k]) > GRAD_TOL * gmax)
            return 0;
    return 1;
}

static void test_distance_gradients(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_rng r;
    assert_int_equal(dm_rng_init(&r, 99, err), DM_OK);
    static float x[GMAX], y[GMAX], g[GMAX], bad[GMAX];
    static const size_t dims[] = { 1, 2, 3, 16, 100, GMAX };
    int n_checked = 0;
    for (int m = 0; m < 6; m++) {
        const size_t d = dims[m];
        for (int rep = 0; rep < 4; rep++) {
            /* x on the 2^-8 lattice in [-2, 2]; |x - y| in [1/4, 1], so no component is within h
             * of l1's kink and pseudo-Huber's curvature is tame at h. */
            for (size_t j = 0; j < d; j++) {
                x[j] = (float)((int)dm_rng_int(&r, 1025) - 512) / 256.0f;
                const float off = (float)(64 + (int)dm_rng_int(&r, 193)) / 256.0f;
                y[j] = x[j] + (dm_rng_uniform(&r) < 0.5 ? off : -off);
            }
            const double cs[3] = { 0.0, 0.0, rep % 2 ? dm_cm_huber_c(d) : 0.7 };
            for (int kind = DM_CM_L2; kind <= DM_CM_PSEUDO_HUBER; kind++) {
                const double val = dm_cm_distance(kind, d, x, y, cs[kind], g);
                assert_true(isfinite(val) && val > 0.0);
                if (!grad_ok(kind, d, x, y, cs[kind], g))
                    fail_msg("%s d %zu rep %d: gradient disagrees with central differences",
                             dm_cm_distance_names[kind], d, rep);
                /* The tolerance is tight enough to reject a gradient off by 1e-4 (scaled, or
                 * one component shifted), and a wrong normalization (l2 / l1 without 1/d). */
                memcpy(bad, g, d * sizeof *g);
                for (size_t j = 0; j < d; j++)
                    bad[j] = g[j] * 1.0001f;
                assert_false(grad_ok(kind, d, x, y, cs[kind], bad));
                double gmax = 0.0;
                size_t jmax = 0;
                for (size_t j = 0; j < d; j++)
                    if (fabs(g[j]) > gmax) {
                        gmax = fabs(g[j]);
                        jmax = j;
                    }
                memcpy(bad, g, d * sizeof *g);
                bad[(jmax + d / 2) % d] += (float)(1e-4 * gmax);
                assert_false(grad_ok(kind, d, x, y, cs[kind], bad));
                if (kind != DM_CM_PSEUDO_HUBER && d > 1) {
                    for (size_t j = 0; j < d; j++)
                        bad[j] = g[j] * (float)d;
                    assert_false(grad_ok(kind, d, x, y, cs[kind], bad));
                }
                n_checked++;
            }
        }
    }
    assert_int_equal(n_checked, 6 * 4 * 3);
    dm_rng_free(&r);
}

/* The CT / CD loss of the student's network output F (loss_consistency.c): with f = c_skip x +
 * c_out F per row, L = (1/n) sum_i lambda_i d(f_i, target_i), and dm_cm_loss_rows' dF must be its
 * gradient in F. Central differences in double around float F on a 2^-8 lattice; each distance,
 * rows with different lambda and c_out, and f_cols wider than d (the columns beyond d untouched). */
enum { LN = 3, LD = 2, LFC = 3 };
static double loss_at(const dm_cm_loss_opts *o, const float *x, const double *F, const double *cs, const double *co,
                      const float *tgt, const double *lam, double c)
{
    float f[LN * LD], dF[LN * LFC];
    for (int i = 0; i < LN; i++)
        for (int j = 0; j < LD; j++)
            f[i * LD + j] = (float)(cs[i] * x[i * LD + j] + co[i] * F[i * LFC + j]);
    return dm_cm_loss_rows(o, LN, LD, LFC, f, tgt, lam, co, c, dF);
}

static void test_loss_rows_gradient(void **state)
{
    (void)state;
    const float x[LN * LD] = { 1.5f, -0.25f, 0.75f, 2.0f, -1.0f, 0.5f };
    const float tgt[LN * LD] = { 0.5f, 0.25f, -0.75f, 1.0f, 0.125f, -0.5f };
    double F[LN * LFC] = { 0.25, -0.5, 9, 1.25, 0.75, 9, -1.5, 0.375, 9 };
    const double cs[LN] = { 0.9, 0.5, 0.1 }, co[LN] = { 0.2, 0.7, 1.1 }, lam[LN] = { 1.0, 2.5, 0.5 };
    for (int kind = DM_CM_L2; kind <= DM_CM_PSEUDO_HUBER; kind++) {
        const dm_cm_loss_opts o = { .distance = kind };
        const double c = 0.3;
        float f[LN * LD], dF[LN * LFC];
        for (int q = 0; q < LN * LFC; q++)
            dF[q] = -7.0f;
        for (int i = 0; i < LN; i++)
            for (int j = 0; j < LD; j++)
                f[i * LD + j] = (float)(cs[i] * x[i * LD + j] + co[i] * F[i * LFC + j]);
        const double L = dm_cm_loss_rows(&o, LN, LD, LFC, f, tgt, lam, co, c, dF);
        /* The value: the lambda-weighted mean of the distances. */
        double want = 0.0;
        for (int i = 0; i < LN; i++)
            want += lam[i] * dm_cm_distance(kind, LD, f + i * LD, tgt + i * LD, c, NULL);
        assert_float_equal(L, want / LN, 1e-12);
        for (int i = 0; i < LN; i++) {
            assert_float_equal(dF[i * LFC + LD], -7.0f, 0);   /* beyond d: untouched */
            for (int j = 0; j < LD; j++) {
                const int q = i * LFC + j;
                const double h = 1.0 / 256, keep = F[q];
                F[q] = keep + h;
                const double lp = loss_at(&o, x, F, cs, co, tgt, lam, c);
                F[q] = keep - h;
                const double lm = loss_at(&o, x, F, cs, co, tgt, lam, c);
                F[q] = keep;
                const double fd = (lp - lm) / (2 * h);
                if (fabs(fd - dF[q]) > 2e-4 * (1 + fabs(fd)))
                    fail_msg("%s row %d col %d: dF %g, central difference %g", dm_cm_distance_names[kind], i, j,
                             (double)dF[q], fd);
            }
        }
    }
}

/* The consistency parameterization on the EDM schedule: at sigma_min the coefficients are exactly
 * c_skip = 1, c_out = 0 (so x0_hat = x), and elsewhere they are the closed forms with eps =
 * sigma_min; a schedule with alpha != 1 is refused. */
static void test_param_consistency(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_edm_schedule_opts so = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7, .p_mean = -1.2, .p_std = 1.2,
                                .time_input = DM_TIME_INPUT_CM };
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_edm, &so, err), DM_OK);
    assert_int_equal(dm_param_consistency.check(NULL, &s, err), DM_OK);
    dm_param_edm_opts po = { .sigma_data = 0.5 };
    dm_param_coef c;
    dm_param_coef_at(&dm_param_consistency, &po, &s, 0.002, 1.7, &c);
    assert_true(c.x_x0 == 1.0 && c.f_x0 == 0.0);
    const double ts[] = { 0.01, 0.5, 3.0, 80.0 };
    for (int k = 0; k < 4; k++) {
        const double t = ts[k], e = 0.002, sd = 0.5;
        dm_param_coef_at(&dm_param_consistency, &po, &s, t, 1.7, &c);
        assert_float_equal(c.x_x0, sd * sd / ((t - e) * (t - e) + sd * sd), 1e-15);
        assert_float_equal(c.f_x0, (t - e) * sd / sqrt(t * t + sd * sd), 1e-15);
        assert_float_equal(c.c_in, 1 / sqrt(t * t + sd * sd), 1e-15);
        /* eps_hat = (x - x0_hat)/sigma */
        assert_float_equal(c.x_eps, (1 - c.x_x0) / t, 1e-12);
        assert_float_equal(c.f_eps, -c.f_x0 / t, 1e-12);
        /* the time input: 250 ln sigma */
        assert_float_equal(s.ops->c_noise(&s, t), 250 * log(t), 1e-9);
    }
    /* sigma_data 0 in the options: the run's measured value (the argument) is used. */
    po.sigma_data = 0;
    dm_param_coef_at(&dm_param_consistency, &po, &s, 1.0, 1.7, &c);
    assert_float_equal(c.c_in, 1 / sqrt(1 + 1.7 * 1.7), 1e-15);
    dm_schedule_free(&s);

    dm_vp_schedule_opts vo = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-3, .t_end = 1e-3 };
    assert_int_equal(dm_schedule_init(&s, &dm_schedule_vp, &vo, err), DM_OK);
    assert_int_equal(dm_param_consistency.check(NULL, &s, err), DM_E_INPUT);
    assert_non_null(strstr(err, "alpha = 1"));
    dm_schedule_free(&s);
}

/* CD's teacher step on data N(m, s^2 I), whose PF-ODE (alpha = 1) is solved exactly:
 * x(sigma) = m + (x(sigma') - m) sqrt(sigma^2 + s^2)/sqrt(sigma'^2 + s^2). With the analytic
 * denoiser as teacher, the one-step error shrinks as h^2 (Euler's local error) and h^3 (Heun's)
 * when the step h halves, and Heun is the more accurate. */
static void test_teacher_step_orders(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double w = 1.0, mu[2] = { 0.5, -1.0 }, sd = 0.8;
    dm_gmm g = { .k = 1, .dim = 2, .w = &w, .mu = mu, .s = &sd };
    dm_edm_schedule_opts so = { .sigma_min = 0.002, .sigma_max = 80, .rho = 7, .p_mean = -1.2, .p_std = 1.2 };
    dm_schedule sch;
    assert_int_equal(dm_schedule_init(&sch, &dm_schedule_edm, &so, err), DM_OK);
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, &g, &sch, 4);
    const float x[2] = { 2.5f, 1.0f };
    const double s0 = 2.0;
    double e_prev[2] = { 0, 0 };
    for (int k = 0; k < 3; k++) {
        const double h = 0.2 / (1 << k), ts[1] = { s0 }, tt[1] = { s0 - h };
        double e[2];
        for (int heun = 0; heun < 2; heun++) {
            float y[2], D[2], D2[2];
            assert_int_equal(dm_cm_teacher_step(&den, heun, 1, x, ts, tt, y, D, D2, err), DM_OK);
            const double r = sqrt(tt[0] * tt[0] + sd * sd) / sqrt(s0 * s0 + sd * sd);
            e[heun] = 0;
            for (int j = 0; j < 2; j++)
                e[heun] = fmax(e[heun], fabs(y[j] - (mu[j] + (x[j] - mu[j]) * r)));
        }
        assert_true(e[1] < e[0]);
        if (k > 0) {
            const double re = e_prev[0] / e[0], rh = e_prev[1] / e[1];
            if (re < 3.5 || re > 4.6 || rh < 6.5 || rh > 10)
                fail_msg("h %g: error ratios Euler %.3f (want ~4), Heun %.3f (want ~8)", h, re, rh);
        }
        e_prev[0] = e[0];
        e_prev[1] = e[1];
    }
    dm_schedule_free(&sch);
}

static void test_pseudo_huber_limits(void **state)
{
    (void)state;
    enum { D = 16 };
    float x[D], y[D], g[D];
    const double c = dm_cm_huber_c(D);   /* 0.00216 */
    /* Tiny differences: s = |x - y|^2 ~ 1.5e-11 << c^2 ~ 4.7e-6, u = s/c^2 ~ 3e-6:
     * sqrt(s + c^2) - c = c (u/2 - u^2/8 + u^3/16 - ...). A naive evaluation loses ~1e-10 of it. */
    double s = 0.0;
    for (int j = 0; j < D; j++) {
        y[j] = 0.25f * (float)(j % 5) - 0.5f;
        x[j] = y[j] + 1e-7f * (float)(j + 1) * (j % 2 ? 1.0f : -1.0f);
        const double r = (double)x[j] - y[j];
        s += r * r;
    }
    const double u = s / (c * c);
    const double ph = dm_cm_distance(DM_CM_PSEUDO_HUBER, D, x, y, c, g);
    assert_true(u > 1e-7 && u < 1e-4);
    assert_true(rel_close(ph, c * (u / 2 - u * u / 8 + u * u * u / 16), 1e-13));
    /* ... which is d l2/(2c) to first order, with gradient (x - y)/c. */
    const double l2 = dm_cm_distance(DM_CM_L2, D, x, y, 0.0, NULL);
    assert_true(rel_close(ph, D * l2 / (2.0 * c), 1e-5));
    for (int j = 0; j < D; j++)
        assert_true(rel_close(g[j], ((double)x[j] - y[j]) / c, 1e-5));

    /* Large differences: about the Euclidean norm, sqrt(s + c^2) - c = |r| - c + c^2/(2|r|) - ... */
    s = 0.0;
    for (int j = 0; j < D; j++) {
        x[j] = 100.0f + (float)j;
        y[j] = -(float)(j % 3);
        const double r = (double)x[j] - y[j];
        s += r * r;
    }
    const double norm = sqrt(s);
    const double big = dm_cm_distance(DM_CM_PSEUDO_HUBER, D, x, y, c, g);
    assert_true(big <= norm - c + c * c / (2.0 * norm) + 1e-13 * norm);
    assert_true(big >= norm - c - 1e-13 * norm);
    assert_true(rel_close(big, norm, 1e-4));
    /* Unit gradient in the direction of x - y. */
    double gn = 0.0;
    for (int j = 0; j < D; j++)
        gn += (double)g[j] * g[j];
    assert_true(fabs(sqrt(gn) - 1.0) < 1e-6);
}

static void test_distance_names_and_bad_kind(void **state)
{
    (void)state;
    assert_string_equal(dm_cm_distance_names[DM_CM_L2], "l2");
    assert_string_equal(dm_cm_distance_names[DM_CM_L1], "l1");
    assert_string_equal(dm_cm_distance_names[DM_CM_PSEUDO_HUBER], "pseudo_huber");
    assert_null(dm_cm_distance_names[3]);
    const float x[1] = { 1.0f }, y[1] = { 0.0f };
    assert_true(isnan(dm_cm_distance(3, 1, x, y, 0.1, NULL)));
    assert_true(isnan(dm_cm_distance(-1, 1, x, y, 0.1, NULL)));
    assert_true(dm_cm_distance(DM_CM_L2, 0, x, y, 0.1, NULL) == 0.0);
}

/* ---- multistep sampling ---- */

static void test_multistep_noise(void **state)
{
    (void)state;
    assert_true(rel_close(dm_cm_multistep_noise(0.5, 0.3), 0.4, 1e-15));
    assert_true(rel_close(dm_cm_multistep_noise(80.0, 0.002), sqrt(6400.0 - 4e-6), 1e-15));
    assert_true(rel_close(dm_cm_multistep_noise(0.005, 0.003), 0.004, 1e-15));
    assert_true(dm_cm_multistep_noise(0.002, 0.002) == 0.0);
    assert_true(dm_cm_multistep_noise(0.001, 0.002) == 0.0);   /* below t_min: no noise, no NaN */
    const double just = dm_cm_multistep_noise(nextafter(0.002, 1.0), 0.002);
    assert_true(just > 0.0 && just < 1e-8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary_bit_exact),
        cmocka_unit_test(test_loss_rows_gradient),
        cmocka_unit_test(test_param_consistency),
        cmocka_unit_test(test_teacher_step_orders),
        cmocka_unit_test(test_coef_closed_forms),
        cmocka_unit_test(test_karras_grid),
        cmocka_unit_test(test_ct_n_steps),
        cmocka_unit_test(test_ct_mu),
        cmocka_unit_test(test_ict_n_steps),
        cmocka_unit_test(test_curriculum_check),
        cmocka_unit_test(test_ict_index_probs),
        cmocka_unit_test(test_ict_index_probs_errors),
        cmocka_unit_test(test_sample_index_edges),
        cmocka_unit_test(test_sample_index_frequencies),
        cmocka_unit_test(test_ict_weight),
        cmocka_unit_test(test_distance_hand_values),
        cmocka_unit_test(test_distance_gradients),
        cmocka_unit_test(test_pseudo_huber_limits),
        cmocka_unit_test(test_distance_names_and_bad_kind),
        cmocka_unit_test(test_multistep_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
