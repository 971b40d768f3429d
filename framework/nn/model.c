#include "nn/model.h"

#include "nn/cnn.h"
#include "nn/unet.h"

#include <stddef.h>

static int mlp_conditional(const void *opts) { return ((const dm_mlp_opts *)opts)->conditional; }
static int unet_conditional(const void *opts) { return ((const dm_unet_opts *)opts)->conditional; }
static int cnn_conditional(const void *opts) { (void)opts; return 0; }
static int analytic_conditional(const void *opts) { return ((const dm_analytic_opts *)opts)->conditional; }

static const dm_param_desc mlp_params[] = {
    { "width", DM_OPT_INT, "256", 1, 65536, NULL, 0, offsetof(dm_mlp_opts, width), "hidden units per layer" },
    { "depth", DM_OPT_INT, "3", 1, 64, NULL, 0, offsetof(dm_mlp_opts, depth), "hidden Linear+SiLU layers" },
    { "nfreq", DM_OPT_INT, "32", 1, 1024, NULL, 0, offsetof(dm_mlp_opts, nfreq),
      "sinusoidal time-embedding frequencies (embedding size 2*nfreq)" },
    { "conditional", DM_OPT_BOOL, "false", 0, 0, NULL, 0, offsetof(dm_mlp_opts, conditional),
      "class-conditional: the one-hot label (C classes + the null class) joins the input" },
    DM_OPT_END,
};

static const dm_param_desc analytic_params[] = {
    { "conditional", DM_OPT_BOOL, "false", 0, 0, NULL, 0, offsetof(dm_analytic_opts, conditional),
      "sample each point's class: E[x0 | x_t, y] over the components of class y" },
    DM_OPT_END,
};

const dm_model_ops dm_model_mlp = {
    .info = { "mlp", "the toy MLP of shared/peer/peer_toy_mlp.py: [x, time embedding] -> Linear+SiLU x depth -> Linear",
              mlp_params, sizeof(dm_mlp_opts) },
    .net = &dm_net_mlp,
    .conditional = mlp_conditional,
};

const dm_model_ops dm_model_analytic = {
    .info = { "analytic", "no network: the exact E[x0 | x_t] of the dataset's Gaussian mixture (gmm, eight_gaussians, image_mixture)",
              analytic_params, sizeof(dm_analytic_opts) },
    .analytic = 1,
    .conditional = analytic_conditional,
};

const dm_model_ops dm_model_unet = {
    .info = { "unet", "a U-Net for images (nn/unet.h); its defaults are the peer shared/peer/peer_fmnist_unet.py",
              dm_unet_params, sizeof(dm_unet_opts) },
    .net = &dm_net_unet,
    .conditional = unet_conditional,
};

const dm_model_ops dm_model_cnn = {
    .info = { "cnn", "a CNN classifier and feature network for images (nn/cnn.h): the U-Net's down half, pooled, Linear",
              dm_cnn_params, sizeof(dm_unet_opts) },
    .net = &dm_net_cnn,
    .conditional = cnn_conditional,
};

const dm_plugin *const dm_model_registry[] = { &dm_model_mlp.info, &dm_model_unet.info, &dm_model_cnn.info,
                                               &dm_model_analytic.info, NULL };
