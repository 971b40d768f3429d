/* plot_scatter.c — the scatter picture of a 2-D sample set over the reference set (plot.h),
 * written atomically like every file of a run folder. */
#include "io/plot.h"

#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "io/atomic.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the finite values among v[0..n) (sorted in place; NaN and infinities moved
 * to the end); NaN when none is finite. */
static double quantile(double *v, size_t n, double q)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            v[m++] = v[i];
    if (!m)
        return NAN;
    qsort(v, m, sizeof *v, cmp_double);
    return v[(size_t)floor(q * (double)(m - 1) + 0.5)];
}

/* Grow [lo, hi] to cover the finite coordinate c of the first n rows of x (stride d). */
static void cover(const float *x, size_t n, size_t d, size_t c, double *lo, double *hi)
{
    for (size_t i = 0; i < n; i++) {
        const double v = x[i * d + c];
        if (isfinite(v)) {
            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
        }
    }
}

dm_status dm_plot_scatter_file(const char *path, const char *title, const float *x, size_t n,
                               const char *x_label, const float *ref, size_t m, size_t d,
                               size_t max_draw, char *err)
{
    dm_status st = DM_OK;
    double *buf = dm_malloc(sizeof(double) * (3 * n + 2 * m + 1));
    char *svg = NULL;
    size_t svg_n = 0;
    FILE *mem = NULL;
    if (!buf)
        return dm_err(err, DM_E_NOMEM, "out of memory for the scatter '%s'", path);
    double *sx = buf, *sy = sx + n, *rx = sy + n, *ry = rx + m, *tmp = ry + m;
    for (size_t i = 0; i < n; i++) {
        sx[i] = x[i * d];
        sy[i] = x[i * d + 1];
    }
    for (size_t i = 0; i < m; i++) {
        rx[i] = ref[i * d];
        ry[i] = ref[i * d + 1];
    }

    /* The view: the reference set's box and the middle 98% of the samples, padded 8%. */
    dm_plot p;
    dm_plot_init(&p);
    for (size_t c = 0; c < 2; c++) {
        double lo = INFINITY, hi = -INFINITY;
        cover(ref, m, d, c, &lo, &hi);
        for (size_t i = 0; i < n; i++)
            tmp[i] = x[i * d + c];
        const double q0 = quantile(tmp, n, 0.01), q1 = quantile(tmp, n, 0.99);
        if (isfinite(q0)) {
            lo = fmin(lo, q0);
            hi = fmax(hi, q1);
        }
        if (!isfinite(lo)) { /* neither set has a finite point */
            lo = -1;
            hi = 1;
        }
        const double pad = hi > lo ? 0.08 * (hi - lo) : 1;
        p.view[2 * c] = lo - pad;
        p.view[2 * c + 1] = hi + pad;
    }
    p.title = title;
    p.xlabel = "x[0]";
    p.ylabel = "x[1]";
    p.klass = "scatter";
    p.width = 440;
    p.height = 440;
    p.style = DM_PLOT_DOTS;
    p.equal = 1;
    const dm_plot_series s[2] = {
        { .label = "reference", .color = "#b8b8b8", .n = m, .x = rx, .y = ry, .max_draw = max_draw },
        { .label = x_label, .color = "#1f5fa8", .n = n, .x = sx, .y = sy, .max_draw = max_draw },
    };
    if (!(mem = open_memstream(&svg, &svg_n))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the scatter '%s'", path);
        goto out;
    }
    st = dm_plot_svg(mem, &p, s, 2, err);
    if (fclose(mem) && !st)
        st = dm_err(err, DM_E_NOMEM, "out of memory for the scatter '%s'", path);
    if (!st)
        st = dm_write_file_atomic(path, svg, svg_n, err);
out:
    free(svg); /* open_memstream's buffer comes from malloc */
    dm_free(buf);
    return st;
}
