/* bench_conv — the convolutions of the peer U-Net (shared/peer/peer_fmnist_unet.py) at its
 * training batch, timed per pass with candidate engines, in GFLOP/s (2 x multiply-adds).
 *
 * Engines (docs/conv.md has the figures and the choice):
 *   gemm   im2col of one item + one single-threaded OpenBLAS sgemm per item; OpenMP over items;
 *          weight gradients summed per fixed chunk of items, the chunk partials added in order;
 *   dnnl   oneDNN (when built with it) single-threaded on fixed tiles of items inside an OpenMP
 *          loop, on the plain (n, C, H, W) layout; `dnnlb` lets oneDNN pick its blocked layouts
 *          and pays the reorders of every tile (what PyTorch's mkldnn path does per call); `dnnlk`
 *          times dnnlb's kernels alone, without the reorders (its output is not checked).
 * Each figure is the median of 3 repetitions; every engine's output is checked against the gemm
 * engine, and each engine's bits on 1 and 2 threads are compared.
 *
 * usage: bench_conv [--batch N] [--threads LIST (default 1,2)] [--engines LIST] [--tile T] [--reps K] */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/progress.h"
#include "nn/conv.h"

#include <oneapi/dnnl/dnnl.h>

typedef struct {
    const char *name;
    int cin, cout, k, stride, h; // input h = w; output h / stride
    int count;                   // how many of the U-Net's convs have this shape
} conv_shape;

/* The peer U-Net's convolutions (1x28x28 input), with their multiplicity in one forward. */
static const conv_shape shapes[] = {
    {"in 1->32 3x3 @28", 1, 32, 3, 1, 28, 1},
    {"32->32 3x3 @28", 32, 32, 3, 1, 28, 3},
    {"down 32->32 3x3 s2 28->14", 32, 32, 3, 2, 28, 1},
    {"32->64 3x3 @14", 32, 64, 3, 1, 14, 1},
    {"32->64 1x1 @14", 32, 64, 1, 1, 14, 1},
    {"64->64 3x3 @14", 64, 64, 3, 1, 14, 4},
    {"128->64 3x3 @14", 128, 64, 3, 1, 14, 1},
    {"128->64 1x1 @14", 128, 64, 1, 1, 14, 1},
    {"up 64->64 3x3 @28", 64, 64, 3, 1, 28, 1},
    {"96->32 3x3 @28", 96, 32, 3, 1, 28, 1},
    {"96->32 1x1 @28", 96, 32, 1, 1, 28, 1},
    {"out 32->1 3x3 @28", 32, 1, 3, 1, 28, 1},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

enum { FWD, BWD_DATA, BWD_W, N_PASS };

/* One convolution's buffers at batch n. */
typedef struct {
    conv_shape s;
    int n, ho, kk, hw, howo; // kk = cin k k
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} conv_buf;

static int CHUNK = 8; // items per weight-gradient chunk (gemm) and per tile (dnnl): --tile

static float *falloc(size_t n)
{
    float *p = dm_malloc_aligned(n * sizeof(float) + 64);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory (%zu floats)\n", n);
        exit(1);
    }
    return p;
}

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
}

static void buf_init(conv_buf *c, const conv_shape *s, int n)
{
    c->s = *s;
    c->n = n;
    c->ho = (s->h + 2 * (s->k / 2) - s->k) / s->stride + 1;
    c->kk = s->cin * s->k * s->k;
    c->hw = s->h * s->h;
    c->howo = c->ho * c->ho;
    const size_t nx = (size_t)n * s->cin * c->hw, ny = (size_t)n * s->cout * c->howo;
    const size_t nw = (size_t)s->cout * c->kk;
    c->x = falloc(nx), c->dx = falloc(nx), c->y = falloc(ny), c->dy = falloc(ny);
    c->w = falloc(nw), c->dw = falloc(nw), c->b = falloc(s->cout), c->db = falloc(s->cout);
    fill(c->x, nx, 1), fill(c->dy, ny, 2), fill(c->w, nw, 3), fill(c->b, s->cout, 4);
}

static void buf_free(conv_buf *c)
{
    dm_free_aligned(c->x), dm_free_aligned(c->dx), dm_free_aligned(c->y), dm_free_aligned(c->dy);
    dm_free_aligned(c->w), dm_free_aligned(c->dw), dm_free_aligned(c->b), dm_free_aligned(c->db);
}

/* Each pass is the same number of multiply-adds; `both`: bwd-data is a whole backward. */
static double pass_flops(const conv_buf *c, int pass, int both)
{
    return (both && pass == BWD_DATA ? 2.0 : 1.0) * 2.0 * c->n * c->s.cout * (double)c->howo * c->kk;
}

/* ---- engine gemm: im2col per item + single-threaded sgemm ------------------------------------ */

/* col (cin k k, ho wo) of one item x (cin, h, w); zero padding k/2. */
static void im2col(const conv_buf *c, const float *x, float *col)
{
    const int k = c->s.k, st = c->s.stride, h = c->s.h, ho = c->ho, p = k / 2;
    for (int ci = 0; ci < c->s.cin; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *o = col + ((size_t)(ci * k + ky) * k + kx) * c->howo;
                const float *xc = x + (size_t)ci * c->hw;
                for (int oy = 0; oy < ho; oy++) {
                    const int iy = oy * st + ky - p;
                    float *orow = o + (size_t)oy * ho;
                    if (iy < 0 || iy >= h) {
                        memset(orow, 0, (size_t)ho * sizeof *orow);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * h;
                    for (int ox = 0; ox < ho; ox++) {
                        const int ix = ox * st + kx - p;
                        orow[ox] = ix >= 0 && ix < h ? xr[ix] : 0.0f;
                    }
                }
            }
}

/* dx (cin, h, w) += the columns dcol (cin k k, ho wo) scattered back. */
static void col2im(const conv_buf *c, const float *col, float *dx)
{
    const int k = c->s.k, st = c->s.stride, h = c->s.h, ho = c->ho, p = k / 2;
    for (int ci = 0; ci < c->s.cin; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *o = col + ((size_t)(ci * k + ky) * k + kx) * c->howo;
                float *xc = dx + (size_t)ci * c->hw;
                for (int oy = 0; oy < ho; oy++) {
                    const int iy = oy * st + ky - p;
                    if (iy < 0 || iy >= h)
                        continue;
                    for (int ox = 0; ox < ho; ox++) {
                        const int ix = ox * st + kx - p;
                        if (ix >= 0 && ix < h)
                            xc[(size_t)iy * h + ix] += o[(size_t)oy * ho + ox];
                    }
                }
            }
}

static int direct_1x1(const conv_buf *c)
{
    return c->s.k == 1 && c->s.stride == 1;
}

static float **scratch;       // per-thread column buffers
static double *dbpart;        // (chunks, cout) bias partials
static float *dwpart;         // (chunks, cout kk) weight partials
static size_t scratch_floats; // per thread

static void gemm_pass(conv_buf *c, int pass)
{
    const int n = c->n, co = c->s.cout, kk = c->kk, hw = c->howo;
    const size_t xs = (size_t)c->s.cin * c->hw, ys = (size_t)co * hw;
    if (pass == FWD) {
#pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < n; i++) {
            float *col = scratch[omp_get_thread_num()], *y = c->y + i * ys;
            const float *x = c->x + i * xs;
            if (!direct_1x1(c))
                im2col(c, x, col);
            for (int o = 0; o < co; o++)
                for (int j = 0; j < hw; j++)
                    y[(size_t)o * hw + j] = c->b[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, hw, kk, 1.0f, c->w, kk,
                        direct_1x1(c) ? x : col, hw, 1.0f, y, hw);
        }
    } else if (pass == BWD_DATA) {
#pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < n; i++) {
            float *col = scratch[omp_get_thread_num()], *dx = c->dx + i * xs;
            const float *dy = c->dy + i * ys;
            if (direct_1x1(c)) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, hw, co, 1.0f, c->w, kk, dy, hw, 0.0f,
                            dx, hw);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, hw, co, 1.0f, c->w, kk, dy, hw, 0.0f, col,
                        hw);
            memset(dx, 0, xs * sizeof *dx);
            col2im(c, col, dx);
        }
    } else {
        const int nch = (n + CHUNK - 1) / CHUNK;
        const size_t nw = (size_t)co * kk;
#pragma omp parallel for schedule(dynamic)
        for (int ch = 0; ch < nch; ch++) {
            float *col = scratch[omp_get_thread_num()], *dwp = dwpart + ch * nw;
            double *dbp = dbpart + (size_t)ch * co;
            for (int o = 0; o < co; o++)
                dbp[o] = 0.0;
            for (int i = ch * CHUNK; i < n && i < (ch + 1) * CHUNK; i++) {
                const float *x = c->x + i * xs, *dy = c->dy + i * ys;
                if (!direct_1x1(c))
                    im2col(c, x, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, co, kk, hw, 1.0f, dy, hw,
                            direct_1x1(c) ? x : col, hw, i > ch * CHUNK ? 1.0f : 0.0f, dwp, kk);
                for (int o = 0; o < co; o++) {
                    double s = 0.0;
                    for (int j = 0; j < hw; j++)
                        s += dy[(size_t)o * hw + j];
                    dbp[o] += s;
                }
            }
        }
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < nw; e++) {
            float s = 0.0f;
            for (int ch = 0; ch < nch; ch++)
                s += dwpart[ch * nw + e];
            c->dw[e] = s;
        }
        for (int o = 0; o < co; o++) {
            double s = 0.0;
            for (int ch = 0; ch < nch; ch++)
                s += dbpart[(size_t)ch * co + o];
            c->db[o] = (float)s;
        }
    }
}

/* ---- engines dnnl, dnnlb, dnnlk ------------------------------------------------------------ */
#include "bench_conv_dnnl.h"
#include "bench_util.h"

/* ---- engine conv: difflab's nn/conv (the choice); its bwd-data pass is a whole backward ------ */

static dm_conv conv;
static dm_conv_ws conv_ws;

static int conv_setup(conv_buf *c, char *info, size_t info_size)
{
    char err[DM_ERR_SIZE];
    if (dm_conv_init(&conv, c->s.cin, c->s.cout, c->s.k, c->s.stride, c->s.h, c->s.h, err) ||
        dm_conv_ws_init(&conv_ws, &conv, c->n, err)) {
        snprintf(info, info_size, "%s", err);
        dm_conv_free(&conv);
        return 1;
    }
    snprintf(info, info_size, "nn/conv, tile %d; its bwd-data column is a whole backward (data + weights)",
             DM_CONV_TILE);
    return 0;
}

static void conv_pass(conv_buf *c, int pass)
{
    if (pass == FWD)
        dm_conv_forward(&conv, c->w, c->b, &conv_ws, c->n, c->x, c->y);
    else
        dm_conv_backward(&conv, c->w, &conv_ws, c->n, c->x, c->dy, c->dw, c->db, pass == BWD_DATA ? c->dx : NULL, 0);
}

static void conv_teardown(void)
{
    dm_conv_ws_free(&conv_ws);
    dm_conv_free(&conv);
}

/* ---- driver ------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*setup)(conv_buf *c, char *info, size_t info_size); // 0: usable
    void (*run)(conv_buf *c, int pass);
    void (*teardown)(void);
    int bwd_both; // its bwd-data pass is a whole backward (data + weights)
} engine;

static int gemm_setup(conv_buf *c, char *info, size_t info_size)
{
    snprintf(info, info_size, "OpenBLAS %s", openblas_get_corename());
    const int nt = omp_get_max_threads(), nch = (c->n + CHUNK - 1) / CHUNK;
    scratch_floats = (size_t)c->kk * c->howo + 16;
    scratch = malloc(sizeof *scratch * (size_t)nt);
    for (int t = 0; t < nt; t++)
        scratch[t] = falloc(scratch_floats);
    dwpart = falloc((size_t)nch * c->s.cout * c->kk);
    dbpart = (double *)(void *)falloc(2 * (size_t)nch * c->s.cout);
    return 0;
}

static int scratch_threads;
static void gemm_teardown(void)
{
    for (int t = 0; t < scratch_threads; t++)
        dm_free_aligned(scratch[t]);
    free(scratch);
    dm_free_aligned(dwpart);
    dm_free_aligned(dbpart);
}

static const engine engines[] = {
    {"gemm", gemm_setup, gemm_pass, gemm_teardown, 0},
    {"dnnl", dnnl_setup_plain, dnnl_pass, dnnl_teardown, 0},
    {"dnnlb", dnnl_setup_blocked, dnnl_pass, dnnl_teardown, 0},
    {"dnnlk", dnnl_setup_kernels, dnnl_pass, dnnl_teardown, 0},
    {"conv", conv_setup, conv_pass, conv_teardown, 1},
};
#define N_ENGINES ((int)(sizeof engines / sizeof engines[0]))

/* Median over reps of the pass's GFLOP/s; each rep runs the pass until 0.15 s have passed. */
static double time_pass(const engine *e, conv_buf *c, int pass, int reps)
{
    double g[16];
    e->run(c, pass); // warm-up
    for (int r = 0; r < reps; r++) {
        int it = 0;
        const double t0 = dm_now();
        double el;
        do {
            e->run(c, pass);
            it++;
        } while ((el = dm_now() - t0) < 0.15);
        g[r] = pass_flops(c, pass, e->bwd_both) * it / el / 1e9;
    }
    qsort(g, (size_t)reps, sizeof *g, cmp_double);
    return g[reps / 2];
}

/* Outputs of all three passes, concatenated. */
static size_t out_size(const conv_buf *c)
{
    return (size_t)c->n * c->s.cout * c->howo + (size_t)c->n * c->s.cin * c->hw + (size_t)c->s.cout * c->kk +
           (size_t)c->s.cout;
}

static void run_all(const engine *e, conv_buf *c, float *out)
{
    const size_t ny = (size_t)c->n * c->s.cout * c->howo, nx = (size_t)c->n * c->s.cin * c->hw;
    const size_t nw = (size_t)c->s.cout * c->kk;
    for (int p = 0; p < N_PASS; p++)
        e->run(c, p);
    memcpy(out, c->y, ny * sizeof *out);
    memcpy(out + ny, c->dx, nx * sizeof *out);
    memcpy(out + ny + nx, c->dw, nw * sizeof *out);
    memcpy(out + ny + nx + nw, c->db, (size_t)c->s.cout * sizeof *out);
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double m = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++)
        s = fmax(s, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return s > 0 ? m / s : m;
}

int main(int argc, char **argv)
{
    int batch = 128, reps = 3, nthr = 0, thr[4] = {0};
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tile") && i + 1 < argc)
            CHUNK = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--engines") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *p = argv[++i];
            while (*p && nthr < 4) {
                thr[nthr++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else {
            fprintf(stderr, "usage: bench_conv [--batch N] [--threads 1,2] [--engines gemm,dnnl,..] [--tile T] [--reps K]\n");
            return 2;
        }
    }
    if (nthr == 0)
        thr[nthr++] = 1, thr[nthr++] = 2;
    if (batch < 1 || reps < 1 || reps > 16 || CHUNK < 1 || batch % CHUNK) {
        fprintf(stderr, "bench_conv: need --batch >= 1, 1 <= --reps <= 16, a --tile that divides the batch\n");
        return 2;
    }
    printf("bench_conv: batch %d, median of %d reps, GFLOP/s (2 x MACs) per pass\n", batch, reps);
    double tot_t[N_ENGINES][4];
    memset(tot_t, 0, sizeof tot_t);
    for (int si = 0; si < N_SHAPES; si++) {
        conv_buf c;
        buf_init(&c, &shapes[si], batch);
        float *ref = falloc(out_size(&c)), *out = falloc(out_size(&c));
        int have_ref = 0;
        for (int ei = 0; ei < N_ENGINES; ei++) {
            const engine *e = &engines[ei];
            if (only && !strstr(only, e->name))
                continue;
            char info[256] = "";
            int bits_same = 1;
            double g[4][N_PASS];
            for (int ti = 0; ti < nthr; ti++) {
                omp_set_num_threads(thr[ti]);
                scratch_threads = thr[ti];
                if (e->setup(&c, info, sizeof info)) {
                    printf("%-26s %-6s unusable: %s\n", c.s.name, e->name, info);
                    break;
                }
                if (ti == 0) {
                    run_all(e, &c, out);
                    if (ei == 0) {
                        memcpy(ref, out, out_size(&c) * sizeof *out);
                        have_ref = 1;
                    } else if (have_ref && strcmp(e->name, "dnnlk")) {
                        const size_t ny = (size_t)c.n * c.s.cout * c.howo, nx = (size_t)c.n * c.s.cin * c.hw;
                        printf("%-26s %-6s vs gemm: y %.1e dx %.1e dW %.1e db %.1e (max abs diff / max abs)\n",
                               c.s.name, e->name, max_rel(out, ref, ny), max_rel(out + ny, ref + ny, nx),
                               max_rel(out + ny + nx, ref + ny + nx, (size_t)c.s.cout * c.kk),
                               max_rel(out + out_size(&c) - c.s.cout, ref + out_size(&c) - c.s.cout,
                                       (size_t)c.s.cout));
                    }
                } else { // the same engine on another thread count: the same bits?
                    float *o2 = falloc(out_size(&c));
                    run_all(e, &c, o2);
                    bits_same &= !memcmp(o2, out, out_size(&c) * sizeof *o2);
                    dm_free_aligned(o2);
                }
                for (int p = 0; p < N_PASS; p++)
                    g[ti][p] = time_pass(e, &c, p, reps);
                e->teardown();
                for (int p = 0; p < N_PASS; p++) { // the input conv needs no dx
                    const int skip = e->bwd_both ? (si > 0) == (p == BWD_W) : si == 0 && p == BWD_DATA;
                    if (!skip)
                        tot_t[ei][ti] += shapes[si].count * pass_flops(&c, p, e->bwd_both) / (g[ti][p] * 1e9);
                }
            }
            printf("%-26s %-6s", c.s.name, e->name);
            for (int ti = 0; ti < nthr; ti++)
                printf("  %dt: fwd %6.1f bwd-data %6.1f bwd-w %6.1f", thr[ti], g[ti][FWD], g[ti][BWD_DATA],
                       g[ti][BWD_W]);
            const int no_bits = nthr < 2 || !strcmp(e->name, "dnnlk"); // dnnlk's buffers hold no data
            printf("  bits %s  [%s]\n", no_bits ? "-" : bits_same ? "same" : "DIFFER", info);
            fflush(stdout);
        }
        dm_free_aligned(ref);
        dm_free_aligned(out);
        buf_free(&c);
    }
    for (int ei = 0; ei < N_ENGINES; ei++) {
        if (only && !strstr(only, engines[ei].name))
            continue;
        printf("all convs of one training step (fwd + bwd-data + bwd-w) %-6s", engines[ei].name);
        for (int ti = 0; ti < nthr; ti++)
            printf("  %dt: %.3f s", thr[ti], tot_t[ei][ti]);
        printf("\n");
    }
    return 0;
}
