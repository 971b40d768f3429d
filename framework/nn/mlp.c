/* mlp.c — the toy MLP (see mlp.h): OpenBLAS sgemm for the layers, act_fast.c for the elementwise
 * passes (time embedding, fused bias + SiLU, SiLU backward with bias-gradient partial sums).
 *
 * Threading: each sgemm runs on OpenBLAS's OpenMP build, which shares libgomp's thread pool with
 * the elementwise kernels, so the two never fight over the cores. OpenBLAS 0.3.21 gives
 * bit-identical sgemm results on 1 and 2 threads for these layouts (peer README); our own
 * reductions (bias gradients) are over fixed row chunks summed in order, in double. */
#include "nn/mlp.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/act_fast.h"

/* Largest accepted dimension: keeps every size product far from size_t and int overflow. */
#define MAX_DIM (1 << 20)

/* Rows per forward tile: large batches (sampling) run all layers on one tile at a time so that
 * the activations of a tile stay in the L2/L3 caches between layers. */
#define FWD_TILE 2048

/* Inner dimension per sgemm call. OpenBLAS (0.3.21) splits a long inner dimension into blocks
 * differently in its 1-thread and multi-thread drivers (measured: TN products with K = 449..,
 * unless K is a multiple of 32, differ in the last bits between 1 and 2 threads), while a product
 * whose inner dimension fits in one block (K <= 448 with this build's SkylakeX kernel; 256 is
 * meant to stay within one block on other kernels too) is computed the same way on any thread
 * count. So longer inner dimensions are summed chunk by chunk, in order, with beta = 1. */
#define K_CHUNK 256

/* Round a float count up to a multiple of 16 (64 bytes), so every sub-buffer stays aligned. */
static size_t pad16(size_t n) { return (n + 15) / 16 * 16; }

dm_status dm_mlp_init(dm_mlp *m, const dm_mlp_cfg *cfg, char *err)
{
    memset(m, 0, sizeof *m);
    if (cfg->in_dim < 1 || cfg->out_dim < 1 || cfg->nfreq < 0 || cfg->width < 1 || cfg->depth < 0 ||
        cfg->in_dim > MAX_DIM || cfg->out_dim > MAX_DIM || cfg->nfreq > MAX_DIM ||
        cfg->width > MAX_DIM || cfg->depth > 1024)
        return dm_err(err, DM_E_INPUT,
                      "mlp: bad shape in_dim=%d out_dim=%d nfreq=%d width=%d depth=%d (need "
                      "in_dim, out_dim, width >= 1, nfreq, depth >= 0)",
                      cfg->in_dim, cfg->out_dim, cfg->nfreq, cfg->width, cfg->depth);
    dm_status st = DM_OK;
    m->cfg = *cfg;
    m->n_layers = cfg->depth + 1;
    const size_t L = (size_t)m->n_layers;
    m->w_off = dm_malloc(L * sizeof *m->w_off);
    m->b_off = dm_malloc(L * sizeof *m->b_off);
    m->fan_in = dm_malloc(L * sizeof *m->fan_in);
    m->fan_out = dm_malloc(L * sizeof *m->fan_out);
    if (!m->w_off || !m->b_off || !m->fan_in || !m->fan_out) {
        st = dm_err(err, DM_E_NOMEM, "mlp: cannot allocate layer tables (%zu layers)", L);
        goto out;
    }
    size_t off = 0;
    for (int l = 0; l < m->n_layers; l++) {
        m->fan_in[l] = l == 0 ? cfg->in_dim + 2 * cfg->nfreq : cfg->width;
        m->fan_out[l] = l == m->n_layers - 1 ? cfg->out_dim : cfg->width;
        m->w_off[l] = off;
        off += (size_t)m->fan_in[l] * (size_t)m->fan_out[l];
        m->b_off[l] = off;
        off += (size_t)m->fan_out[l];
    }
    m->n_params = off;
out:
    if (st != DM_OK)
        dm_mlp_free(m);
    return st;
}

void dm_mlp_free(dm_mlp *m)
{
    if (!m)
        return;
    dm_free(m->w_off);
    dm_free(m->b_off);
    dm_free(m->fan_in);
    dm_free(m->fan_out);
    memset(m, 0, sizeof *m);
}

/* Draw order: layer 0..L-1; within a layer W row-major (out, in), then b; each value is
 * (float)((2u - 1) * bound), u = dm_rng_uniform in [0, 1), bound = 1/sqrt(fan_in). */
void dm_mlp_init_params(const dm_mlp *m, float *params, dm_rng *rng)
{
    for (int l = 0; l < m->n_layers; l++) {
        const double bound = 1.0 / sqrt((double)m->fan_in[l]);
        const size_t nw = (size_t)m->fan_in[l] * (size_t)m->fan_out[l];
        float *w = params + m->w_off[l]; // (fan_out, fan_in)
        float *b = params + m->b_off[l]; // (fan_out)
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)((2.0 * dm_rng_uniform(rng) - 1.0) * bound);
        for (int i = 0; i < m->fan_out[l]; i++)
            b[i] = (float)((2.0 * dm_rng_uniform(rng) - 1.0) * bound);
    }
}

/* Sub-buffer sizes of the workspace block, in floats, each padded to 16. The frequency table and
 * the bias-gradient partial sums are doubles carved from the same block at 64-byte offsets. */
dm_status dm_mlp_ws_init(dm_mlp_ws *ws, const dm_mlp *m, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "mlp: max_batch %d out of range", max_batch);
    dm_status st = DM_OK;
    const size_t L = (size_t)m->n_layers, nb = (size_t)max_batch;
    const int maxw = m->cfg.width > m->cfg.out_dim ? m->cfg.width : m->cfg.out_dim;
    ws->max_batch = max_batch;
    ws->pre = dm_malloc(L * sizeof *ws->pre);
    ws->act = dm_malloc(L * sizeof *ws->act);
    if (!ws->pre || !ws->act) {
        st = dm_err(err, DM_E_NOMEM, "mlp: cannot allocate workspace tables");
        goto out;
    }
    size_t total = 0;
    for (size_t l = 0; l < L; l++)
        total += pad16(nb * (size_t)m->fan_out[l]) + pad16(nb * (size_t)m->fan_in[l]);
    total += 2 * pad16(nb * (size_t)maxw);
    total += pad16(2 * (size_t)m->cfg.nfreq);                                   // freq (doubles)
    total += pad16(2 * (size_t)dm_act_n_chunks(max_batch) * (size_t)m->cfg.width); // dbpart
    if (total > SIZE_MAX / sizeof(float) / 2) {
        st = dm_err(err, DM_E_INPUT, "mlp: workspace for batch %d too large", max_batch);
        goto out;
    }
    ws->buf = dm_malloc_aligned(total * sizeof(float));
    if (!ws->buf) {
        st = dm_err(err, DM_E_NOMEM, "mlp: cannot allocate %zu-byte workspace (batch %d)",
                    total * sizeof(float), max_batch);
        goto out;
    }
    float *p = ws->buf;
    for (size_t l = 0; l < L; l++) {
        ws->act[l] = p; // (max_batch, fan_in[l])
        p += pad16(nb * (size_t)m->fan_in[l]);
        ws->pre[l] = p; // (max_batch, fan_out[l])
        p += pad16(nb * (size_t)m->fan_out[l]);
    }
    ws->dbuf0 = p; // (max_batch, maxw)
    p += pad16(nb * (size_t)maxw);
    ws->dbuf1 = p; // (max_batch, maxw)
    p += pad16(nb * (size_t)maxw);
    double *freq = (double *)(void *)p; // (nfreq)
    for (int k = 0; k < m->cfg.nfreq; k++)
        freq[k] = exp(-log(10000.0) * (double)k / (double)m->cfg.nfreq);
out:
    if (st != DM_OK)
        dm_mlp_ws_free(ws);
    return st;
}

void dm_mlp_ws_free(dm_mlp_ws *ws)
{
    if (!ws)
        return;
    dm_free_aligned(ws->buf);
    dm_free(ws->pre);
    dm_free(ws->act);
    memset(ws, 0, sizeof *ws);
}

/* The frequency table and bias-gradient scratch follow dbuf1 (see dm_mlp_ws_init). */
static const double *ws_freq(const dm_mlp *m, const dm_mlp_ws *ws)
{
    const int maxw = m->cfg.width > m->cfg.out_dim ? m->cfg.width : m->cfg.out_dim;
    return (const double *)(const void *)(ws->dbuf1 + pad16((size_t)ws->max_batch * (size_t)maxw));
}

static double *ws_dbpart(const dm_mlp *m, const dm_mlp_ws *ws)
{
    return (double *)(void *)((float *)(void *)ws_freq(m, ws) + pad16(2 * (size_t)m->cfg.nfreq));
}

/* C (m, n) = op(A) op(B), row-major, with the inner dimension k in K_CHUNK pieces. A is (m, k)
 * or, transposed, (k, m); B is (k, n) or, transposed, (n, k). */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a,
                 int lda, const float *b, int ldb, float *c, int ldc)
{
    if (k == 0) { // no chunk: C is the empty sum
        for (int i = 0; i < m; i++)
            memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof *c);
        return;
    }
    for (int k0 = 0; k0 < k; k0 += K_CHUNK) {
        const int kc = k - k0 < K_CHUNK ? k - k0 : K_CHUNK;
        const float *ak = a + (ta == CblasNoTrans ? (size_t)k0 : (size_t)k0 * lda);
        const float *bk = b + (tb == CblasNoTrans ? (size_t)k0 * ldb : (size_t)k0);
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, kc, 1.0f, ak, lda, bk, ldb, k0 ? 1.0f : 0.0f, c,
                    ldc);
    }
}

/* Forward of rows [r0, r0 + n) through every layer. */
static void forward_rows(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int r0, int n,
                         const float *x, const float *tin, float *out)
{
    const dm_mlp_cfg *c = &m->cfg;
    const int L = m->n_layers;
    float *h0 = ws->act[0] + (size_t)r0 * m->fan_in[0]; // (n, in_dim + 2 nfreq)
    dm_act_time_embed(n, c->in_dim, c->nfreq, ws_freq(m, ws), x + (size_t)r0 * c->in_dim,
                      tin + r0, h0);
    for (int l = 0; l < L; l++) {
        const int fi = m->fan_in[l], fo = m->fan_out[l];
        const float *w = params + m->w_off[l];             // (fo, fi)
        const float *b = params + m->b_off[l];             // (fo)
        const float *h = ws->act[l] + (size_t)r0 * fi;     // (n, fi)
        float *z = ws->pre[l] + (size_t)r0 * fo;           // (n, fo)
        gemm(CblasNoTrans, CblasTrans, n, fo, fi, h, fi, w, fi, z, fo);
        if (l < L - 1) {
            dm_act_bias_silu_fwd(n, fo, b, z, ws->act[l + 1] + (size_t)r0 * fo);
        } else {
            float *o = out + (size_t)r0 * fo; // (n, out_dim)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < fo; j++) {
                    z[(size_t)i * fo + j] += b[j];
                    o[(size_t)i * fo + j] = z[(size_t)i * fo + j];
                }
        }
    }
}

void dm_mlp_forward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n, const float *x,
                    const float *tin, float *out)
{
    for (int r0 = 0; r0 < n; r0 += FWD_TILE)
        forward_rows(m, params, ws, r0, n - r0 < FWD_TILE ? n - r0 : FWD_TILE, x, tin, out);
}

/* db (m) = column sums of the partials (nch, m), chunk by chunk in order. */
static void sum_partials(int nch, int m, const double *part, float *db)
{
    for (int j = 0; j < m; j++) {
        double s = 0.0;
        for (int c = 0; c < nch; c++)
            s += part[(size_t)c * m + j];
        db[j] = (float)s;
    }
}

void dm_mlp_backward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n,
                     const float *dout, float *grads, float *dx)
{
    const int L = m->n_layers;
    double *dbpart = ws_dbpart(m, ws); // (n_chunks(n), width)
    if (n <= 0) { // an empty batch has zero gradients (and dx has no rows)
        memset(grads, 0, m->n_params * sizeof *grads);
        return;
    }
    /* g: dL/dz of the current layer, (n, fan_out[l]); the output layer's is dout itself. */
    const float *g = dout;
    float *bufs[2] = {ws->dbuf0, ws->dbuf1};
    for (int l = L - 1; l >= 0; l--) {
        const int fi = m->fan_in[l], fo = m->fan_out[l];
        const float *w = params + m->w_off[l]; // (fo, fi)
        float *dw = grads + m->w_off[l];       // (fo, fi)
        float *db = grads + m->b_off[l];       // (fo)
        if (l == L - 1) {
            for (int j = 0; j < fo; j++) {
                double s = 0.0;
                for (int i = 0; i < n; i++)
                    s += dout[(size_t)i * fo + j];
                db[j] = (float)s;
            }
        } else {
            float *gz = bufs[l & 1]; // (n, fo): holds dL/dh_{l+1}, becomes dL/dz_l
            dm_act_silu_bwd(n, fo, ws->pre[l], gz, dbpart);
            sum_partials(dm_act_n_chunks(n), fo, dbpart, db);
            g = gz;
        }
        gemm(CblasTrans, CblasNoTrans, fo, fi, n, g, fo, ws->act[l], fi, dw, fi);
        if (l > 0) {
            float *gh = bufs[(l - 1) & 1]; // (n, fi) = dL/dh_l
            gemm(CblasNoTrans, CblasNoTrans, n, fi, fo, g, fo, w, fi, gh, fi);
        } else if (dx) {
            /* Only the x columns of h0: the time embedding gets no gradient. */
            gemm(CblasNoTrans, CblasNoTrans, n, m->cfg.in_dim, fo, g, fo, w, fi, dx, m->cfg.in_dim);
        }
    }
}
