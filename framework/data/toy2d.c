/* toy2d.c — the four classic 2-D toy distributions as data plug-ins.
 *
 * Every generator draws points i.i.d. (so a held-out set is independent of a training set and
 * any n is valid), per point in a fixed order documented at each generator, from the given
 * stream only. Noise normals are drawn even when the noise option is 0, so the stream is consumed
 * the same way for every option value: two datasets that differ only in noise level are paired
 * draw by draw. Coordinates are computed in double and rounded to float once, at the end. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "data/datasets.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static size_t dim_2d(const void *opts)
{
    (void)opts;
    return 2;
}

static size_t one_class(const void *opts)
{
    (void)opts;
    return 1;
}

static size_t eight_classes(const void *opts)
{
    (void)opts;
    return 8;
}

static size_t two_classes(const void *opts)
{
    (void)opts;
    return 2;
}

/* The tables' bounds cover every constraint of the toy datasets. */
static dm_status check_none(const void *opts, char *err)
{
    (void)opts;
    (void)err;
    return DM_OK;
}

/* opts may be NULL only for a plug-in without options. */
static dm_status check_args(const void *opts, bool needs_opts, size_t n, const float *x, char *err)
{
    if (n > 0 && !x)
        return dm_err(err, DM_E_INTERNAL, "data generator called with a NULL output buffer");
    if (needs_opts && !opts)
        return dm_err(err, DM_E_INTERNAL, "data generator called with a NULL options struct");
    return DM_OK;
}

/* ---- moons -------------------------------------------------------------------------------- */

/* Two interleaving half circles as sklearn.datasets.make_moons: moon 0 is (cos t, sin t), moon 1
 * is (1 - cos t, 0.5 - sin t), t in [0, pi], plus N(0, noise^2 I). sklearn places n/2 points per
 * moon on an even grid of t; we draw the moon and t uniformly instead (the distribution that grid
 * discretizes), so any n and any batch is an i.i.d. sample.
 * Draw order per point: moon = dm_rng_int(2), t = pi * uniform, then two normals (x, y). */
static dm_status moons_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng, float *x,
                                int32_t *labels, char *err)
{
    (void)split; /* points are drawn i.i.d.: both splits are the same distribution */
    dm_status st = check_args(opts, true, n, x, err);
    if (st != DM_OK)
        return st;
    const dm_moons_opts *o = opts;
    for (size_t i = 0; i < n; i++) {
        unsigned long moon = dm_rng_int(rng, 2);
        double t = M_PI * dm_rng_uniform(rng);
        double e0 = dm_rng_normal(rng), e1 = dm_rng_normal(rng);
        double px = moon == 0 ? cos(t) : 1.0 - cos(t);
        double py = moon == 0 ? sin(t) : 0.5 - sin(t);
        x[2 * i] = (float)(px + o->noise * e0);
        x[2 * i + 1] = (float)(py + o->noise * e1);
        if (labels)
            labels[i] = (int32_t)moon;
    }
    return DM_OK;
}

static const dm_param_desc moons_params[] = {
    {"noise", DM_OPT_REAL, "0.05", 0.0, 10.0, NULL, 0, offsetof(dm_moons_opts, noise),
     "std of the Gaussian noise added to each coordinate (sklearn make_moons `noise`)"},
    DM_OPT_END,
};

const dm_data_ops dm_data_moons = {
    .info = {"moons", "two interleaving half circles (sklearn make_moons); label = moon (0, 1)", moons_params,
             sizeof(dm_moons_opts)},
    .dim = dim_2d,
    .n_classes = two_classes,
    .check = check_none,
    .generate = moons_generate,
};

/* ---- eight_gaussians ------------------------------------------------------------------------ */

void dm_eight_gaussians_centre(const dm_eight_gaussians_opts *o, unsigned k, double c[2])
{
    /* (cos, sin)(2 pi k / 8) exactly: cos(pi/2) computed by libm is 6e-17, not 0. */
    static const double cs[8][2] = {
        {1.0, 0.0},  {M_SQRT1_2, M_SQRT1_2},   {0.0, 1.0},  {-M_SQRT1_2, M_SQRT1_2},
        {-1.0, 0.0}, {-M_SQRT1_2, -M_SQRT1_2}, {0.0, -1.0}, {M_SQRT1_2, -M_SQRT1_2},
    };
    c[0] = o->radius * cs[k % 8][0];
    c[1] = o->radius * cs[k % 8][1];
}

/* Eight equally weighted isotropic Gaussians with centres on a circle, as make_data of
 * /work/shared/peer/peer_toy_mlp.py (radius 2, std 0.1).
 * Draw order per point: component = dm_rng_int(8), then two normals (x, y). */
static dm_status eight_gaussians_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng,
                                          float *x, int32_t *labels, char *err)
{
    (void)split; /* points are drawn i.i.d.: both splits are the same distribution */
    dm_status st = check_args(opts, true, n, x, err);
    if (st != DM_OK)
        return st;
    const dm_eight_gaussians_opts *o = opts;
    for (size_t i = 0; i < n; i++) {
        unsigned k = (unsigned)dm_rng_int(rng, 8);
        double e0 = dm_rng_normal(rng), e1 = dm_rng_normal(rng);
        double c[2];
        dm_eight_gaussians_centre(o, k, c);
        x[2 * i] = (float)(c[0] + o->std * e0);
        x[2 * i + 1] = (float)(c[1] + o->std * e1);
        if (labels)
            labels[i] = (int32_t)k;
    }
    return DM_OK;
}

static const dm_param_desc eight_gaussians_params[] = {
    {"radius", DM_OPT_REAL, "2.0", 0.0, 1e4, NULL, 0, offsetof(dm_eight_gaussians_opts, radius),
     "radius of the circle on which the 8 centres lie"},
    {"std", DM_OPT_REAL, "0.1", 1e-6, 1e4, NULL, 0, offsetof(dm_eight_gaussians_opts, std),
     "standard deviation of each component (per coordinate)"},
    DM_OPT_END,
};

const dm_data_ops dm_data_eight_gaussians = {
    .info = {"eight_gaussians",
             "8 equal Gaussians centred at radius*(cos, sin)(2 pi k/8); label = component k",
             eight_gaussians_params, sizeof(dm_eight_gaussians_opts)},
    .dim = dim_2d,
    .n_classes = eight_classes,
    .check = check_none,
    .generate = eight_gaussians_generate,
};

/* ---- swissroll ------------------------------------------------------------------------------ */

/* sklearn.datasets.make_swiss_roll seen from the side: t = 1.5 pi (1 + 2u), point (t cos t,
 * t sin t) plus N(0, noise^2 I) — sklearn's x and z coordinates, its noise in its units — then
 * multiplied by `scale` (0.1 maps the roll, |coordinate| <= 4.5 pi, into about [-1.41, 1.41]).
 * sklearn's height coordinate y = 21u' is not drawn.
 * Draw order per point: u = uniform, then two normals (x, z). */
static dm_status swissroll_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng,
                                    float *x, int32_t *labels, char *err)
{
    (void)split; /* points are drawn i.i.d.: both splits are the same distribution */
    dm_status st = check_args(opts, true, n, x, err);
    if (st != DM_OK)
        return st;
    const dm_swissroll_opts *o = opts;
    for (size_t i = 0; i < n; i++) {
        double t = 1.5 * M_PI * (1.0 + 2.0 * dm_rng_uniform(rng));
        double e0 = dm_rng_normal(rng), e1 = dm_rng_normal(rng);
        x[2 * i] = (float)(o->scale * (t * cos(t) + o->noise * e0));
        x[2 * i + 1] = (float)(o->scale * (t * sin(t) + o->noise * e1));
        if (labels)
            labels[i] = 0;
    }
    return DM_OK;
}

static const dm_param_desc swissroll_params[] = {
    {"noise", DM_OPT_REAL, "0.0", 0.0, 100.0, NULL, 0, offsetof(dm_swissroll_opts, noise),
     "std of the Gaussian noise in sklearn units, added before scaling (sklearn default 0)"},
    {"scale", DM_OPT_REAL, "0.1", 1e-6, 1e3, NULL, 0, offsetof(dm_swissroll_opts, scale),
     "factor on the sklearn (x, z) coordinates; 0.1 gives a roll within [-1.42, 1.42]^2"},
    DM_OPT_END,
};

const dm_data_ops dm_data_swissroll = {
    .info = {"swissroll", "2-D swiss roll: sklearn make_swiss_roll's (x, z) times scale; label 0",
             swissroll_params, sizeof(dm_swissroll_opts)},
    .dim = dim_2d,
    .n_classes = one_class,
    .check = check_none,
    .generate = swissroll_generate,
};

/* ---- checkerboard --------------------------------------------------------------------------- */

/* The checkerboard of the FFJORD toy data (Grathwohl et al. 2019, toy_data.py): [-4, 4]^2 cut
 * into a 4x4 grid of 2x2 squares, uniform on the 8 squares (column c, row r), c, r in 0..3,
 * with c + r even — the bottom-left square [-4, -2]^2 is filled. Square k = 0..7 has column
 * c = k / 2 and row r = 2 (k % 2) + c % 2; the label is k.
 * Draw order per point: k = dm_rng_int(8), then u, v uniform (offsets within the square). */
static dm_status checkerboard_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng,
                                       float *x, int32_t *labels, char *err)
{
    (void)split; /* points are drawn i.i.d.: both splits are the same distribution */
    dm_status st = check_args(opts, false, n, x, err);
    if (st != DM_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        unsigned k = (unsigned)dm_rng_int(rng, 8);
        double u = dm_rng_uniform(rng), v = dm_rng_uniform(rng);
        unsigned c = k / 2, r = 2 * (k % 2) + c % 2;
        x[2 * i] = (float)(2.0 * (c + u) - 4.0);
        x[2 * i + 1] = (float)(2.0 * (r + v) - 4.0);
        if (labels)
            labels[i] = (int32_t)k;
    }
    return DM_OK;
}

static const dm_param_desc checkerboard_params[] = {DM_OPT_END};

const dm_data_ops dm_data_checkerboard = {
    .info = {"checkerboard",
             "uniform on the 8 filled squares of a 4x4 checkerboard on [-4, 4]^2; label = square",
             checkerboard_params, 0},
    .dim = dim_2d,
    .n_classes = eight_classes,
    .check = check_none,
    .generate = checkerboard_generate,
};
