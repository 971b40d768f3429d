/* bench_conv_dnnl.h — bench_conv's oneDNN engines (included by bench_conv.c only).
 *
 * oneDNN runs single-threaded on fixed tiles of CHUNK items inside an OpenMP loop: every thread
 * sets its own OpenMP thread count to 1 before it calls oneDNN (so dnnl_get_max_threads() is 1
 * there, and oneDNN's parallel() runs the kernel on the calling thread), and the primitives are
 * created with the count at 1 too (oneDNN plans a kernel's work split by the thread count it sees
 * at creation). Scratchpads are ours, one per thread. Weight gradients: one partial per tile,
 * added in tile order. `dnnl` keeps the plain layouts (nchw, oihw); `dnnlb` lets oneDNN choose
 * (format any) and reorders every tile in and out. */

#define DN_CHECK(call)                                                                                 \
    do {                                                                                               \
        dnnl_status_t st_ = (call);                                                                    \
        if (st_ != dnnl_success) {                                                                     \
            snprintf(info, info_size, "%s: status %d", #call, (int)st_);                              \
            return 1;                                                                                  \
        }                                                                                              \
    } while (0)

enum { R_X, R_DY, R_Y, R_DX, R_XW, R_DYW, N_RE }; // tile reorders: x, dy in (fwd/bwd-d), y, dx out, x, dy in (bwd-w)

static struct {
    dnnl_engine_t eng;
    dnnl_primitive_desc_t pd[N_PASS];
    dnnl_primitive_t prim[N_PASS];
    dnnl_primitive_t re[N_RE]; // NULL: the layouts agree, no reorder
    size_t re_size[N_RE];      // floats of the reorder's target (per tile)
    dnnl_primitive_t re_wf, re_wd, re_dw; // W to fwd / bwd-data layout; dW partial sum back to oihw
    float *wf, *wd;                       // W in the fwd / bwd-data layouts
    size_t dw_size;                       // floats of dW in bwd-w's layout
    float *dwp, *dbp;                     // per-tile partials
    float *dwsum;
    size_t pad_bytes; // largest scratchpad
    float **tbuf;     // per thread: reorder targets + scratchpad
    size_t tbuf_floats;
    int nthreads, ntiles;
    int no_reorder; // dnnlk: time the kernels alone on the blocked buffers (no reorders; output not checked)
} dn;

static dnnl_memory_desc_t dn_md(int n, int c, int h, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {n, c, h, h};
    dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, tag);
    return md;
}

static size_t md_floats(const dnnl_memory_desc_t *md)
{
    return (dnnl_memory_desc_get_size(md) + 3) / 4;
}

/* reorder from -> to, or NULL when they are the same layout. */
static dnnl_status_t dn_reorder(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                dnnl_primitive_attr_t attr)
{
    *r = NULL;
    if (dnnl_memory_desc_equal(from, to))
        return dnnl_success;
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, dn.eng, to, dn.eng, attr);
    if (st == dnnl_success) {
        st = dnnl_primitive_create(r, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    return st;
}

static const dnnl_memory_desc_t *q(int pass, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(dn.pd[pass], what, 0);
}

static void dn_exec(dnnl_primitive_t p, dnnl_stream_t s, int nargs, const int *arg, const dnnl_memory_desc_t **md,
                    void **ptr)
{
    dnnl_exec_arg_t a[8];
    for (int i = 0; i < nargs; i++) {
        a[i].arg = arg[i];
        dnnl_memory_create(&a[i].memory, md[i], dn.eng, ptr[i]);
    }
    dnnl_primitive_execute(p, s, nargs, a);
    dnnl_stream_wait(s);
    for (int i = 0; i < nargs; i++)
        dnnl_memory_destroy(a[i].memory);
}

/* from (plain or not) -> to through reorder r, or the pointer itself when r is NULL. */
static void *dn_in(dnnl_primitive_t r, dnnl_stream_t s, const dnnl_memory_desc_t *from,
                   const dnnl_memory_desc_t *to, void *src, void *buf)
{
    if (!r)
        return src;
    if (dn.no_reorder)
        return buf;
    const int arg[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    const dnnl_memory_desc_t *md[2] = {from, to};
    void *ptr[2] = {src, buf};
    dn_exec(r, s, 2, arg, md, ptr);
    return buf;
}

static int dnnl_setup(conv_buf *c, char *info, size_t info_size, int blocked)
{
    memset(&dn, 0, sizeof dn);
    const int tb = CHUNK, k = c->s.k, p = k / 2;
    const int save = omp_get_max_threads();
    omp_set_num_threads(1);
    DN_CHECK(dnnl_engine_create(&dn.eng, dnnl_cpu, 0));
    const dnnl_format_tag_t any = dnnl_format_tag_any;
    dnnl_memory_desc_t xp = dn_md(tb, c->s.cin, c->s.h, dnnl_nchw), yp = dn_md(tb, c->s.cout, c->ho, dnnl_nchw);
    dnnl_memory_desc_t wp = dn_md(c->s.cout, c->s.cin, k, dnnl_oihw), bp;
    dnnl_dims_t bd = {c->s.cout};
    dnnl_memory_desc_init_by_tag(&bp, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_t xa = blocked ? dn_md(tb, c->s.cin, c->s.h, any) : xp;
    dnnl_memory_desc_t ya = blocked ? dn_md(tb, c->s.cout, c->ho, any) : yp;
    dnnl_memory_desc_t wa = blocked ? dn_md(c->s.cout, c->s.cin, k, any) : wp;
    dnnl_dims_t strides = {c->s.stride, c->s.stride}, pad = {p, p};
    dnnl_primitive_attr_t attr;
    DN_CHECK(dnnl_primitive_attr_create(&attr));
    DN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_convolution_desc_t d;
    DN_CHECK(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa, &bp,
                                                &ya, strides, pad, pad));
    DN_CHECK(dnnl_primitive_desc_create(&dn.pd[FWD], &d, attr, dn.eng, NULL));
    DN_CHECK(dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &xa, &wa, &ya, strides, pad, pad));
    DN_CHECK(dnnl_primitive_desc_create(&dn.pd[BWD_DATA], &d, attr, dn.eng, dn.pd[FWD]));
    DN_CHECK(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &xa, &wa, &bp, &ya, strides,
                                                         pad, pad));
    DN_CHECK(dnnl_primitive_desc_create(&dn.pd[BWD_W], &d, attr, dn.eng, dn.pd[FWD]));
    size_t pad_bytes = 0;
    for (int ps = 0; ps < N_PASS; ps++) {
        DN_CHECK(dnnl_primitive_create(&dn.prim[ps], dn.pd[ps]));
        const size_t sb = dnnl_memory_desc_get_size(q(ps, dnnl_query_scratchpad_md));
        pad_bytes = sb > pad_bytes ? sb : pad_bytes;
    }
    dn.pad_bytes = pad_bytes;
    DN_CHECK(dn_reorder(&dn.re[R_X], &xp, q(FWD, dnnl_query_src_md), attr));
    DN_CHECK(dn_reorder(&dn.re[R_Y], q(FWD, dnnl_query_dst_md), &yp, attr));
    DN_CHECK(dn_reorder(&dn.re[R_DY], &yp, q(BWD_DATA, dnnl_query_diff_dst_md), attr));
    DN_CHECK(dn_reorder(&dn.re[R_DX], q(BWD_DATA, dnnl_query_diff_src_md), &xp, attr));
    DN_CHECK(dn_reorder(&dn.re[R_XW], &xp, q(BWD_W, dnnl_query_src_md), attr));
    DN_CHECK(dn_reorder(&dn.re[R_DYW], &yp, q(BWD_W, dnnl_query_diff_dst_md), attr));
    dn.re_size[R_X] = md_floats(q(FWD, dnnl_query_src_md));
    dn.re_size[R_Y] = md_floats(q(FWD, dnnl_query_dst_md));
    dn.re_size[R_DY] = md_floats(q(BWD_DATA, dnnl_query_diff_dst_md));
    dn.re_size[R_DX] = md_floats(q(BWD_DATA, dnnl_query_diff_src_md));
    dn.re_size[R_XW] = md_floats(q(BWD_W, dnnl_query_src_md));
    dn.re_size[R_DYW] = md_floats(q(BWD_W, dnnl_query_diff_dst_md));
    DN_CHECK(dn_reorder(&dn.re_wf, &wp, q(FWD, dnnl_query_weights_md), attr));
    DN_CHECK(dn_reorder(&dn.re_wd, &wp, q(BWD_DATA, dnnl_query_weights_md), attr));
    DN_CHECK(dn_reorder(&dn.re_dw, q(BWD_W, dnnl_query_diff_weights_md), &wp, attr));
    dnnl_primitive_attr_destroy(attr);
    dn.wf = falloc(md_floats(q(FWD, dnnl_query_weights_md)));
    dn.wd = falloc(md_floats(q(BWD_DATA, dnnl_query_weights_md)));
    dn.dw_size = md_floats(q(BWD_W, dnnl_query_diff_weights_md));
    dn.ntiles = (c->n + tb - 1) / tb;
    dn.dwp = falloc(dn.dw_size * dn.ntiles);
    dn.dbp = falloc((size_t)c->s.cout * dn.ntiles);
    dn.dwsum = falloc(dn.dw_size);
    dn.nthreads = save;
    dn.tbuf_floats = (pad_bytes + 3) / 4 + 64;
    for (int r = 0; r < N_RE; r++)
        dn.tbuf_floats += dn.re_size[r] + 16;
    dn.tbuf = malloc(sizeof *dn.tbuf * (size_t)save);
    for (int t = 0; t < save; t++)
        dn.tbuf[t] = falloc(dn.tbuf_floats);
    const char *impl[N_PASS];
    for (int ps = 0; ps < N_PASS; ps++)
        dnnl_primitive_desc_query(dn.pd[ps], dnnl_query_impl_info_str, 0, &impl[ps]);
    snprintf(info, info_size, "tile %d; %s / %s / %s%s", tb, impl[0], impl[1], impl[2],
             dn.re[R_X] || dn.re[R_Y] ? "; reorders" : "");
    omp_set_num_threads(save);
    return 0;
}

static int dnnl_setup_plain(conv_buf *c, char *info, size_t info_size)
{
    return dnnl_setup(c, info, info_size, 0);
}

static int dnnl_setup_blocked(conv_buf *c, char *info, size_t info_size)
{
    return dnnl_setup(c, info, info_size, 1);
}

static int dnnl_setup_kernels(conv_buf *c, char *info, size_t info_size)
{
    const int st = dnnl_setup(c, info, info_size, 1);
    dn.no_reorder = 1;
    return st;
}

static void dnnl_teardown(void)
{
    for (int ps = 0; ps < N_PASS; ps++) {
        dnnl_primitive_destroy(dn.prim[ps]);
        dnnl_primitive_desc_destroy(dn.pd[ps]);
    }
    for (int r = 0; r < N_RE; r++)
        dnnl_primitive_destroy(dn.re[r]);
    dnnl_primitive_destroy(dn.re_wf), dnnl_primitive_destroy(dn.re_wd), dnnl_primitive_destroy(dn.re_dw);
    for (int t = 0; t < dn.nthreads; t++)
        dm_free_aligned(dn.tbuf[t]);
    free(dn.tbuf);
    dm_free_aligned(dn.wf), dm_free_aligned(dn.wd), dm_free_aligned(dn.dwp), dm_free_aligned(dn.dbp);
    dm_free_aligned(dn.dwsum);
    dnnl_engine_destroy(dn.eng);
}

static void dnnl_pass(conv_buf *c, int pass)
{
    const int tb = CHUNK, n = c->n;
    const size_t xs = (size_t)c->s.cin * c->hw, ys = (size_t)c->s.cout * c->howo;
    dnnl_memory_desc_t xp = dn_md(tb, c->s.cin, c->s.h, dnnl_nchw), yp = dn_md(tb, c->s.cout, c->ho, dnnl_nchw);
    dnnl_memory_desc_t wp = dn_md(c->s.cout, c->s.cin, c->s.k, dnnl_oihw), bp;
    dnnl_dims_t bd = {c->s.cout};
    dnnl_memory_desc_init_by_tag(&bp, 1, bd, dnnl_f32, dnnl_x);
    const int save = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_stream_t s0;
    dnnl_stream_create(&s0, dn.eng, dnnl_stream_default_flags);
    if (pass == FWD)
        dn_in(dn.re_wf, s0, &wp, q(FWD, dnnl_query_weights_md), c->w, dn.wf);
    if (pass == BWD_DATA)
        dn_in(dn.re_wd, s0, &wp, q(BWD_DATA, dnnl_query_weights_md), c->w, dn.wd);
    omp_set_num_threads(save);
    const float *wf = dn.re_wf ? dn.wf : c->w, *wd = dn.re_wd ? dn.wd : c->w;
#pragma omp parallel
    {
        omp_set_num_threads(1); // oneDNN sees one thread (this thread's ICV only)
        dnnl_stream_t s;
        dnnl_stream_create(&s, dn.eng, dnnl_stream_default_flags);
        float *buf = dn.tbuf[omp_get_thread_num()], *rb[N_RE];
        float *pad = buf;
        buf += (dn.pad_bytes + 3) / 4 + 64;
        for (int r = 0; r < N_RE; r++)
            rb[r] = buf, buf += dn.re_size[r] + 16;
#pragma omp for schedule(dynamic)
        for (int t = 0; t < dn.ntiles; t++) {
            float *x = c->x + (size_t)t * tb * xs, *y = c->y + (size_t)t * tb * ys;
            float *dy = c->dy + (size_t)t * tb * ys, *dx = c->dx + (size_t)t * tb * xs;
            if (pass == FWD) {
                void *xi = dn_in(dn.re[R_X], s, &xp, q(FWD, dnnl_query_src_md), x, rb[R_X]);
                void *yo = dn.re[R_Y] ? (void *)rb[R_Y] : (void *)y;
                const int arg[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
                const dnnl_memory_desc_t *md[] = {q(FWD, dnnl_query_src_md), q(FWD, dnnl_query_weights_md), &bp,
                                                  q(FWD, dnnl_query_dst_md), q(FWD, dnnl_query_scratchpad_md)};
                void *ptr[] = {xi, (void *)wf, c->b, yo, pad};
                dn_exec(dn.prim[FWD], s, 5, arg, md, ptr);
                dn_in(dn.re[R_Y], s, q(FWD, dnnl_query_dst_md), &yp, yo, y);
            } else if (pass == BWD_DATA) {
                void *dyi = dn_in(dn.re[R_DY], s, &yp, q(BWD_DATA, dnnl_query_diff_dst_md), dy, rb[R_DY]);
                void *dxo = dn.re[R_DX] ? (void *)rb[R_DX] : (void *)dx;
                const int arg[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC, DNNL_ARG_SCRATCHPAD};
                const dnnl_memory_desc_t *md[] = {q(BWD_DATA, dnnl_query_diff_dst_md),
                                                  q(BWD_DATA, dnnl_query_weights_md),
                                                  q(BWD_DATA, dnnl_query_diff_src_md),
                                                  q(BWD_DATA, dnnl_query_scratchpad_md)};
                void *ptr[] = {dyi, (void *)wd, dxo, pad};
                dn_exec(dn.prim[BWD_DATA], s, 4, arg, md, ptr);
                dn_in(dn.re[R_DX], s, q(BWD_DATA, dnnl_query_diff_src_md), &xp, dxo, dx);
            } else {
                void *xi = dn_in(dn.re[R_XW], s, &xp, q(BWD_W, dnnl_query_src_md), x, rb[R_XW]);
                void *dyi = dn_in(dn.re[R_DYW], s, &yp, q(BWD_W, dnnl_query_diff_dst_md), dy, rb[R_DYW]);
                const int arg[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS,
                                   DNNL_ARG_SCRATCHPAD};
                const dnnl_memory_desc_t *md[] = {q(BWD_W, dnnl_query_src_md), q(BWD_W, dnnl_query_diff_dst_md),
                                                  q(BWD_W, dnnl_query_diff_weights_md), &bp,
                                                  q(BWD_W, dnnl_query_scratchpad_md)};
                void *ptr[] = {xi, dyi, dn.dwp + (size_t)t * dn.dw_size, dn.dbp + (size_t)t * c->s.cout, pad};
                dn_exec(dn.prim[BWD_W], s, 5, arg, md, ptr);
            }
        }
        dnnl_stream_destroy(s);
    }
    if (pass == BWD_W) { // tile partials in tile order
        const size_t nw = dn.dw_size;
        float *dst = dn.re_dw ? dn.dwsum : c->dw;
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < nw; e++) {
            float acc = 0.0f;
            for (int t = 0; t < dn.ntiles; t++)
                acc += dn.dwp[t * nw + e];
            dst[e] = acc;
        }
        for (int o = 0; o < c->s.cout; o++) {
            double acc = 0.0;
            for (int t = 0; t < dn.ntiles; t++)
                acc += dn.dbp[(size_t)t * c->s.cout + o];
            c->db[o] = (float)acc;
        }
        omp_set_num_threads(1);
        dn_in(dn.re_dw, s0, q(BWD_W, dnnl_query_diff_weights_md), &wp, dn.dwsum, c->dw);
        omp_set_num_threads(save);
    }
    dnnl_stream_destroy(s0);
    (void)n;
}
