/* plot.h — SVG plots, drawn by a writer of our own (docs/report.md says why): lines with markers
 * and error bars, or dots (scatters), on linear, log or categorical axes, with ticks, axis
 * labels, a title, a legend that counts the points each series has outside the view, and a note.
 *
 * The output is one <svg class="plot ..."> element with no XML prolog, so it reads both as a
 * file of its own and inlined in HTML. Its parts carry classes a test can find: title, axis x /
 * axis y (each tick a <g class="tick">), series (one <g> per series, data-label its label),
 * line, pt (markers), dots, err (error bars), legend (one <g class="entry"> per series), note.
 * Output depends only on the input: the same plot gives the same bytes. */
#ifndef DM_IO_PLOT_H
#define DM_IO_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

typedef enum dm_plot_style {
    DM_PLOT_LINES, /* points joined in order, a marker on each; NaN breaks the line */
    DM_PLOT_DOTS   /* dots only (a scatter) */
} dm_plot_style;

typedef struct dm_plot_series {
    const char *label;  /* legend text (NULL or "": no legend entry) */
    const char *color;  /* a CSS colour, or NULL: the palette's next */
    size_t n;
    const double *x, *y; /* n points; a point with a NaN or infinite coordinate is not drawn */
    const double *err;   /* NULL, or n half-widths of vertical error bars (NaN: no bar) */
    size_t max_draw;     /* 0, or draw only the first max_draw points (a scatter's subset; samples
                          * are independent draws): the legend says "max_draw of n drawn" and
                          * still counts all n for "outside the view" */
} dm_plot_series;

typedef struct dm_plot {
    const char *title, *xlabel, *ylabel; /* NULL: none */
    const char *klass;   /* extra classes of the <svg> (after "plot"), or NULL */
    int width, height;   /* of the frame and axes, px, without the legend; 0: 480 x 300 */
    dm_plot_style style;
    int logx, logy;      /* log10 axes: points <= 0 on them are outside the view */
    const char *const *xcats; /* categorical x: n_xcats labels, a point's x is its index */
    size_t n_xcats;
    double view[4];      /* xmin, xmax, ymin, ymax; a NaN bound comes from the data (padded) */
    int equal;           /* one unit as long on both axes (the view grows on one axis to fit) */
    const char *note;    /* one more line under the legend, or NULL */
} dm_plot;

/* A plot with defaults: 480 x 300, lines, linear axes, the view from the data. */
void dm_plot_init(dm_plot *p);

/* Write the plot of ns series to out. Errors: a bad view (min >= max, a log bound <= 0) or
 * categorical x with log x is DM_E_INPUT; a failed write DM_E_IO. */
dm_status dm_plot_svg(FILE *out, const dm_plot *p, const dm_plot_series *s, size_t ns, char *err);

/* Ticks (exposed for tests): at most max ticks of [lo, hi] (lo < hi), linear at 1, 2 or 5
 * times a power of ten, or on log10 axes the decades (every k-th when many; 1, 2, 5 within a
 * decade when the range spans less than about one). Returns the count written to t. */
size_t dm_plot_ticks(double lo, double hi, int log, double *t, size_t max);

/* A tick's label: the shortest of %g-like forms that tells neighbouring ticks step apart. */
void dm_plot_tick_label(double v, double step, int log, char *buf, size_t n);

/* The scatter of 2-D points (first two coordinates of x (n, d)) over a reference set ref (m, d)
 * drawn light, as an SVG file written atomically: a square view that covers the reference set
 * and the middle 98% of the samples on each axis (so a sampler whose points fly off still fills
 * the frame with the bulk of them), the count outside it in the legend, at most max_draw of each
 * set drawn (the first ones: samples are independent draws). */
dm_status dm_plot_scatter_file(const char *path, const char *title, const float *x, size_t n,
                               const char *x_label, const float *ref, size_t m, size_t d,
                               size_t max_draw, char *err);

#endif
