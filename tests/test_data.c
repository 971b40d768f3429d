/* test_data.c — the data plug-ins: registry, determinism per seed, shape and moments of each
 * generator, gmm option checks, and the mixture handed to the analytic denoiser. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "data/datasets.h"

#define N_BIG 100000

static void near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("%s: got %.17g, want %.17g (tolerance %g)\n", what, got, want, tol);
        fail();
    }
}

/* Draw n points of ops with a fresh stream of seed; the caller frees *x and *labels. */
static void draw(const dm_data_ops *ops, const void *opts, size_t n, uint64_t seed, float **x,
                 int32_t **labels)
{
    char err[DM_ERR_SIZE];
    dm_rng rng;
    size_t dim = ops->dim(opts);
    *x = dm_malloc(n * dim * sizeof **x);
    *labels = dm_malloc(n * sizeof **labels);
    assert_non_null(*x);
    assert_non_null(*labels);
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    dm_status st = ops->generate(opts, DM_DATA_TRAIN, n, &rng, *x, *labels, err);
    if (st != DM_OK)
        print_error("%s: %s\n", ops->info.name, err);
    assert_int_equal(st, DM_OK);
    dm_rng_free(&rng);
}

/* Same seed: same bits; another seed: other points. */
static void check_seeded(const dm_data_ops *ops, const void *opts)
{
    size_t n = 1000, dim = ops->dim(opts);
    float *x1, *x2, *x3;
    int32_t *l1, *l2, *l3;
    draw(ops, opts, n, 42, &x1, &l1);
    draw(ops, opts, n, 42, &x2, &l2);
    draw(ops, opts, n, 43, &x3, &l3);
    assert_memory_equal(x1, x2, n * dim * sizeof *x1);
    assert_memory_equal(l1, l2, n * sizeof *l1);
    assert_memory_not_equal(x1, x3, n * dim * sizeof *x1);
    for (size_t i = 0; i < n * dim; i++)
        assert_true(isfinite(x1[i]));
    for (size_t i = 0; i < n; i++)
        assert_true(l1[i] >= 0 && (size_t)l1[i] < ops->n_classes(opts));
    dm_free(x1), dm_free(x2), dm_free(x3);
    dm_free(l1), dm_free(l2), dm_free(l3);
}

/* Label frequencies close to p (4.5 binomial standard deviations). */
static void check_freq(const int32_t *labels, size_t n, size_t k, const double *p)
{
    size_t count[64] = {0};
    assert_true(k <= 64);
    for (size_t i = 0; i < n; i++)
        count[labels[i]]++;
    for (size_t j = 0; j < k; j++) {
        double f = (double)count[j] / (double)n;
        near(f, p[j], 4.5 * sqrt(p[j] * (1.0 - p[j]) / (double)n) + 1e-12, "label frequency");
    }
}

static double gmm_vals_w[] = {1.0, 2.0, 1.0, 0.0};
static double gmm_vals_mu[] = {-1.0, 0.0, 2.0, 1.0, 1.0, -3.0, 0.5, 4.0, 0.0, 9.0, 9.0, 9.0};
static double gmm_vals_s[] = {0.2, 0.5, 1.0, 0.3};

/* A 4-component 3-D mixture whose last component has weight 0. */
static dm_gmm_opts gmm_opts3(void)
{
    dm_gmm_opts o = {
        .weights = {gmm_vals_w, 4, 0},
        .means = {gmm_vals_mu, 12, 4},
        .stds = {gmm_vals_s, 4, 0},
    };
    return o;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_registry(void **state)
{
    (void)state;
    const char *names[] = {"moons", "eight_gaussians", "swissroll", "checkerboard", "gmm", "image_mixture",
                           "fashion_mnist"};
    size_t n = 0;
    while (dm_data_registry[n])
        n++;
    assert_int_equal(n, 7);
    for (size_t i = 0; i < 7; i++) {
        const dm_plugin *p = dm_registry_find(dm_data_registry, names[i]);
        assert_non_null(p);
        assert_ptr_equal(p, dm_data_registry[i]);
        assert_non_null(p->doc);
        for (const dm_param_desc *d = p->params; d && d->name; d++) {
            assert_non_null(d->def);
            assert_non_null(d->doc);
            assert_true(d->min <= d->max);
            assert_true(d->offset < p->opts_size);
        }
    }
    assert_null(dm_registry_find(dm_data_registry, "mnist"));
    /* The vtable starts with its descriptor. */
    assert_ptr_equal((const dm_data_ops *)dm_registry_find(dm_data_registry, "gmm"), &dm_data_gmm_ops);
}

static void test_moons(void **state)
{
    (void)state;
    dm_moons_opts o = {.noise = 0.05};
    check_seeded(&dm_data_moons, &o);
    float *x, *x0;
    int32_t *l, *l0;
    draw(&dm_data_moons, &o, N_BIG, 7, &x, &l);
    for (size_t i = 0; i < N_BIG; i++) {
        /* sklearn's noiseless box [-1, 2] x [-0.5, 1], widened by 6 noise std. */
        assert_true(x[2 * i] >= -1.3f && x[2 * i] <= 2.3f);
        assert_true(x[2 * i + 1] >= -0.8f && x[2 * i + 1] <= 1.3f);
    }
    check_freq(l, N_BIG, 2, (const double[]){0.5, 0.5});
    /* Noise 0: on the half circles exactly; the stream is consumed as with noise, so the same
     * seed gives the same moons, and the noise is the only difference. */
    dm_moons_opts o0 = {.noise = 0.0};
    draw(&dm_data_moons, &o0, N_BIG, 7, &x0, &l0);
    assert_memory_equal(l, l0, N_BIG * sizeof *l);
    double sx = 0.0, sxx = 0.0;
    for (size_t i = 0; i < N_BIG; i++) {
        double px = x0[2 * i], py = x0[2 * i + 1];
        if (l0[i] == 0) {
            near(px * px + py * py, 1.0, 1e-6, "moon 0 radius");
            assert_true(py >= 0.0);
        } else {
            near((px - 1.0) * (px - 1.0) + (py - 0.5) * (py - 0.5), 1.0, 1e-6, "moon 1 radius");
            assert_true(py <= 0.5);
        }
        double e = (x[2 * i] - px) / 0.05;
        sx += e;
        sxx += e * e;
    }
    near(sx / N_BIG, 0.0, 0.02, "noise mean");
    near(sxx / N_BIG, 1.0, 0.02, "noise variance / noise^2");
    dm_free(x), dm_free(l), dm_free(x0), dm_free(l0);
}

static void test_eight_gaussians(void **state)
{
    (void)state;
    dm_eight_gaussians_opts o = {.radius = 2.0, .std = 0.1};
    check_seeded(&dm_data_eight_gaussians, &o);
    float *x;
    int32_t *l;
    draw(&dm_data_eight_gaussians, &o, N_BIG, 9, &x, &l);
    double s2[8] = {0};
    size_t cnt[8] = {0};
    for (size_t i = 0; i < N_BIG; i++) {
        double c[2];
        dm_eight_gaussians_centre(&o, (unsigned)l[i], c);
        near(hypot(c[0], c[1]), 2.0, 1e-15, "centre radius");
        near(atan2(c[1], c[0]), atan2(sin(2 * M_PI * l[i] / 8), cos(2 * M_PI * l[i] / 8)), 1e-15,
             "centre angle");
        double dx = x[2 * i] - c[0], dy = x[2 * i + 1] - c[1];
        assert_true(fabs(dx) < 5 * o.std && fabs(dy) < 5 * o.std);
        s2[l[i]] += dx * dx + dy * dy;
        cnt[l[i]]++;
    }
    for (size_t k = 0; k < 8; k++)
        near(sqrt(s2[k] / (2.0 * (double)cnt[k])), o.std, 0.03 * o.std, "component std");
    double p[8] = {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125};
    check_freq(l, N_BIG, 8, p);
    dm_free(x), dm_free(l);
}

static void test_swissroll(void **state)
{
    (void)state;
    dm_swissroll_opts o = {.noise = 0.0, .scale = 0.1};
    check_seeded(&dm_data_swissroll, &o);
    float *x;
    int32_t *l;
    draw(&dm_data_swissroll, &o, N_BIG, 11, &x, &l);
    double tsum = 0.0;
    for (size_t i = 0; i < N_BIG; i++) {
        assert_int_equal(l[i], 0);
        /* Without noise, the point is scale * t (cos t, sin t) with t = |point| / scale. */
        double px = x[2 * i] / o.scale, py = x[2 * i + 1] / o.scale, t = hypot(px, py);
        assert_true(t >= 1.5 * M_PI - 1e-4 && t <= 4.5 * M_PI + 1e-4);
        near(px, t * cos(t), 2e-5 * t, "roll x");
        near(py, t * sin(t), 2e-5 * t, "roll z");
        tsum += t;
    }
    near(tsum / N_BIG, 3.0 * M_PI, 0.02, "mean of t (uniform on [1.5 pi, 4.5 pi])");
    dm_free(x), dm_free(l);
    dm_swissroll_opts on = {.noise = 0.5, .scale = 0.1};
    check_seeded(&dm_data_swissroll, &on);
}

static void test_checkerboard(void **state)
{
    (void)state;
    check_seeded(&dm_data_checkerboard, NULL);
    float *x;
    int32_t *l;
    draw(&dm_data_checkerboard, NULL, N_BIG, 13, &x, &l);
    double mx = 0.0, my = 0.0;
    for (size_t i = 0; i < N_BIG; i++) {
        double px = x[2 * i], py = x[2 * i + 1];
        assert_true(px >= -4.0 && px <= 4.0 && py >= -4.0 && py <= 4.0);
        int c = (int)floor((px + 4.0) / 2.0), r = (int)floor((py + 4.0) / 2.0);
        c = c > 3 ? 3 : c; /* a float rounded up to exactly 4.0 */
        r = r > 3 ? 3 : r;
        assert_int_equal((c + r) % 2, 0);                 /* only filled squares */
        assert_int_equal(l[i], 2 * c + (r >= 2 ? 1 : 0)); /* square k: c = k / 2, r = 2 (k % 2) + c % 2 */
        mx += px;
        my += py;
    }
    near(mx / N_BIG, 0.0, 0.03, "mean x");
    near(my / N_BIG, 0.0, 0.03, "mean y");
    double p[8] = {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125};
    check_freq(l, N_BIG, 8, p);
    dm_free(x), dm_free(l);
}

static void test_gmm_generate(void **state)
{
    (void)state;
    dm_gmm_opts o = gmm_opts3();
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_data_gmm_ops.check(&o, err), DM_OK);
    assert_int_equal(dm_data_gmm_ops.dim(&o), 3);
    assert_int_equal(dm_data_gmm_ops.n_classes(&o), 4);
    check_seeded(&dm_data_gmm_ops, &o);
    float *x;
    int32_t *l;
    draw(&dm_data_gmm_ops, &o, N_BIG, 17, &x, &l);
    check_freq(l, N_BIG, 4, (const double[]){0.25, 0.5, 0.25, 0.0});
    /* Sample mean vs sum_k w_k mu_k; its std is at most sqrt(Var / n) with Var <= ~10 here. */
    for (size_t c = 0; c < 3; c++) {
        double m = 0.0, want = 0.0;
        for (size_t i = 0; i < N_BIG; i++)
            m += x[3 * i + c];
        for (size_t k = 0; k < 4; k++)
            want += gmm_vals_w[k] / 4.0 * gmm_vals_mu[3 * k + c];
        near(m / N_BIG, want, 0.05, "mixture mean");
    }
    dm_free(x), dm_free(l);
}

/* Inconsistent options: check() names the key, generate() refuses them too. */
static void test_gmm_check(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    double w2[] = {0.5, 0.5}, w3[] = {0.2, 0.3, 0.5};
    double m2[] = {-1.0, 0.0, 1.0, 0.0}, m3[] = {0, 0, 1, 1, 2, 2};
    double s2[] = {0.2, 0.2}, s3[] = {0.1, 0.1, 0.1}, sbad[] = {0.2, 0.0};
    double wneg[] = {0.5, -0.1}, wzero[] = {0.0, 0.0};
    double cls1[] = {0}, clsfrac[] = {0, 0.5}, clsgap[] = {0, 2};
    dm_gmm_opts ok = {{w2, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {NULL, 0, 0}};
    assert_int_equal(dm_data_gmm_ops.check(&ok, err), DM_OK);
    assert_int_equal(dm_data_gmm_ops.dim(&ok), 2);

    struct {
        dm_gmm_opts o;
        const char *msg;
    } bad[] = {
        {{{w2, 2, 0}, {m3, 6, 3}, {s2, 2, 0}, {NULL, 0, 0}}, "data.means: 3 rows but data.weights has 2 values"},
        {{{w2, 2, 0}, {m2, 4, 0}, {s2, 2, 0}, {NULL, 0, 0}}, "data.means: must be a list of rows"},
        {{{w2, 2, 0}, {m2, 4, 2}, {s3, 3, 0}, {NULL, 0, 0}}, "data.stds: 3 values but data.weights has 2 values"},
        {{{w3, 3, 0}, {m3, 6, 3}, {s2, 2, 0}, {NULL, 0, 0}}, "data.stds: 2 values but data.weights has 3 values"},
        {{{w2, 0, 0}, {m2, 4, 2}, {s2, 2, 0}, {NULL, 0, 0}}, "data.weights: needs at least one value"},
        {{{w2, 2, 2}, {m2, 4, 2}, {s2, 2, 0}, {NULL, 0, 0}}, "data.weights: must be a flat list"},
        {{{w2, 2, 0}, {m2, 4, 2}, {sbad, 2, 0}, {NULL, 0, 0}}, "data.stds[1] = 0: "},
        {{{wneg, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {NULL, 0, 0}}, "data.weights[1] = -0.1: "},
        {{{wzero, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {NULL, 0, 0}}, "data.weights: the weights sum to 0"},
        {{{w2, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {cls1, 1, 0}}, "data.classes: needs a flat list of 2 class numbers"},
        {{{w2, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {clsfrac, 2, 0}}, "data.classes[1] = 0.5: classes are integers"},
        {{{w2, 2, 0}, {m2, 4, 2}, {s2, 2, 0}, {clsgap, 2, 0}}, "data.classes: class 1 has no component"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(dm_data_gmm_ops.check(&bad[i].o, err), DM_E_INPUT);
        if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0) {
            print_error("case %zu: got '%s', want a message starting '%s'\n", i, err, bad[i].msg);
            fail();
        }
        /* generate refuses the same options instead of reading out of bounds */
        float x[6];
        dm_rng rng;
        assert_int_equal(dm_rng_init(&rng, 1, err), DM_OK);
        assert_int_equal(dm_data_gmm_ops.generate(&bad[i].o, DM_DATA_TRAIN, 1, &rng, x, NULL, err), DM_E_INPUT);
        dm_rng_free(&rng);
    }
}

static void test_data_gmm(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_gmm g;
    dm_gmm_opts o = gmm_opts3();
    assert_int_equal(dm_data_gmm(&dm_data_gmm_ops, &o, &g, err), DM_OK);
    assert_int_equal(g.k, 4);
    assert_int_equal(g.dim, 3);
    double wsum = 0.0;
    for (size_t k = 0; k < 4; k++) {
        near(g.w[k], gmm_vals_w[k] / 4.0, 1e-15, "normalized weight");
        assert_true(g.s[k] == gmm_vals_s[k]);
        wsum += g.w[k];
    }
    near(wsum, 1.0, 1e-15, "weights sum");
    assert_memory_equal(g.mu, gmm_vals_mu, sizeof gmm_vals_mu);
    dm_gmm_free(&g);
    assert_null(g.w);

    /* eight_gaussians: the same centres as the generator uses, bit for bit. */
    dm_eight_gaussians_opts e = {.radius = 2.0, .std = 0.1};
    assert_int_equal(dm_data_gmm(&dm_data_eight_gaussians, &e, &g, err), DM_OK);
    assert_int_equal(g.k, 8);
    assert_int_equal(g.dim, 2);
    for (unsigned k = 0; k < 8; k++) {
        double c[2];
        dm_eight_gaussians_centre(&e, k, c);
        assert_memory_equal(g.mu + 2 * k, c, sizeof c);
        assert_true(g.w[k] == 0.125 && g.s[k] == 0.1);
    }
    assert_true(g.mu[4] == 0.0 && g.mu[5] == 2.0); /* k = 2 lies on the axis exactly */
    dm_gmm_free(&g);

    dm_moons_opts m = {.noise = 0.05};
    assert_int_equal(dm_data_gmm(&dm_data_moons, &m, &g, err), DM_E_INPUT);
    assert_non_null(strstr(err, "'moons' is not a Gaussian mixture"));
    assert_null(g.w);
    dm_gmm_free(&g); /* harmless on a zeroed mixture */

    /* Each allocation failing in turn is an error, not a leak (ASan checks). */
    for (long k = 1; k <= 3; k++) {
        dm_alloc_fail_at(k);
        dm_status st = dm_data_gmm(&dm_data_gmm_ops, &o, &g, err);
        dm_alloc_fail_at(0);
        assert_int_equal(st, DM_E_NOMEM);
        assert_null(g.w);
        assert_null(g.mu);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),        cmocka_unit_test(test_moons),
        cmocka_unit_test(test_eight_gaussians), cmocka_unit_test(test_swissroll),
        cmocka_unit_test(test_checkerboard),    cmocka_unit_test(test_gmm_generate),
        cmocka_unit_test(test_gmm_check),       cmocka_unit_test(test_data_gmm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
