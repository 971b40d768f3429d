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

typedef struct dm_image_mixture_opts {
    int64_t c, h, w; /* item shape (C, H, W) */
    int64_t k;       /* number of templates (components), 1..DM_IMAGE_MIXTURE_KINDS */
    double std;      /* per-pixel std around a template */
    int64_t seed;    /* places the templates (each shape's offset from the centre) */
} dm_image_mixture_opts;

/* The number of template shapes image_mixture knows (k <= this). */
#define DM_IMAGE_MIXTURE_KINDS 12

/* The k templates (k, c*h*w) of image_mixture, values in {-1, 1} (c = 1) or a colour per template
 * with channels in {-1, 1} (c > 1): what its generator draws around and dm_data_gmm's means. */
void dm_image_mixture_templates(const dm_image_mixture_opts *o, double *mu);

typedef struct dm_fashion_mnist_opts {
    char dir[DM_OPT_STR_MAX]; /* folder of the four IDX .gz files */
    int64_t pad;              /* 0: 28x28; 2: 32x32, padded with the background -1 */
    dm_reals classes;         /* garment labels to keep (0..9), or empty: all ten */
} dm_fashion_mnist_opts;

/* Centre k (0..7) of eight_gaussians: radius * (cos, sin)(2 pi k / 8), from an exact table of
 * (cos, sin) at multiples of pi/4 so that the generator and dm_data_gmm agree to the bit. */
void dm_eight_gaussians_centre(const dm_eight_gaussians_opts *o, unsigned k, double c[2]);

extern const dm_data_ops dm_data_moons;
extern const dm_data_ops dm_data_eight_gaussians;
extern const dm_data_ops dm_data_swissroll;
extern const dm_data_ops dm_data_checkerboard;
extern const dm_data_ops dm_data_gmm_ops;
extern const dm_data_ops dm_data_image_mixture;
extern const dm_data_ops dm_data_fashion_mnist;

#endif
