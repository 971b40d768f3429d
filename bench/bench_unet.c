/* bench_unet — difflab's U-Net speed against the PyTorch peer, in one run.
 *
 * The peer's model and shapes (shared/peer/peer_fmnist_unet.py: 1x28x28 images, the U-Net of
 * 423,009 parameters, DDPM eps-loss with linear betas, Adam 2e-4): training images/s at batch 128
 * through the real trainer (generated 28x28 images: speed does not depend on the pixels), and
 * inference images/s of one network evaluation at batch 256. Three interleaved rounds; in each,
 * difflab runs, then the peer at each 2-core setting (--threads 1, --threads 2; each round takes
 * the better, its best setting). Prints the medians over rounds and one line
 *   ratio: train Nx, infer Nx
 * of difflab's median over the peer's median (targets 1.25x, stretch 1.5x; issue 16).
 *
 * usage: bench_unet [--threads N] [--rounds R] [--peer PATH|--no-peer] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/progress.h"
#include "io/spec.h"
#include "train/schema.h"
#include "train/trainer.h"
#include "bench_util.h"

static const char spec_text[] =
    "name: bench_unet\n"
    "data: {type: image_mixture, c: 1, h: 28, w: 28, k: 10, std: 0.3}\n"
    "model: {type: unet}\n"
    "diffusion: {schedule: {type: ddpm_linear, T: 1000}, param: eps, loss: mse}\n"
    "train: {batch: 128, lr: 2.0e-4, n_data: 1024}\n"
    "eval: {n_ref: 16}\n";

enum { MAX_ROUNDS = 16, WINDOWS = 5, TRAIN_WINDOW = 5, INFER_WINDOW = 3, INFER_BATCH = 256 };

static double median(const double *v, int n)
{
    double s[64];
    memcpy(s, v, sizeof(double) * (size_t)n);
    return median_sort(s, n);
}

/* The peer at one thread count: its median training and inference images/s. */
static int run_peer(const char *peer, int threads, double *train_ips, double *infer_ips)
{
    char args[32], buf[16384];
    snprintf(args, sizeof args, "--threads %d", threads);
    if (run_peer_json(peer, args, buf, sizeof buf))
        return -1;
    *train_ips = json_number(buf, "train_images_per_s_median");
    *infer_ips = json_number(buf, "infer_images_per_s_median");
    return *train_ips > 0 && *infer_ips > 0 ? 0 : -1;
}

/* difflab's median training and inference images/s over WINDOWS windows each. */
static int run_difflab(dm_trainer *tr, dm_net_ws *ws, float *x, float *tin, float *out, double *train_ips,
                       double *infer_ips, char *err)
{
    double loss, gn, v[WINDOWS];
    const double B = (double)tr->topt->batch;
    for (int i = 0; i < 3; i++) /* warm-up, as the peer */
        if (dm_trainer_step(tr, &loss, &gn, err))
            return -1;
    for (int w = 0; w < WINDOWS; w++) {
        const double t0 = dm_now();
        for (int i = 0; i < TRAIN_WINDOW; i++)
            if (dm_trainer_step(tr, &loss, &gn, err))
                return -1;
        v[w] = B * TRAIN_WINDOW / (dm_now() - t0);
    }
    *train_ips = median(v, WINDOWS);
    for (int i = 0; i < 2; i++)
        dm_net_forward(&tr->net, tr->ema, ws, INFER_BATCH, x, tin, NULL, out);
    for (int w = 0; w < WINDOWS; w++) {
        const double t0 = dm_now();
        for (int i = 0; i < INFER_WINDOW; i++)
            dm_net_forward(&tr->net, tr->ema, ws, INFER_BATCH, x, tin, NULL, out);
        v[w] = (double)INFER_BATCH * INFER_WINDOW / (dm_now() - t0);
    }
    *infer_ips = median(v, WINDOWS);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, rounds = 3, use_peer = 1;
    const char *peer = DIFFLAB_SOURCE_DIR "/../shared/peer/peer_fmnist_unet.py";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else if (!strcmp(argv[i], "--no-peer"))
            use_peer = 0;
        else {
            fprintf(stderr, "usage: bench_unet [--threads N] [--rounds R] [--peer PATH|--no-peer]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 3;
    if (use_peer && system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("peer: python3-torch is not installed (scripts/install-deps.sh --bench installs it); no ratios\n");
        use_peer = 0;
    }
    omp_set_num_threads(threads);

    char err[DM_ERR_SIZE];
    dm_spec *spec = NULL;
    dm_trainer tr;
    dm_net_ws ws;
    if (dm_spec_load_text(&dm_spec_schema, spec_text, "<bench>", 0, NULL, &spec, err) ||
        dm_trainer_init(&tr, spec, NULL, err) || dm_net_ws_init(&tr.net, &ws, INFER_BATCH, err)) {
        fprintf(stderr, "bench_unet: %s\n", err);
        return 1;
    }
    const size_t d = tr.dim, od = (size_t)tr.net.cfg.out_dim;
    float *x = dm_malloc_aligned(sizeof(float) * INFER_BATCH * d), *out = dm_malloc_aligned(sizeof(float) * INFER_BATCH * od);
    float *tin = dm_malloc_aligned(sizeof(float) * INFER_BATCH);
    for (size_t i = 0; i < INFER_BATCH * d; i++)
        x[i] = tr.train_x[i % (tr.dim * 1024)];
    for (int i = 0; i < INFER_BATCH; i++)
        tin[i] = (float)((i * 37) % 1000);
    printf("difflab %s, %d threads, U-Net of %zu parameters (the peer's: 423009)\n", DIFFLAB_VERSION, threads,
           tr.net.n_params);

    double dt[MAX_ROUNDS], di[MAX_ROUNDS], pt[MAX_ROUNDS], pi[MAX_ROUNDS];
    int peer_rounds = 0;
    for (int r = 0; r < rounds; r++) {
        if (run_difflab(&tr, &ws, x, tin, out, &dt[r], &di[r], err)) {
            fprintf(stderr, "bench_unet: %s\n", err);
            return 1;
        }
        printf("round %d: difflab train %.1f img/s (batch 128), infer %.1f img/s (batch 256)\n", r + 1, dt[r], di[r]);
        if (!use_peer)
            continue;
        double best_t = -1, best_i = -1;
        for (int th = 1; th <= 2; th++) {
            double t, i;
            if (run_peer(peer, th, &t, &i) == 0) {
                printf("round %d: peer --threads %d: train %.1f img/s, infer %.1f img/s\n", r + 1, th, t, i);
                best_t = t > best_t ? t : best_t;
                best_i = i > best_i ? i : best_i;
            }
        }
        if (best_t > 0) {
            pt[peer_rounds] = best_t;
            pi[peer_rounds++] = best_i;
        }
        fflush(stdout);
    }
    const double mdt = median(dt, rounds), mdi = median(di, rounds);
    const double flop = 3.0 * 252e6 * 128.0; /* the peer's count: 3x the forward's conv+linear FLOPs per step */
    printf("difflab: train %.1f img/s (%.1f GFLOP/s), infer %.1f img/s, medians of %d rounds\n", mdt,
           mdt / 128.0 * flop / 1e9, mdi, rounds);
    if (peer_rounds > 0) {
        const double mpt = median(pt, peer_rounds), mpi = median(pi, peer_rounds);
        printf("peer (best of --threads 1, 2 per round): train %.1f img/s, infer %.1f img/s, medians of %d rounds\n",
               mpt, mpi, peer_rounds);
        printf("ratio: train %.2fx, infer %.2fx (targets 1.25x, stretch 1.5x)\n", mdt / mpt, mdi / mpi);
    }
    dm_free_aligned(x);
    dm_free_aligned(out);
    dm_free_aligned(tin);
    dm_net_ws_free(&tr.net, &ws);
    dm_trainer_free(&tr);
    dm_spec_free(spec);
    return 0;
}
