/* bench_layers.c — time per call of the U-Net's elementwise layers at the peer's shapes
 * (../shared/peer/peer_fmnist_unet.py, batch 128): GroupNorm(8) + SiLU forward and backward at
 * 32ch@28x28, 64ch@14x14, 96ch@28x28 and 128ch@14x14 (the block inputs and outputs), and, for
 * scale, nearest x2 upsampling, the skip concatenation, dropout (p = 0.1) and one attention block
 * at 64ch@14x14. Median of --reps calls after one warm-up call; indicative, not a test.
 *
 * Usage: bench_layers [--threads N (default 2)] [--reps R (21)] [--batch B (128)] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "nn/attn.h"
#include "nn/dropout.h"
#include "nn/gnorm.h"
#include "nn/resample.h"
#include "bench_util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int reps = 21;

/* Median milliseconds of reps calls of what(k, ctx) (k = 0: forward, 1: backward). */
typedef void (*call_fn)(int k, void *ctx);

static double time_ms(call_fn f, int k, void *ctx)
{
    double *t = malloc((size_t)reps * sizeof *t);
    f(k, ctx);
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        f(k, ctx);
        t[r] = 1e3 * (now() - t0);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    const double med = t[reps / 2];
    free(t);
    return med;
}

typedef struct gn_ctx {
    dm_gnorm g;
    dm_gnorm_ws ws;
    int n;
    float *p, *grads, *x, *y, *dy, *dx;
} gn_ctx;

static void gn_call(int k, void *vctx)
{
    gn_ctx *c = vctx;
    if (k == 0)
        dm_gnorm_silu_forward(&c->g, c->p, &c->ws, c->n, c->x, c->y);
    else
        dm_gnorm_silu_backward(&c->g, c->p, &c->ws, c->n, c->x, c->dy, c->grads, c->dx, 0);
}

typedef struct misc_ctx {
    int n, c, h, w;
    float *a, *b, *y;
} misc_ctx;

static void up_call(int k, void *vctx)
{
    misc_ctx *c = vctx;
    if (k == 0)
        dm_upsample2_forward(c->n, c->c, c->h, c->w, c->a, c->y);
    else
        dm_upsample2_backward(c->n, c->c, c->h, c->w, c->y, c->a, 0);
}

static void cat_call(int k, void *vctx)
{
    misc_ctx *c = vctx;
    if (k == 0)
        dm_concat_forward(c->n, c->c, c->c, c->h * c->w, c->a, c->b, c->y);
    else
        dm_concat_backward(c->n, c->c, c->c, c->h * c->w, c->y, c->a, 0, c->b, 1);
}

static void drop_call(int k, void *vctx)
{
    misc_ctx *c = vctx;
    const size_t d = (size_t)c->c * c->h * c->w;
    if (k == 0)
        dm_dropout_forward(0.1, 12345, 0, c->n, d, c->a, c->y);
    else
        dm_dropout_backward(0.1, 12345, 0, c->n, d, c->y, c->b, 0);
}

typedef struct at_ctx {
    dm_attn at;
    dm_attn_ws ws;
    int n;
    float *p, *grads, *x, *y, *dx;
} at_ctx;

static void at_call(int k, void *vctx)
{
    at_ctx *c = vctx;
    if (k == 0)
        dm_attn_forward(&c->at, c->p, &c->ws, c->n, c->x, c->y);
    else
        dm_attn_backward(&c->at, c->p, &c->ws, c->n, c->x, c->y, c->grads, c->dx, 0);
}

static float *filled(size_t m, dm_rng *rng)
{
    float *v = malloc(m * sizeof *v);
    if (!v) {
        fprintf(stderr, "bench_layers: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < m; i++)
        v[i] = (float)dm_rng_normal(rng);
    return v;
}

int main(int argc, char **argv)
{
    int threads = 2, n = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            n = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_layers [--threads N] [--reps R] [--batch B]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || n < 1) {
        fprintf(stderr, "bench_layers: --threads, --reps and --batch must be >= 1\n");
        return 2;
    }
    omp_set_num_threads(threads);
    char err[DM_ERR_SIZE];
    dm_rng rng;
    if (dm_rng_init(&rng, 1, err) != DM_OK) {
        fprintf(stderr, "bench_layers: %s\n", err);
        return 1;
    }
    printf("batch %d, %d threads, median of %d calls (ms per call)\n", n, threads, reps);
    const int shapes[4][2] = {{32, 28}, {64, 14}, {96, 28}, {128, 14}};
    for (int s = 0; s < 4; s++) {
        gn_ctx c = {.n = n};
        const int C = shapes[s][0], hw = shapes[s][1] * shapes[s][1];
        const size_t m = (size_t)n * C * hw;
        if (dm_gnorm_init(&c.g, 8, C, err) != DM_OK || dm_gnorm_ws_init(&c.ws, &c.g, hw, n, err) != DM_OK) {
            fprintf(stderr, "bench_layers: %s\n", err);
            return 1;
        }
        c.p = filled(c.g.n_params, &rng);
        c.grads = filled(c.g.n_params, &rng);
        c.x = filled(m, &rng);
        c.y = filled(m, &rng);
        c.dy = filled(m, &rng);
        c.dx = filled(m, &rng);
        const double f = time_ms(gn_call, 0, &c), b = time_ms(gn_call, 1, &c);
        printf("gnorm+silu %3dch@%dx%d (%5.1f MB): forward %6.2f  backward %6.2f  (%.1f / %.1f GB/s)\n", C,
               shapes[s][1], shapes[s][1], 4e-6 * (double)m, f, b, 8e-6 * (double)m / f,
               12e-6 * (double)m / b);
        dm_gnorm_ws_free(&c.ws);
        free(c.p);
        free(c.grads);
        free(c.x);
        free(c.y);
        free(c.dy);
        free(c.dx);
    }
    misc_ctx mc = {n, 64, 14, 14, NULL, NULL, NULL};
    const size_t m14 = (size_t)n * 64 * 14 * 14;
    mc.a = filled(4 * m14, &rng);
    mc.b = filled(4 * m14, &rng);
    mc.y = filled(4 * m14, &rng);
    printf("upsample 64ch 14->28:          forward %6.2f  backward %6.2f\n", time_ms(up_call, 0, &mc),
           time_ms(up_call, 1, &mc));
    printf("concat 64+64ch@14x14:          forward %6.2f  backward %6.2f\n", time_ms(cat_call, 0, &mc),
           time_ms(cat_call, 1, &mc));
    mc.c = 32;
    mc.h = mc.w = 28;
    printf("dropout 0.1 32ch@28x28:        forward %6.2f  backward %6.2f\n", time_ms(drop_call, 0, &mc),
           time_ms(drop_call, 1, &mc));
    at_ctx ac = {.n = n};
    if (dm_attn_init(&ac.at, 8, 64, err) != DM_OK || dm_attn_ws_init(&ac.ws, &ac.at, 196, n, err) != DM_OK) {
        fprintf(stderr, "bench_layers: %s\n", err);
        return 1;
    }
    ac.p = filled(ac.at.n_params, &rng);
    dm_attn_init_params(&ac.at, ac.p, &rng);
    ac.grads = filled(ac.at.n_params, &rng);
    ac.x = mc.a;
    ac.y = mc.b;
    ac.dx = mc.y;
    printf("attention 64ch@14x14:          forward %6.2f  backward %6.2f\n", time_ms(at_call, 0, &ac),
           time_ms(at_call, 1, &ac));
    dm_attn_ws_free(&ac.ws);
    free(ac.p);
    free(ac.grads);
    free(mc.a);
    free(mc.b);
    free(mc.y);
    dm_rng_free(&rng);
    return 0;
}
