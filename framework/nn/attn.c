/* attn.c — single-head self-attention (see attn.h): shapes, workspace, the per-item products and
 * the fixed-order sums; the softmax's elementwise passes are in attn_fast.c.
 *
 * Layout per item: x, h, a (C, N) row-major (channel rows of N positions, the (C, H, W) item
 * itself); q, k, v the three (C, N) blocks of qkv; P (N, N) with row i the query position i.
 * Every product is one cblas_sgemm on these row-major blocks:
 *   forward   qkv = Wqkv h (+ b)          S = q^T k / sqrt(C) -> P = softmax rows
 *             a = v P^T                   y = x + Wo a (+ bo)
 *   backward  dWo += dy a^T               da = Wo^T dy
 *             dv = da P                   dP = da^T v -> dS (softmax backward, scale folded in)
 *             dq = k dS^T                 dk = q dS
 *             dWqkv += dqkv h^T           dh = Wqkv^T dqkv -> GroupNorm backward into dx */
#include "nn/attn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/attn_internal.h"
#include "nn/lane_sum.h"

#define MAX_C 4096
#define MAX_HW 16384

dm_status dm_attn_init(dm_attn *at, int groups, int c, char *err)
{
    memset(at, 0, sizeof *at);
    if (c < 1 || c > MAX_C)
        return dm_err(err, DM_E_INPUT, "attn: %d channels out of range (1..%d)", c, MAX_C);
    dm_status st = dm_gnorm_init(&at->gn, groups, c, err);
    if (st != DM_OK) {
        dm_err_prefix(err, "attn");
        return st;
    }
    const size_t C = (size_t)c;
    at->c = c;
    at->off_qkv = 2 * C;
    at->off_out = at->off_qkv + 3 * C * C + 3 * C;
    at->n_params = at->off_out + C * C + C;
    return DM_OK;
}

void dm_attn_init_params(const dm_attn *at, float *params, dm_rng *rng)
{
    dm_gnorm_init_params(&at->gn, params);
    const double bound = 1.0 / sqrt((double)at->c);
    for (size_t i = at->off_qkv; i < at->n_params; i++)
        params[i] = (float)((2.0 * dm_rng_uniform(rng) - 1.0) * bound);
}

static int n_tiles(int n)
{
    return (n + DM_ATTN_TILE - 1) / DM_ATTN_TILE;
}

/* Floats of a tile's scratch: dA (C, N), dP (N, N), dqkv (3C, N). */
static size_t tile_size(size_t C, size_t N)
{
    return C * N + N * N + 3 * C * N;
}

dm_status dm_attn_ws_init(dm_attn_ws *ws, const dm_attn *at, int hw, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (hw < 1 || hw > MAX_HW || max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "attn: bad workspace shape hw=%d max_batch=%d (hw at most %d)", hw,
                      max_batch, MAX_HW);
    const size_t C = (size_t)at->c, N = (size_t)hw, nb = (size_t)max_batch, nt = (size_t)n_tiles(max_batch);
    if (nb * (N * N + 6 * C * N) > SIZE_MAX / sizeof(float) / 2)
        return dm_err(err, DM_E_INPUT, "attn: workspace for batch %d at hw %d too large", max_batch, hw);
    dm_status st = dm_gnorm_ws_init(&ws->gn, &at->gn, hw, max_batch, err);
    if (st != DM_OK) {
        dm_err_prefix(err, "attn");
        return st;
    }
    ws->max_batch = max_batch;
    ws->hw = hw;
    ws->h = dm_malloc_aligned(nb * C * N * sizeof(float));
    ws->qkv = dm_malloc_aligned(nb * 3 * C * N * sizeof(float));
    ws->p = dm_malloc_aligned(nb * N * N * sizeof(float));
    ws->a = dm_malloc_aligned(nb * C * N * sizeof(float));
    ws->dh = dm_malloc_aligned(nb * C * N * sizeof(float));
    ws->tile = dm_malloc_aligned(nt * tile_size(C, N) * sizeof(float));
    ws->gw = dm_malloc_aligned(nt * 4 * C * C * sizeof(float));
    ws->gb = dm_malloc(nt * 4 * C * sizeof(double));
    ws->rows = dm_malloc(nb * N * sizeof(float));
    if (!ws->h || !ws->qkv || !ws->p || !ws->a || !ws->dh || !ws->tile || !ws->gw || !ws->gb || !ws->rows) {
        dm_attn_ws_free(ws);
        return dm_err(err, DM_E_NOMEM, "attn: cannot allocate the workspace (batch %d, %d channels at hw %d)",
                      max_batch, at->c, hw);
    }
    return DM_OK;
}

void dm_attn_ws_free(dm_attn_ws *ws)
{
    if (!ws)
        return;
    dm_gnorm_ws_free(&ws->gn);
    dm_free_aligned(ws->h);
    dm_free_aligned(ws->qkv);
    dm_free_aligned(ws->p);
    dm_free_aligned(ws->a);
    dm_free_aligned(ws->dh);
    dm_free_aligned(ws->tile);
    dm_free_aligned(ws->gw);
    dm_free(ws->gb);
    dm_free(ws->rows);
    memset(ws, 0, sizeof *ws);
}

/* rows (m, len) := b[row] each. */
static void fill_rows(int m, int len, const float *b, float *out)
{
    for (int r = 0; r < m; r++)
        for (int j = 0; j < len; j++)
            out[(size_t)r * len + j] = b[r];
}

/* Item i's forward, after the GroupNorm: qkv, P, a in ws; y = x + Wo a + bo. */
static void forward_item(const dm_attn *at, const float *params, dm_attn_ws *ws, int i, const float *x,
                         float *y)
{
    const int C = at->c, N = ws->hw;
    const size_t CN = (size_t)C * N;
    const float *wqkv = params + at->off_qkv, *bqkv = wqkv + 3 * (size_t)C * C;
    const float *wo = params + at->off_out, *bo = wo + (size_t)C * C;
    const float *h = ws->h + (size_t)i * CN;
    float *qkv = ws->qkv + (size_t)i * 3 * CN, *p = ws->p + (size_t)i * N * N, *a = ws->a + (size_t)i * CN;
    float *inv = ws->rows + (size_t)i * N;
    const float *q = qkv, *k = qkv + CN, *v = qkv + 2 * CN;
    fill_rows(3 * C, N, bqkv, qkv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 3 * C, N, C, 1.0f, wqkv, C, h, N, 1.0f, qkv, N);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, C, (float)(1.0 / sqrt((double)C)), q, N, k, N,
                0.0f, p, N);
    dm_attn_exp_rows(N, N, p);
    for (int r = 0; r < N; r++)
        inv[r] = (float)(1.0 / dm_lane_sum(p + (size_t)r * N, (size_t)N));
    dm_attn_scale_rows(N, N, inv, p);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, N, N, 1.0f, v, N, p, N, 0.0f, a, N);
    const float *xi = x + (size_t)i * CN;
    float *yi = y + (size_t)i * CN;
    for (int c = 0; c < C; c++)
        for (int j = 0; j < N; j++)
            yi[(size_t)c * N + j] = xi[(size_t)c * N + j] + bo[c];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, N, C, 1.0f, wo, C, a, N, 1.0f, yi, N);
}

void dm_attn_forward(const dm_attn *at, const float *params, dm_attn_ws *ws, int n, const float *x, float *y)
{
    dm_gnorm_forward(&at->gn, params, &ws->gn, n, x, ws->h);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        forward_item(at, params, ws, i, x, y);
}

/* acc[r] += sum of row r of m (rows, len), in double. */
static void add_row_sums(int rows, int len, const float *m, double *acc)
{
    for (int r = 0; r < rows; r++)
        acc[r] += dm_lane_sum(m + (size_t)r * len, (size_t)len);
}

/* Item i's backward up to dh (ws->dh), its parameter gradients added to tile t's sums (first:
 * the tile's first item, which overwrites them). */
static void backward_item(const dm_attn *at, const float *params, dm_attn_ws *ws, int i, int t, int first,
                          const float *dy)
{
    const int C = at->c, N = ws->hw;
    const size_t CN = (size_t)C * N, CC = (size_t)C * C;
    const float *wqkv = params + at->off_qkv, *wo = params + at->off_out;
    const float *h = ws->h + (size_t)i * CN, *qkv = ws->qkv + (size_t)i * 3 * CN;
    const float *p = ws->p + (size_t)i * N * N, *a = ws->a + (size_t)i * CN, *g = dy + (size_t)i * CN;
    const float *q = qkv, *k = qkv + CN, *v = qkv + 2 * CN;
    float *da = ws->tile + (size_t)t * tile_size((size_t)C, (size_t)N), *dp = da + CN,
          *dqkv = dp + (size_t)N * N;
    float *dq = dqkv, *dk = dqkv + CN, *dv = dqkv + 2 * CN, *dot = ws->rows + (size_t)i * N;
    float *gwqkv = ws->gw + (size_t)t * 4 * CC, *gwo = gwqkv + 3 * CC;
    double *gb = ws->gb + (size_t)t * 4 * C; // dbqkv (3C), dbo (C)
    const float beta = first ? 0.0f : 1.0f;
    if (first)
        memset(gb, 0, 4 * (size_t)C * sizeof *gb);

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, C, N, 1.0f, g, N, a, N, beta, gwo, C);
    add_row_sums(C, N, g, gb + 3 * C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, N, C, 1.0f, wo, C, g, N, 0.0f, da, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, N, N, 1.0f, da, N, p, N, 0.0f, dv, N);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, C, 1.0f, da, N, v, N, 0.0f, dp, N);
    for (int r = 0; r < N; r++) { // dot[r] = sum_j dP[r, j] P[r, j]
        double sp, spd;
        dm_lane_sums2(p + (size_t)r * N, dp + (size_t)r * N, (size_t)N, &sp, &spd);
        dot[r] = (float)spd;
    }
    dm_attn_softmax_bwd_rows(N, N, p, dot, (float)(1.0 / sqrt((double)C)), dp); // dp = dS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, N, N, 1.0f, k, N, dp, N, 0.0f, dq, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, N, N, 1.0f, q, N, dp, N, 0.0f, dk, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 3 * C, C, N, 1.0f, dqkv, N, h, N, beta, gwqkv, C);
    add_row_sums(3 * C, N, dqkv, gb);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, N, 3 * C, 1.0f, wqkv, C, dqkv, N, 0.0f,
                ws->dh + (size_t)i * CN, N);
}

void dm_attn_backward(const dm_attn *at, const float *params, dm_attn_ws *ws, int n, const float *x,
                      const float *dy, float *grads, float *dx, int acc_dx)
{
    const int C = at->c, nt = n_tiles(n);
    const size_t CN = (size_t)C * ws->hw, CC = (size_t)C * C;
    if (n <= 0) {
        memset(grads, 0, at->n_params * sizeof *grads);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nt; t++) {
        const int i1 = (t + 1) * DM_ATTN_TILE < n ? (t + 1) * DM_ATTN_TILE : n;
        for (int i = t * DM_ATTN_TILE; i < i1; i++)
            backward_item(at, params, ws, i, t, i == t * DM_ATTN_TILE, dy);
    }
    /* the tiles' sums, in tile order, in double */
    float *gwqkv = grads + at->off_qkv, *gbqkv = gwqkv + 3 * CC, *gwo = grads + at->off_out, *gbo = gwo + CC;
    for (size_t e = 0; e < 4 * CC; e++) {
        double s = 0.0;
        for (int t = 0; t < nt; t++)
            s += ws->gw[(size_t)t * 4 * CC + e];
        if (e < 3 * CC)
            gwqkv[e] = (float)s;
        else
            gwo[e - 3 * CC] = (float)s;
    }
    for (int r = 0; r < 4 * C; r++) {
        double s = 0.0;
        for (int t = 0; t < nt; t++)
            s += ws->gb[(size_t)t * 4 * C + r];
        if (r < 3 * C)
            gbqkv[r] = (float)s;
        else
            gbo[r - 3 * C] = (float)s;
    }
    /* the residual, then the GroupNorm's gradient added to it (and gamma, beta at grads[0, 2C)) */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *restrict g = dy + (size_t)i * CN;
        float *restrict d = dx + (size_t)i * CN;
        if (acc_dx)
            for (size_t j = 0; j < CN; j++)
                d[j] += g[j];
        else
            memcpy(d, g, CN * sizeof *d);
    }
    dm_gnorm_backward(&at->gn, params, &ws->gn, n, x, ws->dh, grads, dx, 1);
}
