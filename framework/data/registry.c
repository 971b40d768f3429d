/* registry.c — the data plug-ins the spec's `data.type` can name. Adding a dataset is one new
 * file and one line here. */
#include "data/datasets.h"

/* clang-format off */
const dm_plugin *const dm_data_registry[] = {
    &dm_data_moons.info,
    &dm_data_eight_gaussians.info,
    &dm_data_swissroll.info,
    &dm_data_checkerboard.info,
    &dm_data_gmm_ops.info,
    &dm_data_image_mixture.info,
    &dm_data_fashion_mnist.info,
    NULL,
};
/* clang-format on */
