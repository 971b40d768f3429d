/* bench_nn.c — speed of the toy MLP (peer_toy_mlp.py's model) on the difflab nn module.
 *
 *   train:  forward at batch 1024 -> MSE gradient dout = 2 (out - eps) / (n out_dim) -> backward
 *           -> Adam(1e-3); steps/s (median of windows), plus a per-phase split
 *   sample: forward at batch 10000 with one t for all rows (as in ancestral sampling), and with
 *           a random t per row; point-evals/s
 *
 * Usage: bench_nn [--threads N (default 2)] [--windows W (5)] [--window S (200)] [--quick]
 *                 [--train-only | --sample-only]
 * Compare with `python3 peer_toy_mlp.py --threads 1 --blas-threads 2` run on the same machine. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "nn/mlp.h"
#include "nn/optim.h"
#include "bench_util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench {
    dm_mlp m;
    dm_mlp_ws ws;
    dm_adam adam;
    dm_rng rng;
    float *params, *grads; // (n_params)
    float *x, *t, *eps;    // (nmax, 2), (nmax), (nmax, 2)
    float *out, *dout;     // (nmax, 2)
} bench;

/* Batch of 8-Gaussians-like points, random t, noise targets (fresh each call, as in training). */
static void fill_batch(bench *b, int n, int same_t)
{
    const int tt = (int)dm_rng_int(&b->rng, 1000);
    for (int i = 0; i < n; i++) {
        const double ang = 0.785398163 * (double)dm_rng_int(&b->rng, 8);
        b->x[2 * i] = (float)(2.0 * cos(ang) + 0.1 * dm_rng_normal(&b->rng));
        b->x[2 * i + 1] = (float)(2.0 * sin(ang) + 0.1 * dm_rng_normal(&b->rng));
        b->t[i] = (float)(same_t ? tt : (int)dm_rng_int(&b->rng, 1000));
        b->eps[2 * i] = (float)dm_rng_normal(&b->rng);
        b->eps[2 * i + 1] = (float)dm_rng_normal(&b->rng);
    }
}

/* The sgemm calls of one training step alone (same shapes, layouts and beta as mlp.c, no
 * elementwise work): the floor the step can approach on this machine, measured in the same run. */
static void gemm_only_step(bench *b, int n)
{
    const dm_mlp *m = &b->m;
    const int L = m->n_layers;
    float *a = b->ws.act[0], *z = b->ws.pre[0], *g = b->ws.dbuf0, *gh = b->ws.dbuf1;
    for (int l = 0; l < L; l++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m->fan_out[l], m->fan_in[l], 1.0f,
                    l ? b->ws.act[l] : a, m->fan_in[l], b->params + m->w_off[l], m->fan_in[l], 1.0f,
                    l ? b->ws.pre[l] : z, m->fan_out[l]);
    for (int l = L - 1; l >= 0; l--) {
        for (int k0 = 0; k0 < n; k0 += 256)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m->fan_out[l], m->fan_in[l], 256, 1.0f,
                        g + (size_t)k0 * m->fan_out[l], m->fan_out[l],
                        b->ws.act[l] + (size_t)k0 * m->fan_in[l], m->fan_in[l], k0 ? 1.0f : 0.0f,
                        b->grads + m->w_off[l], m->fan_in[l]);
        if (l > 0 && l < L - 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m->fan_in[l], m->fan_out[l], 1.0f, g,
                        m->fan_out[l], b->params + m->w_off[l], m->fan_in[l], 1.0f, gh, m->fan_in[l]);
    }
}

/* One training step; adds the time of forward, backward, Adam to ph[0..2]. */
static void train_step(bench *b, int n, double *ph)
{
    const double t0 = now();
    dm_mlp_forward(&b->m, b->params, &b->ws, n, b->x, b->t, b->out);
    const float scale = 2.0f / (float)(n * 2);
    for (int i = 0; i < 2 * n; i++)
        b->dout[i] = scale * (b->out[i] - b->eps[i]);
    const double t1 = now();
    dm_mlp_backward(&b->m, b->params, &b->ws, n, b->dout, b->grads, NULL);
    const double t2 = now();
    dm_adam_step(&b->adam, b->params, b->grads, 1e-3);
    const double t3 = now();
    ph[0] += t1 - t0;
    ph[1] += t2 - t1;
    ph[2] += t3 - t2;
}

/* Training steps/s at batch n (batch generation, the caller's cheap work, is outside the timed
 * step), with the same-run sgemm-only floor for reference. */
static void bench_train(bench *b, int n, int windows, int window)
{
    double wins[100], gwins[100], ph[3] = {0, 0, 0};
    for (int s = 0; s < 50; s++) {
        fill_batch(b, n, 0);
        train_step(b, n, ph);
    }
    memset(ph, 0, sizeof ph);
    for (int w = 0; w < windows; w++) {
        double busy = 0.0;
        for (int s = 0; s < window; s++) {
            fill_batch(b, n, 0);
            const double t0 = now();
            train_step(b, n, ph);
            busy += now() - t0;
        }
        wins[w] = window / busy;
    }
    for (int w = 0; w < windows; w++) {
        const double t0 = now();
        for (int s = 0; s < window; s++)
            gemm_only_step(b, n);
        gwins[w] = window / (now() - t0);
    }
    const double steps = (double)windows * window;
    const double sps = median_sort(wins, windows), gsps = median_sort(gwins, windows);
    /* forward + dW for every layer + dX for all but the first (exact count of the peer) */
    double fwd = 0.0;
    for (int l = 0; l < b->m.n_layers; l++)
        fwd += 2.0 * n * b->m.fan_in[l] * b->m.fan_out[l];
    const double flops = 3.0 * fwd - 2.0 * n * b->m.fan_in[0] * b->m.fan_out[0];
    printf("[bench_nn] train batch %d: median %.1f steps/s (%.3f ms/step; windows min %.1f max "
           "%.1f); forward %.3f ms, backward %.3f ms, adam %.3f ms per step\n",
           n, sps, 1e3 / sps, wins[0], wins[windows - 1], 1e3 * ph[0] / steps, 1e3 * ph[1] / steps,
           1e3 * ph[2] / steps);
    printf("[bench_nn] same run, the step's sgemm calls alone: %.1f steps/s (%.3f ms, %.0f "
           "GFLOP/s); full step = %.0f%% of that rate, %.0f GFLOP/s\n",
           gsps, 1e3 / gsps, flops * gsps / 1e9, 100.0 * sps / gsps, flops * sps / 1e9);
}

/* Forward point-evals/s at batch n: one t for the batch (as in sampling), then random t. */
static void bench_sample(bench *b, int n, int windows, int window)
{
    double wins[100];
    for (int same = 1; same >= 0; same--) {
        fill_batch(b, n, same);
        for (int s = 0; s < 5; s++)
            dm_mlp_forward(&b->m, b->params, &b->ws, n, b->x, b->t, b->out);
        const int per = window / 4 > 5 ? window / 4 : 5;
        for (int w = 0; w < windows; w++) {
            const double t0 = now();
            for (int s = 0; s < per; s++)
                dm_mlp_forward(&b->m, b->params, &b->ws, n, b->x, b->t, b->out);
            wins[w] = (double)n * per / (now() - t0);
        }
        const double pps = median_sort(wins, windows);
        printf("[bench_nn] forward batch %d, %s: median %.3f M point-evals/s (%.3f ms/forward; "
               "windows min %.3f max %.3f)\n",
               n, same ? "one t per batch (sampling)" : "random t per row", pps / 1e6, 1e3 * n / pps,
               wins[0] / 1e6, wins[windows - 1] / 1e6);
    }
}

int main(int argc, char **argv)
{
    int threads = 2, windows = 5, window = 200, sample = 1, train = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--windows") && i + 1 < argc)
            windows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--window") && i + 1 < argc)
            window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            windows = 3, window = 50;
        else if (!strcmp(argv[i], "--train-only"))
            sample = 0;
        else if (!strcmp(argv[i], "--sample-only"))
            train = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--windows W] [--window S] [--quick] "
                    "[--train-only | --sample-only]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || windows < 1 || windows > 100 || window < 1) {
        fprintf(stderr, "bench_nn: bad arguments\n");
        return 2;
    }
    /* OpenBLAS's OpenMP build follows omp_get_max_threads(); set both anyway. */
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);

    const dm_mlp_cfg cfg = {.in_dim = 2, .out_dim = 2, .nfreq = 32, .width = 256, .depth = 3};
    const int B = 1024, NS = 10000;
    char err[DM_ERR_SIZE];
    bench b;
    memset(&b, 0, sizeof b);
    int rc = 1;
    if (dm_mlp_init(&b.m, &cfg, err) || dm_mlp_ws_init(&b.ws, &b.m, NS, err) ||
        dm_adam_init(&b.adam, b.m.n_params, 1e-3, 0.9, 0.999, 1e-8, 0.0, err) ||
        dm_rng_init(&b.rng, 1, err)) {
        fprintf(stderr, "bench_nn: %s\n", err);
        goto out;
    }
    b.params = malloc(b.m.n_params * sizeof(float));
    b.grads = malloc(b.m.n_params * sizeof(float));
    b.x = malloc((size_t)NS * 2 * sizeof(float));
    b.t = malloc((size_t)NS * sizeof(float));
    b.eps = malloc((size_t)NS * 2 * sizeof(float));
    b.out = malloc((size_t)NS * 2 * sizeof(float));
    b.dout = malloc((size_t)NS * 2 * sizeof(float));
    if (!b.params || !b.grads || !b.x || !b.t || !b.eps || !b.out || !b.dout) {
        fprintf(stderr, "bench_nn: out of memory\n");
        goto out;
    }
    dm_mlp_init_params(&b.m, b.params, &b.rng);
    printf("[bench_nn] toy MLP %d params, threads %d (OpenMP + OpenBLAS %s)\n", (int)b.m.n_params, threads,
           openblas_get_config());

    if (train)
        bench_train(&b, B, windows, window);
    if (sample)
        bench_sample(&b, NS, windows, window);
    rc = 0;
out:
    free(b.params);
    free(b.grads);
    free(b.x);
    free(b.t);
    free(b.eps);
    free(b.out);
    free(b.dout);
    dm_rng_free(&b.rng);
    dm_adam_free(&b.adam);
    dm_mlp_ws_free(&b.ws);
    dm_mlp_free(&b.m);
    return rc;
}
