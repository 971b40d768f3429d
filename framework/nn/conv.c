/* conv.c — convolution layers on oneDNN (see conv.h; the measurements behind the choice are in
 * docs/conv.md and bench/bench_conv.c).
 *
 * Each layer holds three oneDNN primitives (forward, backward-data, backward-weights) created for
 * a batch of DM_CONV_TILE items, with the layouts left to oneDNN (its blocked nChw16c-style
 * layouts run its direct JIT kernels; the plain nchw layout would fall back to its im2col + gemm
 * path at half the speed), and the reorders between our plain (n, C, H, W) tiles and those
 * layouts. A batch is cut into tiles of DM_CONV_TILE items (the last one padded with zero items
 * in a per-thread staging buffer), and an OpenMP loop hands the tiles out to threads.
 *
 * Single-threaded oneDNN: oneDNN (built on the same libgomp) plans a kernel's work split for the
 * thread count it sees when the primitive is created and runs it on as many threads as it sees
 * when it executes; both are dnnl_get_max_threads() = omp_get_max_threads(). So the primitives are
 * created with the calling thread's OpenMP thread count set to 1, and every thread of our loops
 * sets its own count to 1 (an ICV of that thread's task only) before it calls oneDNN: every kernel
 * then runs whole on the calling thread, with the same plan on any thread count. The scratchpads
 * are ours (one per thread, in the workspace).
 *
 * Weight and bias gradients: oneDNN sums each tile's items; the tile partials (one buffer each)
 * are added in tile order, in double, element by element. */
#include "nn/conv.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "core/alloc.h"

/* Largest channel count and spatial size accepted: keeps every size product far from overflow. */
#define MAX_DIM (1 << 14)

enum { P_FWD, P_BWD_D, P_BWD_W, N_PRIM };

/* A tile's buffers in oneDNN's layouts (per thread): forward src and dst, backward-data diff_dst
 * and diff_src, backward-weights src and diff_dst. */
enum { B_X, B_Y, B_DY, B_DX, B_XW, B_DYW, N_TB };

struct dm_conv_impl {
    dnnl_engine_t eng;
    dnnl_primitive_desc_t pd[N_PRIM];
    dnnl_primitive_t prim[N_PRIM];
    dnnl_memory_desc_t xp, yp, wp, bp; /* plain: x and y tiles (nchw), W (oihw), b (x) */
    dnnl_memory_desc_t tb[N_TB];       /* the tile buffers' layouts */
    dnnl_memory_desc_t wf, wd, dw;     /* W for forward, W for backward-data, dW of backward-weights */
    dnnl_memory_desc_t pad[N_PRIM];    /* scratchpads */
    dnnl_primitive_t re[N_TB];         /* plain <-> tb[i] (x, dy, xw, dyw in; y, dx out); NULL: same */
    dnnl_primitive_t re_wf, re_wd, re_dw;
    size_t tb_floats[N_TB];
    size_t wf_floats, wd_floats, dw_floats, pad_floats;
    size_t xs, ys;   /* floats of one item of x, of y */
    int same_dy;     /* backward-weights takes dy in backward-data's layout: one reorder of dy */
};

/* Round a float count up to a multiple of 16 (64 bytes), so every sub-buffer stays aligned. */
static size_t pad16(size_t n)
{
    return (n + 15) / 16 * 16;
}

static size_t md_floats(const dnnl_memory_desc_t *md)
{
    return (dnnl_memory_desc_get_size(md) + sizeof(float) - 1) / sizeof(float);
}

static int n_tiles(int n)
{
    return (n + DM_CONV_TILE - 1) / DM_CONV_TILE;
}

/* A oneDNN call that cannot fail once the layer and its workspace exist (it could only on a bug or
 * an allocation of a few bytes failing): stop with the call named. */
static void must(dnnl_status_t st, const char *what)
{
    if (st != dnnl_success) {
        fprintf(stderr, "difflab: nn/conv: oneDNN %s failed (status %d)\n", what, (int)st);
        abort();
    }
}

static dnnl_memory_desc_t md4(int n, int c, int h, int w, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    const dnnl_dims_t d = {n, c, h, w};
    must(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, tag), "memory_desc_init_by_tag");
    return md;
}

/* prim(args) on stream s, with memory objects made for the call (cheap: no data is allocated). */
static void exec(const struct dm_conv_impl *p, dnnl_primitive_t prim, dnnl_stream_t s, int nargs, const int *arg,
                 const dnnl_memory_desc_t *const *md, const void *const *ptr)
{
    dnnl_exec_arg_t a[8];
    int k = 0;
    for (int i = 0; i < nargs; i++) {
        if (dnnl_memory_desc_get_size(md[i]) == 0) // an empty scratchpad
            continue;
        a[k].arg = arg[i];
        must(dnnl_memory_create(&a[k].memory, md[i], p->eng, (void *)(uintptr_t)ptr[i]), "memory_create");
        k++;
    }
    must(dnnl_primitive_execute(prim, s, k, a), "primitive_execute");
    must(dnnl_stream_wait(s), "stream_wait");
    for (int i = 0; i < k; i++)
        dnnl_memory_destroy(a[i].memory);
}

/* dst = src in another layout through reorder r; returns dst, or src itself when r is NULL. */
static const float *reorder(const struct dm_conv_impl *p, dnnl_primitive_t r, dnnl_stream_t s,
                            const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, const float *src, float *dst)
{
    if (!r)
        return src;
    const int arg[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    const dnnl_memory_desc_t *md[2] = {from, to};
    const void *ptr[2] = {src, dst};
    exec(p, r, s, 2, arg, md, ptr);
    return dst;
}

/* ---- creation ------------------------------------------------------------------------------- */

static dm_status dn_err(const dm_conv *c, char *err, const char *what, dnnl_status_t st)
{
    return dm_err(err, DM_E_INTERNAL, "conv %d->%d k=%d stride=%d on %dx%d: oneDNN %s failed (status %d)", c->cin,
                  c->cout, c->k, c->stride, c->h, c->w, what, (int)st);
}

#define TRY(call)                                                                                                     \
    do {                                                                                                              \
        const dnnl_status_t st_ = (call);                                                                             \
        if (st_ != dnnl_success)                                                                                      \
            return dn_err(c, err, #call, st_);                                                                        \
    } while (0)

/* A reorder from -> to, or NULL when the two layouts are the same. */
static dnnl_status_t make_reorder(dnnl_engine_t eng, dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                                  const dnnl_memory_desc_t *to)
{
    *r = NULL;
    if (dnnl_memory_desc_equal(from, to))
        return dnnl_success;
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL);
    if (st == dnnl_success) {
        st = dnnl_primitive_create(r, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    return st;
}

static const dnnl_memory_desc_t *q(const struct dm_conv_impl *p, int prim, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(p->pd[prim], what, 0);
}

/* The primitives and reorders of c (called with the OpenMP thread count at 1). */
static dm_status build(dm_conv *c, char *err)
{
    struct dm_conv_impl *p = c->impl;
    const int t = DM_CONV_TILE;
    TRY(dnnl_engine_create(&p->eng, dnnl_cpu, 0));
    p->xp = md4(t, c->cin, c->h, c->w, dnnl_nchw);
    p->yp = md4(t, c->cout, c->ho, c->wo, dnnl_nchw);
    p->wp = md4(c->cout, c->cin, c->k, c->k, dnnl_oihw);
    const dnnl_dims_t bd = {c->cout};
    TRY(dnnl_memory_desc_init_by_tag(&p->bp, 1, bd, dnnl_f32, dnnl_x));
    const dnnl_format_tag_t any = dnnl_format_tag_any;
    const dnnl_memory_desc_t xa = md4(t, c->cin, c->h, c->w, any), ya = md4(t, c->cout, c->ho, c->wo, any);
    const dnnl_memory_desc_t wa = md4(c->cout, c->cin, c->k, c->k, any);
    const dnnl_dims_t strides = {c->stride, c->stride}, pads = {c->pad, c->pad};
    dnnl_primitive_attr_t attr;
    TRY(dnnl_primitive_attr_create(&attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_convolution_desc_t d;
    if (st == dnnl_success)
        st = dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa,
                                                &p->bp, &ya, strides, pads, pads);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&p->pd[P_FWD], &d, attr, p->eng, NULL);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &xa, &wa, &ya, strides, pads,
                                                      pads);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&p->pd[P_BWD_D], &d, attr, p->eng, p->pd[P_FWD]);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &xa, &wa, &p->bp, &ya,
                                                         strides, pads, pads);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&p->pd[P_BWD_W], &d, attr, p->eng, p->pd[P_FWD]);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return dn_err(c, err, "convolution primitive descriptor", st);
    for (int i = 0; i < N_PRIM; i++) {
        TRY(dnnl_primitive_create(&p->prim[i], p->pd[i]));
        p->pad[i] = *q(p, i, dnnl_query_scratchpad_md);
        const size_t f = md_floats(&p->pad[i]);
        p->pad_floats = f > p->pad_floats ? f : p->pad_floats;
    }
    p->tb[B_X] = *q(p, P_FWD, dnnl_query_src_md);
    p->tb[B_Y] = *q(p, P_FWD, dnnl_query_dst_md);
    p->tb[B_DY] = *q(p, P_BWD_D, dnnl_query_diff_dst_md);
    p->tb[B_DX] = *q(p, P_BWD_D, dnnl_query_diff_src_md);
    p->tb[B_XW] = *q(p, P_BWD_W, dnnl_query_src_md);
    p->tb[B_DYW] = *q(p, P_BWD_W, dnnl_query_diff_dst_md);
    p->wf = *q(p, P_FWD, dnnl_query_weights_md);
    p->wd = *q(p, P_BWD_D, dnnl_query_weights_md);
    p->dw = *q(p, P_BWD_W, dnnl_query_diff_weights_md);
    p->same_dy = dnnl_memory_desc_equal(&p->tb[B_DY], &p->tb[B_DYW]);
    for (int i = 0; i < N_TB; i++) {
        const int out = i == B_Y || i == B_DX;
        const dnnl_memory_desc_t *plain = i == B_X || i == B_DX || i == B_XW ? &p->xp : &p->yp;
        TRY(out ? make_reorder(p->eng, &p->re[i], &p->tb[i], plain) : make_reorder(p->eng, &p->re[i], plain, &p->tb[i]));
        p->tb_floats[i] = p->re[i] ? md_floats(&p->tb[i]) : 0;
    }
    TRY(make_reorder(p->eng, &p->re_wf, &p->wp, &p->wf));
    TRY(make_reorder(p->eng, &p->re_wd, &p->wp, &p->wd));
    TRY(make_reorder(p->eng, &p->re_dw, &p->dw, &p->wp));
    p->wf_floats = md_floats(&p->wf);
    p->wd_floats = md_floats(&p->wd);
    p->dw_floats = md_floats(&p->dw);
    return DM_OK;
}
#undef TRY

dm_status dm_conv_init(dm_conv *c, int cin, int cout, int k, int stride, int h, int w, char *err)
{
    memset(c, 0, sizeof *c);
    if (cin < 1 || cout < 1 || cin > MAX_DIM || cout > MAX_DIM || (k != 1 && k != 3) || (stride != 1 && stride != 2) ||
        h < 1 || w < 1 || h > MAX_DIM || w > MAX_DIM)
        return dm_err(err, DM_E_INPUT,
                      "conv: bad shape cin=%d cout=%d k=%d stride=%d h=%d w=%d (need 1 <= cin, cout, h, w <= %d, "
                      "k 1 or 3, stride 1 or 2)",
                      cin, cout, k, stride, h, w, MAX_DIM);
    c->cin = cin, c->cout = cout, c->k = k, c->stride = stride, c->pad = k / 2, c->h = h, c->w = w;
    c->ho = (h + 2 * c->pad - k) / stride + 1;
    c->wo = (w + 2 * c->pad - k) / stride + 1;
    c->n_w = (size_t)cout * (size_t)cin * (size_t)k * (size_t)k;
    c->n_params = c->n_w + (size_t)cout;
    c->impl = dm_calloc(1, sizeof *c->impl);
    if (!c->impl)
        return dm_err(err, DM_E_NOMEM, "conv: cannot allocate a layer");
    c->impl->xs = (size_t)cin * (size_t)h * (size_t)w;
    c->impl->ys = (size_t)cout * (size_t)c->ho * (size_t)c->wo;
    const int save = omp_get_max_threads();
    omp_set_num_threads(1); /* oneDNN plans its kernels for one thread */
    const dm_status st = build(c, err);
    omp_set_num_threads(save);
    if (st != DM_OK)
        dm_conv_free(c);
    return st;
}

void dm_conv_free(dm_conv *c)
{
    if (!c)
        return;
    struct dm_conv_impl *p = c->impl;
    if (p) {
        for (int i = 0; i < N_PRIM; i++) {
            dnnl_primitive_destroy(p->prim[i]);
            dnnl_primitive_desc_destroy(p->pd[i]);
        }
        for (int i = 0; i < N_TB; i++)
            dnnl_primitive_destroy(p->re[i]);
        dnnl_primitive_destroy(p->re_wf);
        dnnl_primitive_destroy(p->re_wd);
        dnnl_primitive_destroy(p->re_dw);
        if (p->eng)
            dnnl_engine_destroy(p->eng);
        dm_free(p);
    }
    memset(c, 0, sizeof *c);
}

void dm_conv_init_params(const dm_conv *c, float *params, dm_rng *rng)
{
    const double bound = 1.0 / sqrt((double)c->cin * c->k * c->k);
    for (size_t i = 0; i < c->n_params; i++) // W (cout, cin, k, k), then b (cout)
        params[i] = (float)((2.0 * dm_rng_uniform(rng) - 1.0) * bound);
}

/* ---- workspace ------------------------------------------------------------------------------ */

/* One thread's tile buffers: scratchpad, the tile in each oneDNN layout that needs a reorder, and
 * plain staging tiles of x and y (a last, partial tile padded with zero items; dx accumulated). */
typedef struct {
    float *pad, *tb[N_TB], *sx, *sy;
} thr_bufs;

static size_t thr_need(const dm_conv *c)
{
    const struct dm_conv_impl *p = c->impl;
    size_t f = pad16(p->pad_floats) + pad16(DM_CONV_TILE * p->xs) + pad16(DM_CONV_TILE * p->ys);
    for (int i = 0; i < N_TB; i++)
        f += pad16(p->tb_floats[i]);
    return f;
}

static thr_bufs carve(const dm_conv *c, float *base)
{
    const struct dm_conv_impl *p = c->impl;
    thr_bufs b;
    b.pad = base;
    base += pad16(p->pad_floats);
    for (int i = 0; i < N_TB; i++) {
        b.tb[i] = base;
        base += pad16(p->tb_floats[i]);
    }
    b.sx = base;
    b.sy = base + pad16(DM_CONV_TILE * p->xs);
    return b;
}

static size_t part_need(const dm_conv *c, int n)
{
    return (size_t)n_tiles(n) * (c->impl->dw_floats + (size_t)c->cout);
}

dm_status dm_conv_ws_init_shared(dm_conv_ws *ws, const dm_conv *const *convs, int n_convs, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1 || max_batch > (1 << 24) || n_convs < 1)
        return dm_err(err, DM_E_INPUT, "conv: workspace for batch %d and %d layers (need batch 1..%d, >= 1 layer)",
                      max_batch, n_convs, 1 << 24);
    for (int i = 0; i < n_convs; i++) {
        const struct dm_conv_impl *p = convs[i]->impl;
        const size_t need[5] = {p->wf_floats, p->wd_floats, p->dw_floats, part_need(convs[i], max_batch),
                                thr_need(convs[i])};
        size_t *have[5] = {&ws->wf_floats, &ws->wd_floats, &ws->dw_floats, &ws->part_floats, &ws->thr_floats};
        for (int j = 0; j < 5; j++)
            *have[j] = need[j] > *have[j] ? need[j] : *have[j];
    }
    ws->max_batch = max_batch;
    ws->nthreads = omp_get_max_threads();
    const size_t nt = (size_t)ws->nthreads;
    if (ws->thr_floats > (SIZE_MAX / sizeof(float) / 4 - ws->part_floats - 4 * ws->dw_floats) / (nt + 2))
        return dm_err(err, DM_E_INPUT, "conv: workspace for batch %d too large", max_batch);
    const size_t total = pad16(ws->wf_floats) + pad16(ws->wd_floats) + pad16(ws->part_floats) +
                         pad16(2 * ws->dw_floats) + nt * ws->thr_floats;
    ws->block = dm_malloc_aligned(total * sizeof(float));
    ws->thr = dm_malloc(nt * sizeof *ws->thr);
    if (!ws->block || !ws->thr) {
        dm_conv_ws_free(ws);
        return dm_err(err, DM_E_NOMEM, "conv: cannot allocate a %zu-byte workspace (batch %d)", total * sizeof(float),
                      max_batch);
    }
    float *f = ws->block;
    ws->wf = f;
    f += pad16(ws->wf_floats);
    ws->wd = f;
    f += pad16(ws->wd_floats);
    ws->part = f;
    f += pad16(ws->part_floats);
    ws->dwsum = (double *)(void *)f;
    f += pad16(2 * ws->dw_floats);
    for (size_t t = 0; t < nt; t++)
        ws->thr[t] = f + t * ws->thr_floats;
    return DM_OK;
}

dm_status dm_conv_ws_init(dm_conv_ws *ws, const dm_conv *c, int max_batch, char *err)
{
    return dm_conv_ws_init_shared(ws, &c, 1, max_batch, err);
}

void dm_conv_ws_free(dm_conv_ws *ws)
{
    if (!ws)
        return;
    dm_free_aligned(ws->block);
    dm_free(ws->thr);
    memset(ws, 0, sizeof *ws);
}

/* A workspace too small for the call is a bug of the caller: stop with what does not fit. */
static void check_ws(const dm_conv *c, const dm_conv_ws *ws, int n)
{
    const struct dm_conv_impl *p = c->impl;
    if (n > ws->max_batch || p->wf_floats > ws->wf_floats || p->wd_floats > ws->wd_floats ||
        p->dw_floats > ws->dw_floats || part_need(c, n) > ws->part_floats || thr_need(c) > ws->thr_floats) {
        fprintf(stderr,
                "difflab: nn/conv: the workspace (max_batch %d) was not made for conv %d->%d k=%d on %dx%d at "
                "batch %d\n",
                ws->max_batch, c->cin, c->cout, c->k, c->h, c->w, n);
        abort();
    }
}

/* ---- forward and backward ------------------------------------------------------------------- */

/* Threads for a loop over tiles: at most the workspace's count. (Not fewer for a batch of fewer
 * tiles: libgomp ends the surplus threads of a smaller team and starts them again for the next
 * larger one.) */
static int team(const dm_conv_ws *ws)
{
    const int t = omp_get_max_threads();
    return t < ws->nthreads ? t : ws->nthreads;
}

/* A weights reorder, on the calling thread alone. */
static void reorder_serial(const struct dm_conv_impl *p, dnnl_primitive_t r, const dnnl_memory_desc_t *from,
                           const dnnl_memory_desc_t *to, const float *src, float *dst)
{
    const int save = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_stream_t s;
    must(dnnl_stream_create(&s, p->eng, dnnl_stream_default_flags), "stream_create");
    reorder(p, r, s, from, to, src, dst);
    dnnl_stream_destroy(s);
    omp_set_num_threads(save);
}

/* dst (DM_CONV_TILE items) = the m items at src, then zero items. */
static float *stage(float *dst, const float *src, int m, size_t item)
{
    memcpy(dst, src, (size_t)m * item * sizeof *dst);
    memset(dst + (size_t)m * item, 0, (size_t)(DM_CONV_TILE - m) * item * sizeof *dst);
    return dst;
}

void dm_conv_forward(const dm_conv *c, const float *W, const float *b, dm_conv_ws *ws, int n, const float *x,
                     float *y)
{
    if (n <= 0)
        return;
    check_ws(c, ws, n);
    const struct dm_conv_impl *p = c->impl;
    const int nt = n_tiles(n);
    const float *wf = p->re_wf ? ws->wf : W;
    if (p->re_wf)
        reorder_serial(p, p->re_wf, &p->wp, &p->wf, W, ws->wf);
#pragma omp parallel num_threads(team(ws))
    {
        omp_set_num_threads(1); /* oneDNN runs on this thread alone (see the top of this file) */
        const thr_bufs tb = carve(c, ws->thr[omp_get_thread_num()]);
        dnnl_stream_t s;
        must(dnnl_stream_create(&s, p->eng, dnnl_stream_default_flags), "stream_create");
#pragma omp for schedule(dynamic)
        for (int t = 0; t < nt; t++) {
            const int i0 = t * DM_CONV_TILE, m = n - i0 < DM_CONV_TILE ? n - i0 : DM_CONV_TILE;
            const float *xt = x + (size_t)i0 * p->xs;
            float *yt = y + (size_t)i0 * p->ys, *yplain = m < DM_CONV_TILE ? tb.sy : yt;
            if (m < DM_CONV_TILE)
                xt = stage(tb.sx, xt, m, p->xs);
            const float *xi = reorder(p, p->re[B_X], s, &p->xp, &p->tb[B_X], xt, tb.tb[B_X]);
            float *yo = p->re[B_Y] ? tb.tb[B_Y] : yplain;
            const int arg[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
            const dnnl_memory_desc_t *md[] = {&p->tb[B_X], &p->wf, &p->bp, &p->tb[B_Y], &p->pad[P_FWD]};
            const void *ptr[] = {xi, wf, b, yo, tb.pad};
            exec(p, p->prim[P_FWD], s, 5, arg, md, ptr);
            reorder(p, p->re[B_Y], s, &p->tb[B_Y], &p->yp, yo, yplain);
            if (m < DM_CONV_TILE)
                memcpy(yt, tb.sy, (size_t)m * p->ys * sizeof *yt);
        }
        dnnl_stream_destroy(s);
    }
}

/* Backward of tile t (items i0.., m of them): its weight and bias partials, and dx if asked. */
static void backward_tile(const dm_conv *c, const thr_bufs *tb, dnnl_stream_t s, float *part, int t, int m,
                          const float *x, const float *dy, const float *wd, float *dx, int acc_dx)
{
    const struct dm_conv_impl *p = c->impl;
    const int full = m == DM_CONV_TILE;
    const float *xt = x + (size_t)t * DM_CONV_TILE * p->xs, *dyt = dy + (size_t)t * DM_CONV_TILE * p->ys;
    if (!full) {
        xt = stage(tb->sx, xt, m, p->xs);
        dyt = stage(tb->sy, dyt, m, p->ys);
    }
    const float *xw = reorder(p, p->re[B_XW], s, &p->xp, &p->tb[B_XW], xt, tb->tb[B_XW]);
    const float *dyw = reorder(p, p->re[B_DYW], s, &p->yp, &p->tb[B_DYW], dyt, tb->tb[B_DYW]);
    {
        const int arg[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS,
                           DNNL_ARG_SCRATCHPAD};
        const dnnl_memory_desc_t *md[] = {&p->tb[B_XW], &p->tb[B_DYW], &p->dw, &p->bp, &p->pad[P_BWD_W]};
        const void *ptr[] = {xw, dyw, part, part + p->dw_floats, tb->pad};
        exec(p, p->prim[P_BWD_W], s, 5, arg, md, ptr);
    }
    if (!dx)
        return;
    const float *dyd = p->same_dy ? dyw : reorder(p, p->re[B_DY], s, &p->yp, &p->tb[B_DY], dyt, tb->tb[B_DY]);
    float *dxt = dx + (size_t)t * DM_CONV_TILE * p->xs;
    float *plain = full && !acc_dx ? dxt : tb->sx; /* sx is free again: backward-weights is done */
    float *dxo = p->re[B_DX] ? tb->tb[B_DX] : plain;
    const int arg[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC, DNNL_ARG_SCRATCHPAD};
    const dnnl_memory_desc_t *md[] = {&p->tb[B_DY], &p->wd, &p->tb[B_DX], &p->pad[P_BWD_D]};
    const void *ptr[] = {dyd, wd, dxo, tb->pad};
    exec(p, p->prim[P_BWD_D], s, 4, arg, md, ptr);
    reorder(p, p->re[B_DX], s, &p->tb[B_DX], &p->xp, dxo, plain);
    if (plain == dxt)
        return;
    const size_t len = (size_t)m * p->xs;
    if (acc_dx)
        for (size_t j = 0; j < len; j++)
            dxt[j] += plain[j];
    else
        memcpy(dxt, plain, len * sizeof *dxt);
}

void dm_conv_backward(const dm_conv *c, const float *W, dm_conv_ws *ws, int n, const float *x, const float *dy,
                      float *dW, float *db, float *dx, int acc_dx)
{
    if (n <= 0) { /* an empty batch: zero gradients, dx has no items */
        memset(dW, 0, c->n_w * sizeof *dW);
        memset(db, 0, (size_t)c->cout * sizeof *db);
        return;
    }
    check_ws(c, ws, n);
    const struct dm_conv_impl *p = c->impl;
    const int nt = n_tiles(n);
    const size_t stride = p->dw_floats + (size_t)c->cout; /* one tile's partials: dW, then db */
    const float *wd = p->re_wd ? ws->wd : W;
    if (dx && p->re_wd)
        reorder_serial(p, p->re_wd, &p->wp, &p->wd, W, ws->wd);
#pragma omp parallel num_threads(team(ws))
    {
        omp_set_num_threads(1);
        const thr_bufs tb = carve(c, ws->thr[omp_get_thread_num()]);
        dnnl_stream_t s;
        must(dnnl_stream_create(&s, p->eng, dnnl_stream_default_flags), "stream_create");
#pragma omp for schedule(dynamic)
        for (int t = 0; t < nt; t++) {
            const int m = n - t * DM_CONV_TILE < DM_CONV_TILE ? n - t * DM_CONV_TILE : DM_CONV_TILE;
            backward_tile(c, &tb, s, ws->part + (size_t)t * stride, t, m, x, dy, wd, dx, acc_dx);
        }
        dnnl_stream_destroy(s);
    }
    /* The tile partials added in tile order, in double (each element on its own: any thread). */
    const size_t nw = p->dw_floats;
    double *sum = ws->dwsum;
#pragma omp parallel for schedule(static) num_threads(team(ws))
    for (size_t e = 0; e < nw + (size_t)c->cout; e++) {
        double acc = 0.0;
        for (int t = 0; t < nt; t++)
            acc += ws->part[(size_t)t * stride + e];
        if (e < nw)
            sum[e] = acc;
        else
            db[e - nw] = (float)acc;
    }
    float *dwl = p->re_dw ? ws->part : dW; /* tile 0's partial is spent: dW in the layout, rounded */
    for (size_t e = 0; e < nw; e++)
        dwl[e] = (float)sum[e];
    if (p->re_dw)
        reorder_serial(p, p->re_dw, &p->dw, &p->wp, dwl, dW);
}
