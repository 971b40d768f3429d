/* cnn.h — the cnn model (`model: {type: cnn, ...}`), a CNN classifier and feature network of
 * nn/net.h, for image metrics computed in a feature space of difflab's own (issue 17).
 *
 * It is the U-Net's down half (nn/unet.h, the same plan and options): for items (C, H, W) and
 * levels l = 0..L-1 with ch_l = ch * mult[l] channels at resolution H / 2^l,
 *   temb = embed(c_noise)                                      (so it can also be a noisy p(y | x_t))
 *   h = Conv3x3(C -> ch)
 *   per level l: `blocks` residual blocks to ch_l (+ attention at the resolutions in `attn`);
 *        below the last level a 3x3 stride-2 convolution (ch_l -> ch_l)
 *   mid: one residual block (+ attention)
 *   features = mean over H W of SiLU(GroupNorm(h))             (n, ch_{L-1}): dm_net_features
 *   out = Linear(ch_{L-1} -> out_dim)(features)                e.g. 10 logits
 * Options as the U-Net's without `conditional` (a classifier is not class-conditional); defaults
 * ch 32, mult [1, 2, 2], blocks 1, no attention, dropout 0, groups 8, temb 128. Parameters in
 * plan order: the embedding, each operation's layers, then GroupNorm and the Linear (PyTorch's
 * default init). A workspace holds up to DM_UNET_BATCH_CAP items (net->batch_cap). */
#ifndef DM_NN_CNN_H
#define DM_NN_CNN_H

#include "core/options.h"
#include "nn/net.h"
#include "nn/unet.h"

extern const dm_net_vt dm_net_cnn;
/* Its options: a dm_unet_opts (conditional stays false). */
extern const dm_param_desc dm_cnn_params[];

#endif
