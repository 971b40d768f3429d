/* mlp.c — the toy MLP (see mlp.h): OpenBLAS sgemm for the layers, act_fast.c for the elementwise
 * passes (time embedding, SiLU forward, SiLU backward with bias-gradient partial sums).
 *
 * Per training step at batch 1024 nearly all the time is in sgemm; the rest is kept small by
 * doing every elementwise job in as few passes over the activations as possible:
 *  - each pass also writes the next product's initial C (the bias in the forward, zeros in the
 *    backward), so sgemm runs with beta = 1 and skips its own zeroing pass;
 *  - a narrow output layer (out_dim <= FUSE_OUT_MAX) is computed inside the last SiLU pass, and
 *    its input gradient dout W inside the first SiLU backward pass (no skinny sgemm calls);
 *  - the forward keeps sigmoid(z) for the backward, so SiLU' needs no second exp;
 *  - a batch with one t (a sampling step) gets layer 0 from one embedding product shared by all
 *    rows plus an in_dim-term update per row, instead of the full K = in_dim + 2 nfreq sgemm.
 *
 * Threading: every product is cut into fixed output tiles (see GEMM_TILE) that an OpenMP loop
 * hands out to libgomp's threads, each tile one single-threaded sgemm call (OpenBLAS's OpenMP
 * build runs single-threaded inside a parallel region), so sgemm and the elementwise kernels
 * share one thread pool. Results are bit-identical on any thread count: a tile's bits depend only
 * on its shape and data, never on which thread or how many threads compute it, and our own
 * reductions (bias gradients) run over fixed row chunks summed in order, in double. */
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

/* Rows per forward tile: large batches (sampling) run all layers on one tile at a time, so that a
 * tile's activations can stay in the caches between layers (measured: within noise of no tiling
 * at batch 10000 here, where sgemm is compute-bound; kept for machines with smaller caches). */
#define FWD_TILE 2048

/* Output rows (or columns) per sgemm call. OpenBLAS's multi-threaded driver (0.3.21) splits the
 * output between its threads, and the split changes the bits: the micro-kernel tiles at a
 * thread's edge are computed with other code paths (measured on Zen 3 with the Haswell kernel: a
 * 1024x256x66 NT product differs in ~5% of its entries between 1 and 2 threads, in a 16-column
 * band at the split; an earlier scheme relied on the SkylakeX kernel not doing so for short inner
 * dimensions, which does not carry over to other kernels). So OpenBLAS never splits a product
 * here: gemm cuts the longer side of C into GEMM_TILE-wide tiles, a partition of the shapes
 * alone, and runs each tile as a single-threaded sgemm. */
#define GEMM_TILE 128

/* Inner dimension per sgemm call: a long inner dimension (the batch, in the weight gradients) is
 * summed chunk by chunk, in order, with beta = 1 (a fixed summation order of our choosing). */
#define K_CHUNK 256

/* Widest output layer computed inside the elementwise passes (see fuse_out). */
#define FUSE_OUT_MAX 8

/* Round a float count up to a multiple of 16 (64 bytes), so every sub-buffer stays aligned. */
static size_t pad16(size_t n)
{
    return (n + 15) / 16 * 16;
}

dm_status dm_mlp_init(dm_mlp *m, const dm_mlp_cfg *cfg, char *err)
{
    memset(m, 0, sizeof *m);
    if (cfg->in_dim < 1 || cfg->out_dim < 1 || cfg->nfreq < 0 || cfg->width < 1 || cfg->depth < 0 ||
        cfg->in_dim > MAX_DIM || cfg->out_dim > MAX_DIM || cfg->nfreq > MAX_DIM || cfg->width > MAX_DIM ||
        cfg->depth > 1024)
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
    total += pad16(2 * (size_t)m->cfg.nfreq);                                      // freq (doubles)
    total += pad16(2 * (size_t)dm_act_n_chunks(max_batch) * (size_t)m->cfg.width); // dbpart
    total += pad16(((size_t)m->cfg.in_dim + 1) * (size_t)m->fan_out[0]);           // l0 scratch
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

/* Layer-0 scratch of the shared-t forward: c (fan_out[0]), then W_x^T (in_dim, fan_out[0]). */
static float *ws_l0(const dm_mlp *m, const dm_mlp_ws *ws)
{
    return (float *)(void *)ws_dbpart(m, ws) +
           pad16(2 * (size_t)dm_act_n_chunks(ws->max_batch) * (size_t)m->cfg.width);
}

/* C (m, n) = beta C + op(A) op(B), row-major, with the inner dimension k in K_CHUNK pieces, on the
 * calling thread. A is (m, k) or, transposed, (k, m); B is (k, n) or, transposed, (n, k). beta is
 * 0 or 1. Called inside a parallel region only (OpenBLAS then runs on one thread). */
static void gemm_tile(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc)
{
    if (k == 0) { // no chunk: C is the empty sum (beta C unchanged)
        if (beta == 1.0f)
            return;
        for (int i = 0; i < m; i++)
            memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof *c);
        return;
    }
    for (int k0 = 0; k0 < k; k0 += K_CHUNK) {
        const int kc = k - k0 < K_CHUNK ? k - k0 : K_CHUNK;
        const float *ak = a + (ta == CblasNoTrans ? (size_t)k0 : (size_t)k0 * lda);
        const float *bk = b + (tb == CblasNoTrans ? (size_t)k0 * ldb : (size_t)k0);
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, kc, 1.0f, ak, lda, bk, ldb, k0 ? 1.0f : beta, c, ldc);
    }
}

/* gemm_tile's product, with C cut into GEMM_TILE-row tiles (or GEMM_TILE-column tiles when C is
 * wider than tall) shared out by an OpenMP loop: the tiles depend on the shapes only, so C's
 * bits do not depend on the thread count (see GEMM_TILE). Even a single tile runs inside the
 * parallel region, so that OpenBLAS does not split it between threads of its own. */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc)
{
    const int by_rows = m >= n, len = by_rows ? m : n;
    const int ntiles = (len + GEMM_TILE - 1) / GEMM_TILE;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < ntiles; t++) {
        const int i0 = t * GEMM_TILE, w = len - i0 < GEMM_TILE ? len - i0 : GEMM_TILE;
        if (by_rows) // rows [i0, i0 + w) of op(A) and C
            gemm_tile(ta, tb, w, n, k, a + (ta == CblasNoTrans ? (size_t)i0 * lda : (size_t)i0), lda, b, ldb,
                      beta, c + (size_t)i0 * ldc, ldc);
        else // columns [i0, i0 + w) of op(B) and C
            gemm_tile(ta, tb, m, w, k, a, lda, b + (tb == CblasNoTrans ? (size_t)i0 : (size_t)i0 * ldb), ldb,
                      beta, c + i0, ldc);
    }
}

/* The output layer is folded into the last hidden layer's elementwise passes (forward: out = h
 * W^T + b per row while the row is in L1; backward: dL/dh = dout W formed in the SiLU backward
 * pass) when it is narrow; a wide one runs as its own sgemm. */
static int fuse_out(const dm_mlp *m)
{
    return m->cfg.depth > 0 && m->cfg.out_dim <= FUSE_OUT_MAX;
}

/* Whether all n times are the same (bitwise), as in a sampling step. */
static int same_t(const float *t, int n)
{
    for (int i = 1; i < n; i++)
        if (memcmp(&t[i], &t[0], sizeof *t))
            return 0;
    return 1;
}

/* Layer 0 when the whole batch has one t (a sampling step): z0 = x W_x^T + (emb W_e^T + b0), where
 * the bracket is one vector c for all rows. This replaces the K = in_dim + 2 nfreq product by an
 * in_dim-term update per row: 11% of the toy model's forward FLOPs, ~10% of its sampling time.
 * Sets up c (in double, rounded) and W_x^T in the scratch from the embedding row h0 (fi). */
static void layer0_shared_setup(const dm_mlp *m, const float *params, const dm_mlp_ws *ws, const float *h0)
{
    const int fi = m->fan_in[0], fo = m->fan_out[0], in = m->cfg.in_dim;
    const float *w = params + m->w_off[0]; // (fo, fi)
    const float *b = params + m->b_off[0]; // (fo)
    float *c = ws_l0(m, ws);               // (fo)
    float *wxt = c + fo;                   // (in, fo) = W_x^T
    for (int o = 0; o < fo; o++) {
        double s = b[o];
        for (int k = in; k < fi; k++)
            s += (double)w[(size_t)o * fi + k] * h0[k];
        c[o] = (float)s;
        for (int d = 0; d < in; d++)
            wxt[(size_t)d * fo + o] = w[(size_t)o * fi + d];
    }
}

/* Forward of rows [r0, r0 + n) through every layer. Each pass writes the next layer's bias into
 * its pre-activation rows, and the products accumulate onto them (beta = 1). */
static void forward_rows(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int r0, int n, const float *x,
                         const float *tin, float *out, int shared)
{
    const dm_mlp_cfg *c = &m->cfg;
    const int L = m->n_layers, od = c->out_dim, fused = fuse_out(m);
    const dm_act_out fo_out = {
        .od = od,
        .w = params + m->w_off[L - 1],
        .b = params + m->b_off[L - 1],
        .z = ws->pre[L - 1] + (size_t)r0 * od,
        .out = out + (size_t)r0 * od,
    };
    dm_act_prefill next = {m->fan_out[0], params + m->b_off[0], ws->pre[0] + (size_t)r0 * m->fan_out[0]};
    dm_act_time_embed(n, c->in_dim, c->nfreq, ws_freq(m, ws), x + (size_t)r0 * c->in_dim, tin + r0,
                      ws->act[0] + (size_t)r0 * m->fan_in[0], shared ? NULL : &next);
    if (shared) {
        if (r0 == 0)
            layer0_shared_setup(m, params, ws, ws->act[0]);
        const float *l0 = ws_l0(m, ws); // c (fo), W_x^T (in_dim, fo)
        dm_act_affine_rows(n, m->fan_out[0], c->in_dim, l0, x + (size_t)r0 * c->in_dim, l0 + m->fan_out[0],
                           ws->pre[0] + (size_t)r0 * m->fan_out[0]);
    }
    for (int l = 0; l < L; l++) {
        const int fi = m->fan_in[l], fo = m->fan_out[l];
        const float *w = params + m->w_off[l];         // (fo, fi)
        const float *h = ws->act[l] + (size_t)r0 * fi; // (n, fi)
        float *z = ws->pre[l] + (size_t)r0 * fo;       // (n, fo), holds b_l
        if (l > 0 || !shared)
            gemm(CblasNoTrans, CblasTrans, n, fo, fi, h, fi, w, fi, 1.0f, z, fo);
        if (l == L - 1) { // unfused output layer
            memcpy(fo_out.out, z, (size_t)n * od * sizeof(float));
        } else if (l == L - 2 && fused) {
            dm_act_silu_fwd(n, fo, z, ws->act[l + 1] + (size_t)r0 * fo, NULL, &fo_out);
            return;
        } else {
            next = (dm_act_prefill){m->fan_out[l + 1], params + m->b_off[l + 1],
                                    ws->pre[l + 1] + (size_t)r0 * m->fan_out[l + 1]};
            dm_act_silu_fwd(n, fo, z, ws->act[l + 1] + (size_t)r0 * fo, &next, NULL);
        }
    }
}

void dm_mlp_forward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n, const float *x,
                    const float *tin, float *out)
{
    const int shared = m->cfg.nfreq > 0 && n > 0 && same_t(tin, n);
    for (int r0 = 0; r0 < n; r0 += FWD_TILE)
        forward_rows(m, params, ws, r0, n - r0 < FWD_TILE ? n - r0 : FWD_TILE, x, tin, out, shared);
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

void dm_mlp_backward(const dm_mlp *m, const float *params, dm_mlp_ws *ws, int n, const float *dout,
                     float *grads, float *dx)
{
    const int L = m->n_layers, od = m->cfg.out_dim, fused = fuse_out(m);
    double *dbpart = ws_dbpart(m, ws); // (n_chunks(n), width)
    if (n <= 0) {                      // an empty batch has zero gradients (and dx has no rows)
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
            /* gz (n, fo): dL/dh_{l+1} on entry (formed from dout when the output is fused),
             * dL/dz_l on return */
            float *gz = bufs[l & 1];
            const int from_out = fused && l == L - 2;
            /* zeros for dL/dh_l = gz W_l (beta = 1 below), written while the rows pass by */
            const dm_act_prefill zero = {fi, NULL, bufs[(l - 1) & 1]};
            dm_act_silu_bwd(n, fo, ws->pre[l], ws->act[l + 1], gz, dbpart, from_out ? od : 0, dout,
                            params + m->w_off[L - 1], l > 0 ? &zero : NULL);
            sum_partials(dm_act_n_chunks(n), fo, dbpart, db);
            g = gz;
        }
        gemm(CblasTrans, CblasNoTrans, fo, fi, n, g, fo, ws->act[l], fi, 0.0f, dw, fi);
        if (l > 0) {
            float *gh = bufs[(l - 1) & 1]; // (n, fi) = dL/dh_l
            if (l < L - 1)                 // zeroed by the SiLU pass above
                gemm(CblasNoTrans, CblasNoTrans, n, fi, fo, g, fo, w, fi, 1.0f, gh, fi);
            else if (!fused)
                gemm(CblasNoTrans, CblasNoTrans, n, fi, fo, g, fo, w, fi, 0.0f, gh, fi);
        } else if (dx) {
            /* Only the x columns of h0: the time embedding gets no gradient. */
            gemm(CblasNoTrans, CblasNoTrans, n, m->cfg.in_dim, fo, g, fo, w, fi, 0.0f, dx, m->cfg.in_dim);
        }
    }
}
