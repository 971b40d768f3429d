/* cnn.c — the cnn model (cnn.h): its options and network functions. The plan, parameters,
 * workspaces and passes are the U-Net's (unet.c, unet_pass.c) with the pooling head. */
#include "nn/cnn.h"

#include <stddef.h>
#include <stdio.h>

#include "nn/unet_internal.h"

const dm_param_desc dm_cnn_params[] = {
    { "ch", DM_OPT_INT, "32", 1, 1024, NULL, 0, offsetof(dm_unet_opts, ch), "base channels" },
    { "mult", DM_OPT_REALS, "[1, 2, 2]", 1, 64, NULL, 0, offsetof(dm_unet_opts, mult),
      "channel multiplier per level (levels = its length; each level below the first halves H and W)" },
    { "blocks", DM_OPT_INT, "1", 1, 16, NULL, 0, offsetof(dm_unet_opts, blocks), "residual blocks per level" },
    { "attn", DM_OPT_REALS, "[]", 1, 4096, NULL, 0, offsetof(dm_unet_opts, attn),
      "resolutions (H) with self-attention after each residual block, e.g. [7]" },
    { "dropout", DM_OPT_REAL, "0", 0, 0.9, NULL, 0, offsetof(dm_unet_opts, dropout),
      "dropout rate in every residual block (training only)" },
    { "groups", DM_OPT_INT, "8", 1, 1024, NULL, 0, offsetof(dm_unet_opts, groups), "GroupNorm groups" },
    { "temb", DM_OPT_INT, "128", 2, 4096, NULL, 0, offsetof(dm_unet_opts, temb),
      "time-embedding width (even)" },
    DM_OPT_END,
};

static dm_status cnn_init(dm_net *net, const void *opts, char *err)
{
    dm_unet_opts o = *(const dm_unet_opts *)opts;
    o.conditional = false;
    return dm_unet_init_head(net, &o, UNET_HEAD_POOL, err);
}

static void cnn_describe(const dm_net *net, char *buf, size_t size)
{
    const dm_unet *u = net->impl;
    char chans[128], attn[128], classes[32] = "";
    dm_unet_describe_levels(u, chans, sizeof chans, attn, sizeof attn);
    if (net->cfg.n_classes > 0) /* a class embedding: another layout */
        snprintf(classes, sizeof classes, " (%d classes)", net->cfg.n_classes);
    snprintf(buf, size, "cnn %dx%dx%d%s out %d [%s] blocks %lld attn [%s] groups %lld temb %lld", net->cfg.c,
             net->cfg.h, net->cfg.w, classes, net->cfg.out_dim, chans, (long long)u->o.blocks, attn,
             (long long)u->o.groups, (long long)u->o.temb);
}

static const float *cnn_features(const dm_net *net, const dm_net_ws *ws, int *dim)
{
    (void)net;
    const unet_ws *w = ws->impl;
    *dim = w->feat_dim;
    return w->feat;
}

const dm_net_vt dm_net_cnn = {
    .init = cnn_init,
    .free = dm_unet_free_net,
    .init_params = dm_unet_init_params,
    .ws_init = dm_unet_ws_init,
    .ws_free = dm_unet_ws_free,
    .forward = dm_unet_forward_batches,
    .backward = dm_unet_backward,
    .describe = cnn_describe,
    .features = cnn_features,
};
