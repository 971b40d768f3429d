/* gmm.c — the `gmm` data plug-in (an isotropic Gaussian mixture written out in the spec) and
 * dm_data_gmm, which hands the exact mixture of a dataset (gmm, eight_gaussians, image_mixture)
 * to the analytic denoiser.
 *
 *   data:
 *     type: gmm
 *     weights: [0.5, 0.5]               # k values >= 0, normalized on use
 *     means: [[-1.0, 0.0], [1.0, 0.0]]  # k rows of dim values; dim = values per row
 *     stds: [0.2, 0.2]                  # k values > 0: component j is N(means[j], stds[j]^2 I)
 *     classes: [0, 1]                   # optional: the class of each component (default: j)
 *
 * The label of a point is its component's class: with `classes`, several components can make one
 * class (a class-conditional distribution that is itself a mixture). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "data/datasets.h"

/* Messages name the keys as the spec writes them: the dataset lives in the `data` section. */
static dm_status gmm_check(const void *opts, char *err)
{
    const dm_gmm_opts *o = opts;
    const dm_reals *w = &o->weights, *m = &o->means, *s = &o->stds;
    if (w->n == 0)
        return dm_err(err, DM_E_INPUT, "data.weights: needs at least one value");
    if (w->rows != 0)
        return dm_err(err, DM_E_INPUT, "data.weights: must be a flat list of numbers, not a list of rows");
    if (m->rows == 0)
        return dm_err(err, DM_E_INPUT,
                      "data.means: must be a list of rows, one [x, y, ...] per component "
                      "(e.g. [[-1.0, 0.0], [1.0, 0.0]]), not a flat list");
    if (m->n == 0 || m->n % m->rows != 0)
        return dm_err(err, DM_E_INPUT, "data.means: %zu values do not make %zu equal rows", m->n, m->rows);
    if (m->rows != w->n)
        return dm_err(err, DM_E_INPUT, "data.means: %zu rows but data.weights has %zu values", m->rows, w->n);
    if (s->rows != 0)
        return dm_err(err, DM_E_INPUT, "data.stds: must be a flat list of numbers, not a list of rows");
    if (s->n != w->n)
        return dm_err(err, DM_E_INPUT, "data.stds: %zu values but data.weights has %zu values", s->n, w->n);
    double total = 0.0;
    for (size_t j = 0; j < w->n; j++) {
        if (!(w->v[j] >= 0.0 && isfinite(w->v[j])))
            return dm_err(err, DM_E_INPUT, "data.weights[%zu] = %g: weights must be finite and >= 0", j,
                          w->v[j]);
        total += w->v[j];
        if (!(s->v[j] > 0.0 && isfinite(s->v[j])))
            return dm_err(err, DM_E_INPUT, "data.stds[%zu] = %g: standard deviations must be finite and > 0",
                          j, s->v[j]);
    }
    if (!(total > 0.0 && isfinite(total)))
        return dm_err(err, DM_E_INPUT, "data.weights: the weights sum to %g; need a finite positive sum",
                      total);
    for (size_t i = 0; i < m->n; i++)
        if (!isfinite(m->v[i]))
            return dm_err(err, DM_E_INPUT, "data.means: row %zu holds a non-finite value",
                          i / (m->n / m->rows));
    const dm_reals *c = &o->classes;
    if (c->n == 0)
        return DM_OK;
    if (c->rows != 0 || c->n != w->n)
        return dm_err(err, DM_E_INPUT, "data.classes: needs a flat list of %zu class numbers, one per component",
                      w->n);
    size_t seen = 0;
    for (size_t j = 0; j < c->n; j++) {
        if (!(c->v[j] >= 0.0 && c->v[j] < 256.0 && c->v[j] == floor(c->v[j])))
            return dm_err(err, DM_E_INPUT, "data.classes[%zu] = %g: classes are integers in [0, 255]", j, c->v[j]);
        if ((size_t)c->v[j] + 1 > seen)
            seen = (size_t)c->v[j] + 1;
    }
    /* Every class up to the largest has a component: labels are 0..n_classes-1 without gaps. */
    for (size_t y = 0; y < seen; y++) {
        size_t j = 0;
        while (j < c->n && (size_t)c->v[j] != y)
            j++;
        if (j == c->n)
            return dm_err(err, DM_E_INPUT, "data.classes: class %zu has no component (classes must be 0..%zu "
                          "without gaps)", y, seen - 1);
    }
    return DM_OK;
}

/* The class of component j. */
static int32_t gmm_class(const dm_gmm_opts *o, size_t j)
{
    return o->classes.n ? (int32_t)o->classes.v[j] : (int32_t)j;
}

static size_t gmm_dim(const void *opts)
{
    const dm_gmm_opts *o = opts;
    return o->means.rows ? o->means.n / o->means.rows : 0;
}

static size_t gmm_n_classes(const void *opts)
{
    const dm_gmm_opts *o = opts;
    size_t n = 0;
    for (size_t j = 0; j < o->weights.n; j++)
        if ((size_t)gmm_class(o, j) + 1 > n)
            n = (size_t)gmm_class(o, j) + 1;
    return n ? n : 1;
}

/* Component of the uniform u in [0, 1): the first j with u * sum(w) < w_0 + ... + w_j (summed
 * in index order), which never picks a zero-weight component; if rounding leaves u beyond the
 * last partial sum, the last component of positive weight. */
static size_t gmm_pick(const double *w, size_t k, double total, double u)
{
    double target = u * total, c = 0.0;
    size_t last = 0;
    for (size_t j = 0; j < k; j++) {
        if (w[j] > 0.0)
            last = j;
        c += w[j];
        if (target < c)
            return j;
    }
    return last;
}

/* Draw order per point: one uniform (the component, by inverse CDF), then dim normals. */
static dm_status gmm_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng, float *x,
                              int32_t *labels, char *err)
{
    (void)split; /* points are drawn i.i.d.: both splits are the same distribution */
    if (!opts || (n > 0 && !x))
        return dm_err(err, DM_E_INTERNAL, "gmm generator called with a NULL argument");
    dm_status st = gmm_check(opts, err);
    if (st != DM_OK)
        return st;
    const dm_gmm_opts *o = opts;
    size_t k = o->weights.n, dim = gmm_dim(opts);
    double total = 0.0;
    for (size_t j = 0; j < k; j++)
        total += o->weights.v[j];
    for (size_t i = 0; i < n; i++) {
        size_t j = gmm_pick(o->weights.v, k, total, dm_rng_uniform(rng));
        const double *mu = o->means.v + j * dim; /* (dim) */
        for (size_t c = 0; c < dim; c++)
            x[i * dim + c] = (float)(mu[c] + o->stds.v[j] * dm_rng_normal(rng));
        if (labels)
            labels[i] = gmm_class(o, j);
    }
    return DM_OK;
}

static const dm_param_desc gmm_params[] = {
    {"weights", DM_OPT_REALS, "[0.5, 0.5]", 0.0, 1e9, NULL, 0, offsetof(dm_gmm_opts, weights),
     "mixture weights, one per component (>= 0, normalized to sum 1)"},
    {"means", DM_OPT_REALS, "[[-1.0, 0.0], [1.0, 0.0]]", -1e6, 1e6, NULL, 0, offsetof(dm_gmm_opts, means),
     "component means, one row of dim values per component"},
    {"stds", DM_OPT_REALS, "[0.2, 0.2]", 1e-6, 1e6, NULL, 0, offsetof(dm_gmm_opts, stds),
     "component standard deviations (isotropic), one per component"},
    {"classes", DM_OPT_REALS, "[]", 0.0, 255.0, NULL, 0, offsetof(dm_gmm_opts, classes),
     "class of each component (integers 0..C-1, several components may share one); empty: class = component"},
    DM_OPT_END,
};

const dm_data_ops dm_data_gmm_ops = {
    .info = {"gmm",
             "isotropic Gaussian mixture given by weights, means (rows) and stds; "
             "label = the component's class",
             gmm_params, sizeof(dm_gmm_opts)},
    .dim = gmm_dim,
    .n_classes = gmm_n_classes,
    .check = gmm_check,
    .generate = gmm_generate,
};

/* ---- the mixture of a dataset --------------------------------------------------------------- */

static dm_status gmm_alloc(dm_gmm *g, size_t k, size_t dim, char *err)
{
    g->k = k;
    g->dim = dim;
    g->w = dm_malloc(k * sizeof *g->w);
    g->mu = dm_malloc(k * dim * sizeof *g->mu);
    g->s = dm_malloc(k * sizeof *g->s);
    g->cls = dm_malloc(k * sizeof *g->cls);
    g->n_classes = k;
    if (!g->w || !g->mu || !g->s || !g->cls) {
        dm_gmm_free(g);
        return dm_err(err, DM_E_NOMEM, "out of memory for a %zu-component mixture", k);
    }
    return DM_OK;
}

dm_status dm_data_gmm(const dm_data_ops *ops, const void *opts, dm_gmm *out, char *err)
{
    dm_status st = DM_OK;
    memset(out, 0, sizeof *out);
    const char *name = ops ? ops->info.name : "(null)";
    if (ops && !opts) {
        st = dm_err(err, DM_E_INTERNAL, "dm_data_gmm: NULL options for dataset '%s'", name);
    } else if (ops && strcmp(name, "gmm") == 0) {
        const dm_gmm_opts *o = opts;
        if ((st = gmm_check(o, err)) != DM_OK)
            goto out;
        size_t k = o->weights.n, dim = gmm_dim(o);
        if ((st = gmm_alloc(out, k, dim, err)) != DM_OK)
            goto out;
        double total = 0.0;
        for (size_t j = 0; j < k; j++)
            total += o->weights.v[j];
        for (size_t j = 0; j < k; j++) {
            out->w[j] = o->weights.v[j] / total;
            out->s[j] = o->stds.v[j];
            out->cls[j] = gmm_class(o, j);
        }
        out->n_classes = gmm_n_classes(o);
        memcpy(out->mu, o->means.v, k * dim * sizeof *out->mu);
    } else if (ops && strcmp(name, "eight_gaussians") == 0) {
        const dm_eight_gaussians_opts *o = opts;
        if ((st = gmm_alloc(out, 8, 2, err)) != DM_OK)
            goto out;
        for (unsigned j = 0; j < 8; j++) {
            out->w[j] = 0.125;
            out->s[j] = o->std;
            out->cls[j] = (int32_t)j;
            dm_eight_gaussians_centre(o, j, out->mu + 2 * j);
        }
    } else if (ops && strcmp(name, "image_mixture") == 0) {
        const dm_image_mixture_opts *o = opts;
        if ((st = ops->check(o, err)) != DM_OK)
            goto out;
        if ((st = gmm_alloc(out, (size_t)o->k, ops->dim(o), err)) != DM_OK)
            goto out;
        for (size_t j = 0; j < out->k; j++) {
            out->w[j] = 1.0 / (double)out->k;
            out->s[j] = o->std;
            out->cls[j] = (int32_t)j;
        }
        dm_image_mixture_templates(o, out->mu);
    } else {
        st = dm_err(err, DM_E_INPUT, "dataset '%s' is not a Gaussian mixture (gmm, eight_gaussians and "
                    "image_mixture are)", name);
    }
out:
    return st;
}

void dm_gmm_free(dm_gmm *g)
{
    if (!g)
        return;
    dm_free(g->w);
    dm_free(g->mu);
    dm_free(g->s);
    dm_free(g->cls);
    memset(g, 0, sizeof *g);
}
