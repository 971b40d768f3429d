/* nn_check.h — helpers shared by the layer tests (tests/test_nn_*.c) and the network tests (through
 * unet_check.h): allocation, random fill, closeness in double, and the central-difference check of a
 * gradient against a double reference. Include after <cmocka.h>. */
#ifndef DM_TESTS_NN_CHECK_H
#define DM_TESTS_NN_CHECK_H

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* |a - b| <= tol in double (cmocka's assert_float_equal rounds to float). */
#define assert_close(a, b, tol)                                                                              \
    do {                                                                                                     \
        const double a_ = (a), b_ = (b), t_ = (tol);                                                         \
        if (!(fabs(a_ - b_) <= t_))                                                                          \
            fail_msg("%s = %.17g, want %s = %.17g (tolerance %.3g)", #a, a_, #b, b_, t_);                    \
    } while (0)

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* m floats: offset + scale * N(0, 1) from a fresh stream of seed. */
static inline float *rand_floats(size_t m, uint64_t seed, double offset, double scale)
{
    char err[DM_ERR_SIZE];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    float *v = xmalloc(m * sizeof(float));
    for (size_t i = 0; i < m; i++)
        v[i] = (float)(offset + scale * dm_rng_normal(&rng));
    dm_rng_free(&rng);
    return v;
}

static inline double *to_double(const float *v, size_t m)
{
    double *d = xmalloc(m * sizeof(double));
    for (size_t i = 0; i < m; i++)
        d[i] = v[i];
    return d;
}

/* A scalar loss of a double reference: L(ctx) reads whatever arrays ctx points to. */
typedef double (*nn_loss_fn)(void *ctx);

/* Central differences of L in every entry of v (m values, which L reads through ctx), step h,
 * against the analytic gradient g: |g - fd| <= abs_tol + rel_tol |fd|. what names v in messages. */
static inline void nn_check_fd(const char *what, nn_loss_fn L, void *ctx, double *v, size_t m, const float *g,
                               double h, double abs_tol, double rel_tol)
{
    double worst = 0.0; // largest |g - fd| / (abs_tol + rel_tol |fd|)
    for (size_t i = 0; i < m; i++) {
        const double v0 = v[i];
        v[i] = v0 + h;
        const double lp = L(ctx);
        v[i] = v0 - h;
        const double lm = L(ctx);
        v[i] = v0;
        const double fd = (lp - lm) / (2 * h);
        if (!(fabs(g[i] - fd) <= abs_tol + rel_tol * fabs(fd)))
            fail_msg("d%s[%zu] = %.9g, central difference %.9g (h %g)", what, i, g[i], fd, h);
        worst = fmax(worst, fabs(g[i] - fd) / (abs_tol + rel_tol * fabs(fd)));
    }
    if (getenv("NN_CHECK_VERBOSE")) // how close to the tolerance the check came
        printf("  d%s: %zu entries, worst error %.3f of the tolerance\n", what, m, worst);
}

/* sum a[i] r[i] in double. */
static inline double dot_fd(const float *a, const float *r, size_t m)
{
    double s = 0.0;
    for (size_t i = 0; i < m; i++)
        s += (double)a[i] * r[i];
    return s;
}

static inline double dot_dd(const double *a, const float *r, size_t m)
{
    double s = 0.0;
    for (size_t i = 0; i < m; i++)
        s += a[i] * r[i];
    return s;
}

#endif
