/* unet.h — the U-Net model (`model: {type: unet, ...}`), a network of nn/net.h.
 *
 * For items of shape (C, H, W) and levels l = 0..L-1 with ch_l = ch * mult[l] channels at
 * resolution H / 2^l:
 *   temb = embed(c_noise) (+ the class embedding, conditional)          (nn/embed: Linear-SiLU-Linear)
 *   h = Conv3x3(C -> ch)
 *   down, per level l: `blocks` residual blocks to ch_l (each output, after its attention block
 *        when the resolution is in `attn`, is kept as a skip); then, below the last level, a 3x3
 *        stride-2 convolution (ch_l -> ch_l)
 *   mid: one residual block (+ attention at that resolution when listed)
 *   up, per level l = L-1..0: `blocks` residual blocks, each on cat(h, the last skip) -> ch_l
 *        (+ attention); then, above level 0, nearest x2 upsampling and a 3x3 convolution
 *   out = Conv3x3(SiLU(GroupNorm(h)) -> out_dim / (H W) channels)
 * A residual block (i -> o): GN-SiLU-Conv3x3(i -> o) + Linear(SiLU(temb)) per channel, GN-SiLU,
 * dropout, Conv3x3(o -> o), plus the input (a 1x1 convolution when i != o).
 * The defaults (ch 32, mult [1, 2], blocks 1, no attention, groups 8, temb 128) are the peer
 * ../shared/peer/peer_fmnist_unet.py: 423,009 parameters at 1x28x28, in PyTorch's parameter
 * order and initialisation (so its weights could be loaded as they are).
 *
 * Memory: activations for up to DM_UNET_BATCH_CAP items (net->batch_cap): a denoiser runs
 * larger sample sets in batches of that size. */
#ifndef DM_NN_UNET_H
#define DM_NN_UNET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/options.h"
#include "nn/net.h"

#define DM_UNET_BATCH_CAP 256

typedef struct dm_unet_opts {
    int64_t ch;          /* base channels */
    dm_reals mult;       /* channel multiplier per level */
    int64_t blocks;      /* residual blocks per level */
    dm_reals attn;       /* resolutions (H) with self-attention after each residual block */
    double dropout;      /* in every residual block */
    int64_t groups;      /* GroupNorm groups */
    int64_t temb;        /* time-embedding width */
    bool conditional;    /* a class embedding added to the time embedding */
} dm_unet_opts;

extern const dm_net_vt dm_net_unet;
extern const dm_param_desc dm_unet_params[];

#endif
