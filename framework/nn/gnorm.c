/* gnorm.c — GroupNorm (+ SiLU): shapes, workspace, the statistics and the gradient sums in double
 * (see gnorm.h); the elementwise passes are in gnorm_fast.c. A group's C/G channels are
 * consecutive, so an item's group is one contiguous block of C/G * hw floats, visited by the
 * statistics and then by the elementwise pass while it is still in the caches. */
#include "nn/gnorm.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/gnorm_internal.h"
#include "nn/lane_sum.h"

/* Largest accepted channel count and spatial size (keeps size products far from overflow). */
#define MAX_DIM (1 << 20)

dm_status dm_gnorm_init(dm_gnorm *g, int groups, int c, char *err)
{
    memset(g, 0, sizeof *g);
    if (groups < 1 || c < 1 || c > MAX_DIM || c % groups != 0)
        return dm_err(err, DM_E_INPUT,
                      "gnorm: %d channels cannot be split into %d groups (need groups >= 1 dividing "
                      "the channel count)",
                      c, groups);
    g->groups = groups;
    g->c = c;
    g->n_params = 2 * (size_t)c;
    return DM_OK;
}

void dm_gnorm_init_params(const dm_gnorm *g, float *params)
{
    for (int c = 0; c < g->c; c++) {
        params[c] = 1.0f;        // gamma
        params[g->c + c] = 0.0f; // beta
    }
}

dm_status dm_gnorm_ws_init(dm_gnorm_ws *ws, const dm_gnorm *g, int hw, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (hw < 1 || hw > MAX_DIM || max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "gnorm: bad workspace shape hw=%d max_batch=%d", hw, max_batch);
    const size_t nb = (size_t)max_batch, gsz = (size_t)(g->c / g->groups) * (size_t)hw;
    if (gsz > SIZE_MAX / sizeof(float) / nb)
        return dm_err(err, DM_E_INPUT, "gnorm: workspace for batch %d too large", max_batch);
    ws->max_batch = max_batch;
    ws->hw = hw;
    ws->stats = dm_malloc(nb * (size_t)g->groups * 2 * sizeof(double));
    ws->part = dm_malloc(nb * 2 * (size_t)g->c * sizeof(double));
    ws->scratch = dm_malloc_aligned(nb * gsz * sizeof(float));
    ws->coef = dm_malloc(nb * 3 * (size_t)(g->c / g->groups) * sizeof(float));
    if (!ws->stats || !ws->part || !ws->scratch || !ws->coef) {
        dm_gnorm_ws_free(ws);
        return dm_err(err, DM_E_NOMEM, "gnorm: cannot allocate the workspace (batch %d, %d channels x %d)",
                      max_batch, g->c, hw);
    }
    return DM_OK;
}

void dm_gnorm_ws_free(dm_gnorm_ws *ws)
{
    if (!ws)
        return;
    dm_free(ws->stats);
    dm_free(ws->part);
    dm_free_aligned(ws->scratch);
    dm_free(ws->coef);
    memset(ws, 0, sizeof *ws);
}

/* The affine constants of a group's channels c0.. (float, as the kernels use them): u = (x - m) a_c
 * + b_c with m the mean in float; returns m. x - m is exact for x within a factor 2 of m, so the
 * rounding of u does not grow with |mean| / std as PyTorch's x a_c + (beta_c - mean a_c) does
 * (only m's own rounding, half an ulp of the mean, does). */
static float group_affine(const float *gamma, const float *beta, int c0, int cpg, double mean, double rstd,
                          float *a, float *b)
{
    const float m = (float)mean;
    const double dm = mean - (double)m; // u = (x - m) a - dm a + beta
    for (int k = 0; k < cpg; k++) {
        const double ac = (double)gamma[c0 + k] * rstd;
        a[k] = (float)ac;
        b[k] = (float)((double)beta[c0 + k] - dm * ac);
    }
    return m;
}

static void forward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x, float *y,
                    int silu)
{
    const int G = g->groups, cpg = g->c / G, hw = ws->hw;
    const size_t gsz = (size_t)cpg * hw;
    const float *gamma = params, *beta = params + g->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *a = ws->coef + (size_t)i * 3 * cpg, *b = a + cpg; // (cpg) each
        for (int gi = 0; gi < G; gi++) {
            const size_t off = ((size_t)i * G + gi) * gsz;
            const double mean = dm_lane_sum(x + off, gsz) / (double)gsz;
            const double var = dm_lane_sqdev(x + off, gsz, mean) / (double)gsz; // biased, as PyTorch
            const double rstd = 1.0 / sqrt(var + DM_GNORM_EPS);
            double *st = ws->stats + ((size_t)i * G + gi) * 2;
            st[0] = mean;
            st[1] = rstd;
            const float m = group_affine(gamma, beta, gi * cpg, cpg, mean, rstd, a, b);
            dm_gnorm_apply_rows(cpg, hw, m, a, b, x + off, y + off, silu);
        }
    }
}

void dm_gnorm_forward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                      float *y)
{
    forward(g, params, ws, n, x, y, 0);
}

void dm_gnorm_silu_forward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                           float *y)
{
    forward(g, params, ws, n, x, y, 1);
}

/* Item i's backward: dx of every group, and its terms of dgamma and dbeta in ws->part. */
static void backward_item(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int i, const float *x,
                          const float *dy, float *dx, int acc_dx, int silu)
{
    const int G = g->groups, C = g->c, cpg = C / G, hw = ws->hw;
    const size_t gsz = (size_t)cpg * hw;
    const float *gamma = params, *beta = params + C;
    double *pg = ws->part + (size_t)i * 2 * C, *pb = pg + C; // (C) each
    float *scratch = ws->scratch + (size_t)i * gsz;
    float *a = ws->coef + (size_t)i * 3 * cpg, *b = a + cpg, *A = b + cpg; // (cpg) each
    for (int gi = 0; gi < G; gi++) {
        const size_t off = ((size_t)i * G + gi) * gsz;
        const double *st = ws->stats + ((size_t)i * G + gi) * 2;
        const double mean = st[0], rstd = st[1];
        const float *du = dy + off;
        const float m = group_affine(gamma, beta, gi * cpg, cpg, mean, rstd, a, b);
        if (silu) {
            dm_gnorm_silu_grad_rows(cpg, hw, m, a, b, x + off, dy + off, scratch);
            du = scratch;
        }
        double s1 = 0.0, s2 = 0.0; // sum gamma db, sum gamma (ds - mean db), over the group
        for (int k = 0; k < cpg; k++) {
            const int c = gi * cpg + k;
            double db, ds;
            dm_lane_sums2(du + (size_t)k * hw, x + off + (size_t)k * hw, (size_t)hw, &db, &ds);
            const double dsc = ds - mean * db; // sum du (x - mean)
            pg[c] = dsc * rstd;
            pb[c] = db;
            s1 += (double)gamma[c] * db;
            s2 += (double)gamma[c] * dsc;
            A[k] = (float)((double)gamma[c] * rstd);
        }
        /* dx = rstd (gamma du - s1 / D - xhat rstd s2 / D) = A_c du + B (x - m) + Cst */
        const double D = (double)gsz, B = -rstd * rstd * rstd * s2 / D;
        const double Cst = -rstd * s1 / D - (mean - (double)m) * B;
        dm_gnorm_dx_rows(cpg, hw, m, A, (float)B, (float)Cst, du, x + off, dx + off, acc_dx);
    }
}

static void backward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                     const float *dy, float *grads, float *dx, int acc_dx, int silu)
{
    const int C = g->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        backward_item(g, params, ws, i, x, dy, dx, acc_dx, silu);
    for (int c = 0; c < C; c++) { // sums over items, in item order
        double sg = 0.0, sb = 0.0;
        for (int i = 0; i < n; i++) {
            sg += ws->part[(size_t)i * 2 * C + c];
            sb += ws->part[(size_t)i * 2 * C + C + c];
        }
        grads[c] = (float)sg;
        grads[C + c] = (float)sb;
    }
}

void dm_gnorm_backward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                       const float *dy, float *grads, float *dx, int acc_dx)
{
    backward(g, params, ws, n, x, dy, grads, dx, acc_dx, 0);
}

void dm_gnorm_silu_backward(const dm_gnorm *g, const float *params, dm_gnorm_ws *ws, int n, const float *x,
                            const float *dy, float *grads, float *dx, int acc_dx)
{
    backward(g, params, ws, n, x, dy, grads, dx, acc_dx, 1);
}
