/* image_mixture.c — the `image_mixture` data plug-in: images drawn from a Gaussian mixture around
 * k templates, sum_j (1/k) N(template_j, std^2 I) in dimension c*h*w. The mixture is exact
 * (dm_data_gmm hands it to the analytic denoiser), so samplers and metrics can be tested on
 * image-shaped data against the truth, and a small U-Net learns it in seconds.
 *
 *   data: {type: image_mixture, c: 1, h: 8, w: 8, k: 4, std: 0.2, seed: 0}
 *
 * Template j is shape kind j on a background of -1, its pixels +1 (c = 1) or, with c > 1, a
 * colour per template (channel ch is +1 where bit ch of (j mod (2^c - 1)) + 1 is set, else -1).
 * The kinds, in centred coordinates (a, b) = (x, y) / size - 1/2 of the pixel centres, r the
 * distance from the centre:
 *   0 horizontal bar |b| < 0.15         1 vertical bar |a| < 0.15
 *   2 square max(|a|, |b|) < 0.25       3 ring 0.22 < r < 0.4
 *   4 plus: arms 0.09 wide, 0.4 long    5 an X: the two diagonals, 0.4 long
 *   6 disc r < 0.36                     7 frame 0.25 <= max(|a|, |b|) < 0.42
 *   8 diagonal band |a - b| < 0.2       9 anti-diagonal band |a + b| < 0.2
 *  10 2x2 checker (a < 0) != (b < 0)   11 lower-left triangle b > a
 * Each template is shifted by a whole number of pixels (dy, dx), each in [-J, J] with
 * J = min(h, w) / 8, taken from dm_seed_index(seed, j): the `seed` places the shapes, and whole
 * pixels keep each shape's pixel pattern. Labels are the template index j. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "data/datasets.h"

/* Is the pixel at centred coordinates (a, b) inside shape kind `kind`? */
static int inside(int kind, double a, double b)
{
    const double aa = fabs(a), ab = fabs(b), m = fmax(aa, ab), r = sqrt(a * a + b * b);
    switch (kind) {
    case 0:
        return ab < 0.15;
    case 1:
        return aa < 0.15;
    case 2:
        return m < 0.25;
    case 3:
        return r > 0.22 && r < 0.4;
    case 4:
        return fmin(aa, ab) < 0.09 && m < 0.4;
    case 5:
        return (fabs(a - b) < 0.1 || fabs(a + b) < 0.1) && m < 0.4;
    case 6:
        return r < 0.36;
    case 7:
        return m >= 0.25 && m < 0.42;
    case 8:
        return fabs(a - b) < 0.2;
    case 9:
        return fabs(a + b) < 0.2;
    case 10:
        return (a < 0) != (b < 0);
    default:
        return b > a;
    }
}

void dm_image_mixture_templates(const dm_image_mixture_opts *o, double *mu)
{
    const size_t c = (size_t)o->c, h = (size_t)o->h, w = (size_t)o->w, k = (size_t)o->k;
    const int64_t J = (o->h < o->w ? o->h : o->w) / 8, span = 2 * J + 1;
    const unsigned colours = (1u << c) - 1u;
    for (size_t j = 0; j < k; j++) {
        const uint64_t z = dm_seed_index((uint64_t)o->seed, j);
        const double dy = (double)((int64_t)(z % (uint64_t)span) - J);
        const double dx = (double)((int64_t)((z / (uint64_t)span) % (uint64_t)span) - J);
        const unsigned colour = (unsigned)(j % colours) + 1u;
        double *t = mu + j * c * h * w; /* (c, h, w) */
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                const double a = ((double)x + 0.5 - dx) / (double)w - 0.5;
                const double b = ((double)y + 0.5 - dy) / (double)h - 0.5;
                const int in = inside((int)j, a, b);
                for (size_t ch = 0; ch < c; ch++)
                    t[(ch * h + y) * w + x] = in && ((colour >> ch) & 1u) ? 1.0 : -1.0;
            }
    }
}

/* The table bounds again: generate and dm_data_gmm may be handed options no spec validated. */
static dm_status im_check(const void *opts, char *err)
{
    const dm_image_mixture_opts *o = opts;
    if (o->c < 1 || o->c > 3)
        return dm_err(err, DM_E_INPUT, "data.c = %lld: image_mixture has 1 to 3 channels", (long long)o->c);
    if (o->h < 8 || o->h > 32 || o->w < 8 || o->w > 32)
        return dm_err(err, DM_E_INPUT, "data.%s = %lld: image_mixture images are 8 to 32 pixels a side",
                      o->h < 8 || o->h > 32 ? "h" : "w", (long long)(o->h < 8 || o->h > 32 ? o->h : o->w));
    if (o->k < 1 || o->k > DM_IMAGE_MIXTURE_KINDS)
        return dm_err(err, DM_E_INPUT, "data.k = %lld: image_mixture has 1 to %d templates", (long long)o->k,
                      DM_IMAGE_MIXTURE_KINDS);
    if (!(o->std > 0.0 && isfinite(o->std)))
        return dm_err(err, DM_E_INPUT, "data.std = %g: must be finite and > 0", o->std);
    return DM_OK;
}

static size_t im_dim(const void *opts)
{
    const dm_image_mixture_opts *o = opts;
    return (size_t)(o->c * o->h * o->w);
}

static size_t im_n_classes(const void *opts)
{
    const dm_image_mixture_opts *o = opts;
    return (size_t)o->k;
}

static void im_shape(const void *opts, int *c, int *h, int *w)
{
    const dm_image_mixture_opts *o = opts;
    *c = (int)o->c;
    *h = (int)o->h;
    *w = (int)o->w;
}

/* Draw order per point: the template j = dm_rng_int(k), then c*h*w normals in C order. */
static dm_status im_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng, float *x,
                             int32_t *labels, char *err)
{
    (void)split; /* images are drawn i.i.d.: both splits are the same distribution */
    if (!opts || (n > 0 && !x))
        return dm_err(err, DM_E_INTERNAL, "image_mixture generator called with a NULL argument");
    dm_status st = im_check(opts, err);
    if (st != DM_OK)
        return st;
    const dm_image_mixture_opts *o = opts;
    const size_t k = (size_t)o->k, dim = im_dim(o);
    double *mu = dm_malloc(k * dim * sizeof *mu); /* (k, dim) */
    if (!mu)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu image_mixture templates", k);
    dm_image_mixture_templates(o, mu);
    for (size_t i = 0; i < n; i++) {
        const size_t j = (size_t)dm_rng_int(rng, k);
        for (size_t p = 0; p < dim; p++)
            x[i * dim + p] = (float)(mu[j * dim + p] + o->std * dm_rng_normal(rng));
        if (labels)
            labels[i] = (int32_t)j;
    }
    dm_free(mu);
    return DM_OK;
}

static const dm_param_desc im_params[] = {
    {"c", DM_OPT_INT, "1", 1, 3, NULL, 0, offsetof(dm_image_mixture_opts, c),
     "channels (1: gray; 2 or 3: a colour per template)"},
    {"h", DM_OPT_INT, "8", 8, 32, NULL, 0, offsetof(dm_image_mixture_opts, h), "image height in pixels"},
    {"w", DM_OPT_INT, "8", 8, 32, NULL, 0, offsetof(dm_image_mixture_opts, w), "image width in pixels"},
    {"k", DM_OPT_INT, "4", 1, DM_IMAGE_MIXTURE_KINDS, NULL, 0, offsetof(dm_image_mixture_opts, k),
     "number of templates (equal weights): bar, bar, square, ring, plus, X, disc, frame, diagonals, "
     "checker, triangle, in that order"},
    {"std", DM_OPT_REAL, "0.2", 1e-6, 10.0, NULL, 0, offsetof(dm_image_mixture_opts, std),
     "per-pixel standard deviation around a template"},
    {"seed", DM_OPT_INT, "0", 0, 4294967295.0, NULL, 0, offsetof(dm_image_mixture_opts, seed),
     "places the templates: each shape is shifted by up to min(h, w)/8 pixels, from this seed"},
    DM_OPT_END,
};

const dm_data_ops dm_data_image_mixture = {
    .info = {"image_mixture",
             "c x h x w images: equal Gaussian mixture N(template_j, std^2 I) around k shapes in [-1, 1]; "
             "label = template j",
             im_params, sizeof(dm_image_mixture_opts)},
    .dim = im_dim,
    .n_classes = im_n_classes,
    .check = im_check,
    .generate = im_generate,
    .shape = im_shape,
};
