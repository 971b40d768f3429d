/* datasets.h — the data plug-ins of the registry and their options structs.
 *
 * Each plug-in is a const dm_data_ops whose `info` (name, option table, options size) is what
 * dm_data_registry lists. The options structs are what the spec loader fills from the tables.
 * The gmm plug-in is dm_data_gmm_ops, since dm_data_gmm is the mixture extractor of dataset.h. */
#ifndef DM_DATA_DATASETS_H
#define DM_DATA_DATASETS_H

#include "core/options.h"
#include "data/dataset.h"

typedef struct dm_moons_opts {
    double noise; /* std of the isotropic Gaussian noise added to each point */
} dm_moons_opts;

typedef struct dm_eight_gaussians_opts {
    double radius; /* radius of the circle of centres */
    double std;    /* per-coordinate std of each component */
} dm_eight_gaussians_opts;

typedef struct dm_swissroll_opts {
    double noise; /* std of Gaussian noise, in sklearn units (before scaling) */
    double scale; /* factor applied to the sklearn (x, z) coordinates */
} dm_swissroll_opts;

/* checkerboard has no options (opts_size 0, an empty table). */

typedef struct dm_gmm_opts {
    dm_reals weights; /* (k) >= 0, normalized on use */
    dm_reals means;   /* (k, dim) as k rows */
    dm_reals stds;    /* (k) > 0 */
    dm_reals classes; /* (k) class of each component (integers >= 0), or empty: class = component */
} dm_gmm_opts;

/* Centre k (0..7) of eight_gaussians: radius * (cos, sin)(2 pi k / 8), from an exact table of
 * (cos, sin) at multiples of pi/4 so that the generator and dm_data_gmm agree to the bit. */
void dm_eight_gaussians_centre(const dm_eight_gaussians_opts *o, unsigned k, double c[2]);

extern const dm_data_ops dm_data_moons;
extern const dm_data_ops dm_data_eight_gaussians;
extern const dm_data_ops dm_data_swissroll;
extern const dm_data_ops dm_data_checkerboard;
extern const dm_data_ops dm_data_gmm_ops;

#endif
