/* bench_toy — difflab's toy-MLP speed against the PyTorch peer, in one run.
 *
 * Trains the peer's model (shared/peer/peer_toy_mlp.py: 8 Gaussians, MLP 66-256-256-256-2, DDPM
 * eps-loss, Adam 1e-3, batch 1024) through the real trainer, and runs DDPM ancestral sampling of
 * 10,000 points x 1000 steps through the real sampler; prints steps/s and point-steps/s. When
 * Debian's python3-torch is installed, runs the peer in the same run at its best 2-core setting
 * (--threads 1 --blas-threads 2) and prints the ratios.
 *
 * usage: bench_toy [--threads N] [--windows K] [--peer PATH|--no-peer] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/progress.h"
#include "io/spec.h"
#include "train/schema.h"
#include "train/trainer.h"
#include "bench_util.h"

static const char spec_text[] =
    "name: bench\n"
    "data: {type: eight_gaussians, radius: 2.0, std: 0.1}\n"
    "model: {type: mlp, width: 256, depth: 3, nfreq: 32}\n"
    "diffusion: {schedule: {type: ddpm_linear, T: 1000}, param: eps, loss: mse}\n"
    "sampler: {type: ddpm, variance: beta}\n"
    "train: {batch: 1024, lr: 1.0e-3, n_data: 100000}\n"
    "eval: {n_samples: 10000, batch: 10000}\n";

static int run_peer(const char *peer, double *train_sps, double *sample_pps)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("peer: python3-torch is not installed (scripts/install-deps.sh --bench installs it); no ratios\n");
        return -1;
    }
    char buf[16384];
    if (run_peer_json(peer, "--threads 1 --blas-threads 2", buf, sizeof buf))
        return -1;
    *train_sps = json_number(buf, "train_steps_per_s_median");
    *sample_pps = json_number(buf, "sample_point_steps_per_s_total");
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, windows = 5, window = 200, warmup = 50, use_peer = 1;
    const char *peer = DIFFLAB_SOURCE_DIR "/../shared/peer/peer_toy_mlp.py";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--windows") && i + 1 < argc)
            windows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else if (!strcmp(argv[i], "--no-peer"))
            use_peer = 0;
        else {
            fprintf(stderr, "usage: bench_toy [--threads N] [--windows K] [--peer PATH|--no-peer]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    char err[DM_ERR_SIZE];
    dm_spec *spec = NULL;
    dm_trainer tr;
    if (dm_spec_load_text(&dm_spec_schema, spec_text, "<bench>", 0, NULL, &spec, err) ||
        dm_trainer_init(&tr, spec, NULL, err)) {
        fprintf(stderr, "bench_toy: %s\n", err);
        return 1;
    }
    printf("difflab %s, %d threads, BLAS: %s\n", DIFFLAB_VERSION, threads, openblas_get_config());

    double loss, gn, sps[64];
    for (int i = 0; i < warmup; i++)
        dm_trainer_step(&tr, &loss, &gn, err);
    if (windows > 64)
        windows = 64;
    for (int w = 0; w < windows; w++) {
        double t0 = dm_now();
        for (int i = 0; i < window; i++)
            if (dm_trainer_step(&tr, &loss, &gn, err)) {
                fprintf(stderr, "bench_toy: %s\n", err);
                return 1;
            }
        sps[w] = window / (dm_now() - t0);
    }
    double sorted[64];
    memcpy(sorted, sps, sizeof(double) * (size_t)windows);
    qsort(sorted, (size_t)windows, sizeof(double), cmp_double);
    const double train = sorted[windows / 2];
    printf("train: median %.1f steps/s (min %.1f, max %.1f) over %dx%d steps at batch 1024; loss %.4f\n",
           train, sorted[0], sorted[windows - 1], windows, window, loss);
    fflush(stdout);

    const size_t n = 10000;
    float *x = dm_malloc_aligned(sizeof(float) * n * 2);
    int64_t nfe = 0;
    double t0 = dm_now();
    if (dm_trainer_sample(&tr, tr.sampler, tr.sampler_opts, x, &nfe, err)) {
        fprintf(stderr, "bench_toy: %s\n", err);
        return 1;
    }
    const double el = dm_now() - t0, pps = (double)n * (double)nfe / el;
    printf("sample: %zu points x %lld steps in %.2f s = %.3f M point-steps/s\n", n, (long long)nfe, el, pps / 1e6);
    fflush(stdout);

    double ptrain, psample;
    if (use_peer && run_peer(peer, &ptrain, &psample) == 0 && ptrain > 0 && psample > 0) {
        printf("peer (PyTorch, --threads 1 --blas-threads 2): train %.1f steps/s, sample %.3f M point-steps/s\n",
               ptrain, psample / 1e6);
        printf("ratio: train %.2fx (target 2x, stretch 2.5x), sample %.2fx (target 3x, stretch 3.5x)\n",
               train / ptrain, pps / psample);
    }
    dm_free_aligned(x);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
    return 0;
}
