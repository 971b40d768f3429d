/* test_nn_conv.c — convolution layers (nn/conv): shapes and init; the forward against a naive
 * double-precision loop; dx, dW, db against the exact gradients of that loop (checked themselves
 * by central differences of it) and against central differences of the float forward; acc_dx;
 * dx = NULL; a shared workspace; and the same bits on 1 and 2 threads at batches that are not a
 * multiple of the tile. Every variant: 3x3 stride 1 and 2, 1x1 stride 1 and 2, odd sizes (7x7,
 * 5x6), cin != cout, one input or output channel, channel counts across oneDNN's 16-blocks. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "nn/conv.h"

typedef struct {
    int cin, cout, k, stride, h, w;
} shape;

static const shape variants[] = {
    {3, 5, 3, 1, 7, 7},   // 3x3 s1, odd size, cin != cout
    {4, 6, 3, 2, 7, 7},   // 3x3 s2 on an odd size (7 -> 4)
    {2, 3, 3, 2, 5, 6},   // 3x3 s2 on 5x6 (-> 3x3)
    {2, 7, 3, 1, 5, 6},   // 3x3 s1 on 5x6
    {5, 3, 1, 1, 5, 6},   // 1x1 s1
    {3, 4, 1, 2, 7, 7},   // 1x1 s2 (7 -> 4)
    {1, 4, 3, 1, 7, 7},   // one input channel (the U-Net's first conv)
    {4, 1, 3, 1, 5, 6},   // one output channel (its last)
    {20, 17, 3, 1, 5, 6}, // channels across oneDNN's blocks of 16
    {18, 33, 3, 2, 6, 6}, // ... with stride 2
};
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* One layer with random parameters, input x and loss weights r (L = sum(y r), so dL/dy = r). */
typedef struct {
    shape s;
    dm_conv c;
    dm_conv_ws ws;
    int n;
    size_t nx, ny;
    float *p, *x, *r; // params (W then b), x (n, cin, h, w), r (n, cout, ho, wo)
} fixture;

static void uniform(dm_rng *rng, float *v, size_t n, double a)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(a * (2.0 * dm_rng_uniform(rng) - 1.0));
}

static void fixture_init(fixture *f, const shape *s, int n, uint64_t seed)
{
    char err[DM_ERR_SIZE];
    f->s = *s;
    f->n = n;
    assert_int_equal(dm_conv_init(&f->c, s->cin, s->cout, s->k, s->stride, s->h, s->w, err), DM_OK);
    assert_int_equal(dm_conv_ws_init(&f->ws, &f->c, n > 0 ? n : 1, err), DM_OK);
    f->nx = (size_t)n * s->cin * s->h * s->w;
    f->ny = (size_t)n * s->cout * f->c.ho * f->c.wo;
    f->p = xmalloc(f->c.n_params * sizeof(float));
    f->x = xmalloc(f->nx * sizeof(float));
    f->r = xmalloc(f->ny * sizeof(float));
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    dm_conv_init_params(&f->c, f->p, &rng);
    uniform(&rng, f->p + f->c.n_w, (size_t)s->cout, 1.0); // biases larger than the init's
    uniform(&rng, f->x, f->nx, 1.0);
    uniform(&rng, f->r, f->ny, 1.0);
    dm_rng_free(&rng);
}

static void fixture_free(fixture *f)
{
    dm_conv_ws_free(&f->ws);
    dm_conv_free(&f->c);
    free(f->p);
    free(f->x);
    free(f->r);
}

/* The input pixel under output (oy, ox) and tap (ky, kx), or -1 in the zero padding. */
static long in_index(const fixture *f, int i, int ci, int oy, int ox, int ky, int kx)
{
    const int iy = oy * f->s.stride + ky - f->c.pad, ix = ox * f->s.stride + kx - f->c.pad;
    if (iy < 0 || iy >= f->s.h || ix < 0 || ix >= f->s.w)
        return -1;
    return (((long)i * f->s.cin + ci) * f->s.h + iy) * f->s.w + ix;
}

/* Naive double-precision convolution of (params p, input x): y, and per output the scale
 * |b| + sum |W x| (for tolerances), when scale is not NULL. */
static void naive_forward(const fixture *f, const float *p, const float *x, double *y, double *scale)
{
    const int k = f->s.k, ho = f->c.ho, wo = f->c.wo;
    for (int i = 0; i < f->n; i++)
        for (int o = 0; o < f->s.cout; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double acc = p[f->c.n_w + o], sc = fabs(acc);
                    for (int ci = 0; ci < f->s.cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const long xi = in_index(f, i, ci, oy, ox, ky, kx);
                                if (xi < 0)
                                    continue;
                                const double t = (double)p[((o * f->s.cin + ci) * k + ky) * k + kx] * x[xi];
                                acc += t;
                                sc += fabs(t);
                            }
                    const size_t yi = (((size_t)i * f->s.cout + o) * ho + oy) * wo + ox;
                    y[yi] = acc;
                    if (scale)
                        scale[yi] = sc;
                }
}

/* L = sum(y r) of the naive forward. */
static double naive_loss(const fixture *f, const float *p, const float *x)
{
    double *y = xmalloc(f->ny * sizeof *y), l = 0.0;
    naive_forward(f, p, x, y, NULL);
    for (size_t i = 0; i < f->ny; i++)
        l += y[i] * f->r[i];
    free(y);
    return l;
}

/* Exact gradients of L in double: dp (W then b), dx; and their scales (sums of |terms|). */
static void naive_grads(const fixture *f, double *dp, double *dps, double *dx, double *dxs)
{
    const int k = f->s.k, ho = f->c.ho, wo = f->c.wo;
    memset(dp, 0, f->c.n_params * sizeof *dp);
    memset(dps, 0, f->c.n_params * sizeof *dps);
    memset(dx, 0, f->nx * sizeof *dx);
    memset(dxs, 0, f->nx * sizeof *dxs);
    for (int i = 0; i < f->n; i++)
        for (int o = 0; o < f->s.cout; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    const double r = f->r[(((size_t)i * f->s.cout + o) * ho + oy) * wo + ox];
                    dp[f->c.n_w + o] += r;
                    dps[f->c.n_w + o] += fabs(r);
                    for (int ci = 0; ci < f->s.cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const long xi = in_index(f, i, ci, oy, ox, ky, kx);
                                if (xi < 0)
                                    continue;
                                const size_t wi = ((size_t)(o * f->s.cin + ci) * k + ky) * k + kx;
                                dp[wi] += r * f->x[xi];
                                dps[wi] += fabs(r * f->x[xi]);
                                dx[xi] += r * f->p[wi];
                                dxs[xi] += fabs(r * f->p[wi]);
                            }
                }
}

/* |got - want| <= 1e-5 scale + 1e-30 for each of n values (fp32 sums of up to a few hundred terms). */
static void check_close(const char *what, const shape *s, const float *got, const double *want,
                        const double *scale, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-5 * scale[i] + 1e-30))
            fail_msg("conv %d->%d k%d s%d %dx%d: %s[%zu] = %.9g, want %.9g (scale %.3g)", s->cin, s->cout, s->k,
                     s->stride, s->h, s->w, what, i, got[i], want[i], scale[i]);
}

static void test_shapes_and_init(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_conv c;
    assert_int_equal(dm_conv_init(&c, 32, 64, 3, 2, 28, 28, err), DM_OK);
    assert_int_equal(c.ho, 14);
    assert_int_equal(c.wo, 14);
    assert_int_equal(c.n_w, 64 * 32 * 9);
    assert_int_equal(c.n_params, 64 * 32 * 9 + 64);
    dm_rng a, b;
    assert_int_equal(dm_rng_init(&a, 7, err), DM_OK);
    assert_int_equal(dm_rng_init(&b, 7, err), DM_OK);
    float *p = xmalloc(c.n_params * sizeof *p);
    dm_conv_init_params(&c, p, &a);
    const double bound = 1.0 / sqrt(32.0 * 9.0);
    for (size_t i = 0; i < c.n_params; i++) // documented order: W row-major, then b, one draw each
        assert_true(p[i] == (float)((2.0 * dm_rng_uniform(&b) - 1.0) * bound));
    free(p);
    dm_rng_free(&a);
    dm_rng_free(&b);
    dm_conv_free(&c);
    assert_int_equal(dm_conv_init(&c, 3, 5, 1, 2, 7, 6, err), DM_OK);
    assert_int_equal(c.ho, 4);
    assert_int_equal(c.wo, 3);
    dm_conv_free(&c);
    const int bad[][6] = {{0, 4, 3, 1, 8, 8}, {4, 0, 3, 1, 8, 8}, {4, 4, 5, 1, 8, 8},
                          {4, 4, 3, 3, 8, 8}, {4, 4, 3, 1, 0, 8}, {4, 4, 3, 1, 8, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dm_conv_init(&c, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5], err),
                         DM_E_INPUT);
        assert_non_null(strstr(err, "conv: bad shape"));
    }
    dm_conv_ws ws;
    assert_int_equal(dm_conv_init(&c, 2, 2, 3, 1, 4, 4, err), DM_OK);
    assert_int_equal(dm_conv_ws_init(&ws, &c, 0, err), DM_E_INPUT);
    dm_conv_free(&c);
}

static void test_forward_naive(void **state)
{
    (void)state;
    const int batches[] = {3, 11};
    for (int v = 0; v < N_VARIANTS; v++)
        for (int b = 0; b < 2; b++) {
            fixture f;
            fixture_init(&f, &variants[v], batches[b], 100 + (uint64_t)v);
            float *y = xmalloc(f.ny * sizeof *y);
            double *yr = xmalloc(f.ny * sizeof *yr), *sc = xmalloc(f.ny * sizeof *sc);
            dm_conv_forward(&f.c, f.p, f.p + f.c.n_w, &f.ws, f.n, f.x, y);
            naive_forward(&f, f.p, f.x, yr, sc);
            check_close("y", &f.s, y, yr, sc, f.ny);
            free(y);
            free(yr);
            free(sc);
            fixture_free(&f);
        }
}

/* Backward against the exact double gradients (at batch 3, themselves checked at sampled entries
 * by central differences of the naive loss, which is linear in each argument: h = 1e-3 is exact
 * up to rounding), and sampled entries against central differences of the float forward. */
static void test_grad(void **state)
{
    (void)state;
    for (int vb = 0; vb < 2 * N_VARIANTS; vb++) { // batch 3 (one partial tile), 11 (a full one too)
        const int v = vb / 2, n = vb % 2 ? 11 : 3;
        fixture f;
        fixture_init(&f, &variants[v], n, 200 + (uint64_t)vb);
        const size_t np = f.c.n_params;
        float *dp = xmalloc(np * sizeof *dp), *dx = xmalloc(f.nx * sizeof *dx);
        double *rp = xmalloc(np * sizeof *rp), *rps = xmalloc(np * sizeof *rps);
        double *rx = xmalloc(f.nx * sizeof *rx), *rxs = xmalloc(f.nx * sizeof *rxs);
        dm_conv_backward(&f.c, f.p, &f.ws, f.n, f.x, f.r, dp, dp + f.c.n_w, dx, 0);
        naive_grads(&f, rp, rps, rx, rxs);
        check_close("dW", &f.s, dp, rp, rps, f.c.n_w);
        check_close("db", &f.s, dp + f.c.n_w, rp + f.c.n_w, rps + f.c.n_w, (size_t)f.s.cout);
        check_close("dx", &f.s, dx, rx, rxs, f.nx);

        dm_rng rng;
        char err[DM_ERR_SIZE];
        assert_int_equal(dm_rng_init(&rng, 300 + (uint64_t)v, err), DM_OK);
        float *y = xmalloc(f.ny * sizeof *y);
        for (int trial = 0; trial < (n == 3 ? 24 : 0); trial++) {
            const int on_x = trial % 3 == 0, on_b = trial % 3 == 2;
            const size_t idx = on_x ? dm_rng_int(&rng, f.nx)
                               : on_b ? f.c.n_w + dm_rng_int(&rng, (unsigned long)f.s.cout)
                                      : dm_rng_int(&rng, f.c.n_w);
            float *arg = on_x ? f.x : f.p;
            const float keep = arg[idx];
            double lf[2], ld[2], hh[2], scale = 0.0;
            for (int sgn = 0; sgn < 2; sgn++) {
                arg[idx] = keep + (sgn ? -1e-3f : 1e-3f);
                hh[sgn] = fabs((double)arg[idx] - keep);
                ld[sgn] = naive_loss(&f, f.p, f.x);
                dm_conv_forward(&f.c, f.p, f.p + f.c.n_w, &f.ws, f.n, f.x, y);
                lf[sgn] = 0.0;
                for (size_t i = 0; i < f.ny; i++) {
                    lf[sgn] += (double)y[i] * f.r[i];
                    scale += fabs((double)y[i] * f.r[i]);
                }
            }
            arg[idx] = keep;
            const double want = on_x ? rx[idx] : rp[idx], sc = on_x ? rxs[idx] : rps[idx];
            const double fd = (ld[0] - ld[1]) / (hh[0] + hh[1]), ffd = (lf[0] - lf[1]) / (hh[0] + hh[1]);
            if (!(fabs(fd - want) <= 1e-6 * sc + 1e-9))
                fail_msg("variant %d: central difference %.9g, exact gradient %.9g", v, fd, want);
            /* the float forward's rounding: ~1e-7 of each |y r|, divided by 2h */
            if (!(fabs(ffd - want) <= 1.2e-7 * scale / 2e-3 + 1e-4 * sc))
                fail_msg("variant %d: central difference of the float forward %.9g, exact gradient %.9g (scale %.3g)",
                         v, ffd, want, scale);
        }
        dm_rng_free(&rng);
        free(y);
        free(dp);
        free(dx);
        free(rp);
        free(rps);
        free(rx);
        free(rxs);
        fixture_free(&f);
    }
}

/* acc_dx = 1 adds the same bits that acc_dx = 0 writes; dx = NULL leaves dW and db unchanged. */
static void test_acc_dx(void **state)
{
    (void)state;
    const int batches[] = {3, 8, 11};
    for (int v = 0; v < N_VARIANTS; v++)
        for (int b = 0; b < 3; b++) {
            fixture f;
            fixture_init(&f, &variants[v], batches[b], 400 + (uint64_t)v);
            const size_t np = f.c.n_params;
            float *dp0 = xmalloc(np * sizeof(float)), *dp1 = xmalloc(np * sizeof(float));
            float *dp2 = xmalloc(np * sizeof(float)), *g = xmalloc(f.nx * sizeof(float));
            float *acc = xmalloc(f.nx * sizeof(float)), *base = xmalloc(f.nx * sizeof(float));
            dm_rng rng;
            char err[DM_ERR_SIZE];
            assert_int_equal(dm_rng_init(&rng, 500 + (uint64_t)v, err), DM_OK);
            uniform(&rng, base, f.nx, 3.0);
            dm_rng_free(&rng);
            memcpy(acc, base, f.nx * sizeof(float));
            dm_conv_backward(&f.c, f.p, &f.ws, f.n, f.x, f.r, dp0, dp0 + f.c.n_w, g, 0);
            dm_conv_backward(&f.c, f.p, &f.ws, f.n, f.x, f.r, dp1, dp1 + f.c.n_w, acc, 1);
            dm_conv_backward(&f.c, f.p, &f.ws, f.n, f.x, f.r, dp2, dp2 + f.c.n_w, NULL, 0);
            for (size_t i = 0; i < f.nx; i++)
                if (acc[i] != base[i] + g[i])
                    fail_msg("variant %d n=%d: acc dx[%zu] = %.9g, want %.9g + %.9g", v, f.n, i, acc[i], base[i],
                             g[i]);
            assert_memory_equal(dp0, dp1, np * sizeof(float));
            assert_memory_equal(dp0, dp2, np * sizeof(float));
            free(dp0);
            free(dp1);
            free(dp2);
            free(g);
            free(acc);
            free(base);
            fixture_free(&f);
        }
}

/* An empty batch has zero gradients; one workspace serves several layers. */
static void test_empty_and_shared(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, &variants[8], 5, 600);
    float *dp = xmalloc(f.c.n_params * sizeof *dp);
    for (size_t i = 0; i < f.c.n_params; i++)
        dp[i] = 1.0f;
    dm_conv_backward(&f.c, f.p, &f.ws, 0, f.x, f.r, dp, dp + f.c.n_w, NULL, 0);
    for (size_t i = 0; i < f.c.n_params; i++)
        assert_true(dp[i] == 0.0f);
    dm_conv_forward(&f.c, f.p, f.p + f.c.n_w, &f.ws, 0, f.x, NULL);

    /* the same layer through a workspace shared with a wider one: the same bits */
    char err[DM_ERR_SIZE];
    dm_conv wide;
    assert_int_equal(dm_conv_init(&wide, 40, 50, 3, 1, 9, 9, err), DM_OK);
    const dm_conv *both[2] = {&wide, &f.c};
    dm_conv_ws shared;
    assert_int_equal(dm_conv_ws_init_shared(&shared, both, 2, 5, err), DM_OK);
    float *y0 = xmalloc(f.ny * sizeof *y0), *y1 = xmalloc(f.ny * sizeof *y1);
    float *dx0 = xmalloc(f.nx * sizeof *dx0), *dx1 = xmalloc(f.nx * sizeof *dx1);
    float *dp1 = xmalloc(f.c.n_params * sizeof *dp1);
    dm_conv_forward(&f.c, f.p, f.p + f.c.n_w, &f.ws, f.n, f.x, y0);
    dm_conv_backward(&f.c, f.p, &f.ws, f.n, f.x, f.r, dp, dp + f.c.n_w, dx0, 0);
    dm_conv_forward(&f.c, f.p, f.p + f.c.n_w, &shared, f.n, f.x, y1);
    dm_conv_backward(&f.c, f.p, &shared, f.n, f.x, f.r, dp1, dp1 + f.c.n_w, dx1, 0);
    assert_memory_equal(y0, y1, f.ny * sizeof *y0);
    assert_memory_equal(dx0, dx1, f.nx * sizeof *dx0);
    assert_memory_equal(dp, dp1, f.c.n_params * sizeof *dp);
    dm_conv_ws_free(&shared);
    dm_conv_free(&wide);
    free(y0);
    free(y1);
    free(dx0);
    free(dx1);
    free(dp1);
    free(dp);
    fixture_free(&f);
}

/* Forward and backward outputs (y, dx, dW, db) on the given thread count. */
static void run_threads(fixture *f, int threads, float *out)
{
    omp_set_num_threads(threads);
    float *y = out, *dx = out + f->ny, *dp = dx + f->nx;
    dm_conv_forward(&f->c, f->p, f->p + f->c.n_w, &f->ws, f->n, f->x, y);
    dm_conv_backward(&f->c, f->p, &f->ws, f->n, f->x, f->r, dp, dp + f->c.n_w, dx, 0);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    const int saved = omp_get_max_threads();
    const shape big[] = {{32, 32, 3, 1, 14, 14}, {32, 32, 3, 2, 14, 14}, {24, 40, 1, 1, 9, 9}};
    const int batches[] = {11, 19, 27}; // 1 + partial, 2 + partial, 3 + partial tiles of 8
    for (int v = 0; v < N_VARIANTS + 3; v++) {
        omp_set_num_threads(2); // the workspace has room for 2 threads
        fixture f;
        fixture_init(&f, v < N_VARIANTS ? &variants[v] : &big[v - N_VARIANTS], batches[v % 3], 700 + (uint64_t)v);
        const size_t len = f.ny + f.nx + f.c.n_params;
        float *o1 = xmalloc(len * sizeof *o1), *o2 = xmalloc(len * sizeof *o2);
        run_threads(&f, 1, o1);
        run_threads(&f, 2, o2);
        if (memcmp(o1, o2, len * sizeof *o1))
            fail_msg("variant %d, batch %d: outputs differ between 1 and 2 threads", v, f.n);
        free(o1);
        free(o2);
        fixture_free(&f);
    }
    omp_set_num_threads(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_init), cmocka_unit_test(test_forward_naive),
        cmocka_unit_test(test_grad),            cmocka_unit_test(test_acc_dx),
        cmocka_unit_test(test_empty_and_shared), cmocka_unit_test(test_threads_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
