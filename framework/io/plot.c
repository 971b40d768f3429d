/* plot.c — the SVG plot writer (plot.h): view, ticks, frame, series, legend. */
#include "io/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/xml.h"

#define MAX_TICKS 12

static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };
#define N_PALETTE (sizeof palette / sizeof palette[0])

void dm_plot_init(dm_plot *p)
{
    memset(p, 0, sizeof *p);
    p->width = 480;
    p->height = 300;
    p->style = DM_PLOT_LINES;
    for (int i = 0; i < 4; i++)
        p->view[i] = NAN;
}

/* ---------------------------------------------------------------- ticks ---- */

static double nice_step(double span, int want)
{
    const double raw = span / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

size_t dm_plot_ticks(double lo, double hi, int log, double *t, size_t max)
{
    size_t n = 0;
    if (!(lo < hi) || max == 0 || !isfinite(lo) || !isfinite(hi) || !isfinite(hi - lo) || (log && lo <= 0))
        return 0;
    if (!log) {
        const double step = nice_step(hi - lo, 5);
        /* a step below the values' resolution would repeat one tick */
        if (!(step > 0) || !isfinite(step) || fmax(fabs(lo), fabs(hi)) / step > 1e15)
            return 0;
        for (double k = ceil(lo / step - 1e-9); n < max && k * step <= hi + step * 1e-9; k += 1)
            t[n++] = k * step == 0 ? 0 : k * step; /* no "-0" */
        return n;
    }
    const double a = log10(lo), b = log10(hi);
    if (b - a >= 0.9) { /* decades, every k-th when there are many */
        const double k = ceil((floor(b) - ceil(a - 1e-9) + 1) / (double)(max < 8 ? max : 8));
        const double first = ceil((a - 1e-9) / k) * k;
        for (double e = first; n < max && e <= b + 1e-9; e += k)
            t[n++] = pow(10, e);
        if (n >= 2)
            return n;
        n = 0;
    }
    /* Within about a decade: 1, 2, 5 (or every digit) times the powers of ten in range. */
    static const double m125[] = { 1, 2, 5 }, m19[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    for (int pass = 0; pass < 2; pass++) {
        const double *m = pass ? m19 : m125;
        const size_t nm = pass ? 9 : 3;
        n = 0;
        for (double e = floor(a); e <= ceil(b) && n < max; e += 1)
            for (size_t i = 0; i < nm && n < max; i++) {
                const double v = m[i] * pow(10, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                    t[n++] = v;
            }
        if (n >= 3)
            break;
    }
    return n;
}

void dm_plot_tick_label(double v, double step, int log, char *buf, size_t n)
{
    if (!(step > 0) || !isfinite(step))
        step = fabs(v) > 0 ? fabs(v) : 1;
    if (v == 0) {
        snprintf(buf, n, "0");
        return;
    }
    if (log) {
        const double e = log10(fabs(v));
        if (fabs(e - round(e)) < 1e-9 && (e > 4.5 || e < -3.5))
            snprintf(buf, n, "%s1e%d", v < 0 ? "-" : "", (int)round(e));
        else
            snprintf(buf, n, "%.6g", v);
        return;
    }
    const double big = fmax(fabs(v), step);
    if (big >= 1e5 || big < 1e-3) { /* %g with as many digits as the step needs */
        const int digits = (int)fmax(0, floor(log10(fabs(v))) - floor(log10(step) + 1e-9));
        snprintf(buf, n, "%.*g", digits > 6 ? 7 : digits + 1, v);
        return;
    }
    const int dec = (int)fmax(0, -floor(log10(step) + 1e-9));
    snprintf(buf, n, "%.*f", dec > 9 ? 9 : dec, v);
}

/* -------------------------------------------------------------- drawing ---- */

typedef struct frame {
    double x0, y0, w, h;         /* the plot area, px */
    double vx0, vx1, vy0, vy1;   /* the view, in axis units (log10 of values on log axes) */
    int logx, logy;
} frame;

static int in_view(const frame *f, double x, double y, double *px, double *py)
{
    if (!isfinite(x) || !isfinite(y) || (f->logx && x <= 0) || (f->logy && y <= 0))
        return 0;
    const double u = f->logx ? log10(x) : x, v = f->logy ? log10(y) : y;
    const double tol = 1e-9 * fmax(f->vx1 - f->vx0, f->vy1 - f->vy0);
    if (u < f->vx0 - tol || u > f->vx1 + tol || v < f->vy0 - tol || v > f->vy1 + tol)
        return 0;
    *px = f->x0 + (u - f->vx0) / (f->vx1 - f->vx0) * f->w;
    *py = f->y0 + f->h - (v - f->vy0) / (f->vy1 - f->vy0) * f->h;
    return 1;
}

/* The pixel row of y on the frame's y axis, clamped to the frame (error bars). */
static double py_clamped(const frame *f, double y)
{
    double v;
    if (f->logy)
        v = y > 0 ? log10(y) : -INFINITY;
    else
        v = y;
    if (isnan(v))
        return NAN;
    v = fmin(fmax(v, f->vy0), f->vy1);
    return f->y0 + f->h - (v - f->vy0) / (f->vy1 - f->vy0) * f->h;
}

/* The pixel column of a value inside the x view (ticks). */
static double px_of(const frame *f, double x)
{
    const double u = f->logx ? log10(x) : x;
    return f->x0 + (u - f->vx0) / (f->vx1 - f->vx0) * f->w;
}

/* The data's range on one axis (log10 of the positive values on a log axis), with the error
 * bars on y. Returns 0 when no point counts. */
static int data_range(const dm_plot_series *s, size_t ns, int axis_y, int log, double *lo, double *hi)
{
    int any = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            const double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y))
                continue;
            const double e = axis_y && s[k].err && isfinite(s[k].err[i]) ? fabs(s[k].err[i]) : 0;
            const double c[3] = { axis_y ? y : x, axis_y ? y - e : x, axis_y ? y + e : x };
            for (int j = 0; j < 3; j++) {
                if (log && c[j] <= 0)
                    continue;
                const double u = log ? log10(c[j]) : c[j];
                *lo = fmin(*lo, u);
                *hi = fmax(*hi, u);
                any = 1;
            }
        }
    return any;
}

/* One axis's view in axis units: the given bounds, else the data's padded by 5% (a single value
 * gets a unit of room, or a decade on a log axis). */
static dm_status axis_view(const dm_plot *p, const dm_plot_series *s, size_t ns, int axis_y, double *v0,
                           double *v1, char *err)
{
    const int log = axis_y ? p->logy : p->logx;
    const double g0 = p->view[axis_y ? 2 : 0], g1 = p->view[axis_y ? 3 : 1];
    const char *name = axis_y ? "y" : "x";
    if (!axis_y && p->n_xcats) {
        *v0 = -0.5;
        *v1 = (double)p->n_xcats - 0.5;
        return DM_OK;
    }
    if (log && ((!isnan(g0) && g0 <= 0) || (!isnan(g1) && g1 <= 0)))
        return dm_err(err, DM_E_INPUT, "plot: the %s view of a log axis must be positive", name);
    double lo, hi;
    if (!data_range(s, ns, axis_y, log, &lo, &hi))
        lo = hi = 0;
    /* Values beyond what the frame can place are clamped (they count as outside); a span below
     * the values' resolution is a single value. */
    const double big = log ? 290 : 1e300;
    lo = fmin(fmax(lo, -big), big);
    hi = fmin(fmax(hi, -big), big);
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi)))
        lo = hi = (lo + hi) / 2;
    if (lo == hi) {
        lo -= log ? 0.5 : (lo == 0 ? 1 : fabs(lo) * 0.1);
        hi += log ? 0.5 : (hi == 0 ? 1 : fabs(hi) * 0.1);
    } else {
        const double pad = 0.05 * (hi - lo);
        lo -= pad;
        hi += pad;
    }
    *v0 = isnan(g0) ? lo : (log ? log10(g0) : g0);
    *v1 = isnan(g1) ? hi : (log ? log10(g1) : g1);
    if (!isfinite(*v0) || !isfinite(*v1) || !isfinite(*v1 - *v0) || (log && (*v0 < -307 || *v1 > 307)))
        return dm_err(err, DM_E_INPUT, "plot: the %s view [%g, %g] is beyond what a plot can place", name, *v0, *v1);
    if (!(*v0 < *v1))
        return dm_err(err, DM_E_INPUT, "plot: an empty %s view [%g, %g]", name, *v0, *v1);
    return DM_OK;
}

static void draw_axes(FILE *out, const dm_plot *p, const frame *f)
{
    char lab[64];
    double t[MAX_TICKS + 1];
    fprintf(out, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            f->x0, f->y0, f->w, f->h);
    /* x */
    fputs("<g class=\"axis x\" font-size=\"11\" text-anchor=\"middle\">\n", out);
    size_t nt;
    if (p->n_xcats) {
        for (size_t i = 0; i < p->n_xcats; i++) {
            const double px = f->x0 + ((double)i + 0.5) / (double)p->n_xcats * f->w;
            fprintf(out, "<g class=\"tick\"><path d=\"M%.1f %.1fv5\" stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\">",
                    px, f->y0 + f->h, px, f->y0 + f->h + 17);
            dm_xml_put(out, p->xcats[i]);
            fputs("</text></g>\n", out);
        }
    } else {
        const double lo = f->logx ? pow(10, f->vx0) : f->vx0, hi = f->logx ? pow(10, f->vx1) : f->vx1;
        nt = dm_plot_ticks(lo, hi, f->logx, t, MAX_TICKS);
        for (size_t i = 0; i < nt; i++) {
            const double px = px_of(f, t[i]);
            dm_plot_tick_label(t[i], nt > 1 ? t[1] - t[0] : 1, f->logx, lab, sizeof lab);
            fprintf(out, "<g class=\"tick\"><path d=\"M%.1f %.1fv5\" stroke=\"#444\"/>"
                         "<path d=\"M%.1f %.1fV%.1f\" stroke=\"#e4e4e4\"/><text x=\"%.1f\" y=\"%.1f\">%s</text></g>\n",
                    px, f->y0 + f->h, px, f->y0 + 1, f->y0 + f->h - 1, px, f->y0 + f->h + 17, lab);
        }
    }
    if (p->xlabel) {
        fprintf(out, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", f->x0 + f->w / 2,
                f->y0 + f->h + 34);
        dm_xml_put(out, p->xlabel);
        fputs("</text>\n", out);
    }
    fputs("</g>\n<g class=\"axis y\" font-size=\"11\" text-anchor=\"end\">\n", out);
    const double lo = f->logy ? pow(10, f->vy0) : f->vy0, hi = f->logy ? pow(10, f->vy1) : f->vy1;
    nt = dm_plot_ticks(lo, hi, f->logy, t, MAX_TICKS);
    for (size_t i = 0; i < nt; i++) {
        const double py = py_clamped(f, t[i]);
        dm_plot_tick_label(t[i], nt > 1 ? t[1] - t[0] : 1, f->logy, lab, sizeof lab);
        fprintf(out, "<g class=\"tick\"><path d=\"M%.1f %.1fh-5\" stroke=\"#444\"/>"
                     "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#e4e4e4\"/><text x=\"%.1f\" y=\"%.1f\">%s</text></g>\n",
                f->x0, py, f->x0 + 1, py, f->x0 + f->w - 1, f->x0 - 8, py + 4, lab);
    }
    if (p->ylabel) {
        fprintf(out, "<text class=\"label\" transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">",
                f->y0 + f->h / 2);
        dm_xml_put(out, p->ylabel);
        fputs("</text>\n", out);
    }
    fputs("</g>\n", out);
}

/* A point's pixel position; categorical x puts index i at the middle of its slot. */
static int point_px(const dm_plot *p, const frame *f, double x, double y, double *px, double *py)
{
    if (p->n_xcats) {
        if (!isfinite(x) || x < 0 || x >= (double)p->n_xcats || !isfinite(y) || (f->logy && y <= 0))
            return 0;
        const double v = f->logy ? log10(y) : y;
        if (v < f->vy0 || v > f->vy1)
            return 0;
        *px = f->x0 + (x + 0.5) / (double)p->n_xcats * f->w;
        *py = f->y0 + f->h - (v - f->vy0) / (f->vy1 - f->vy0) * f->h;
        return 1;
    }
    return in_view(f, x, y, px, py);
}

/* Draw one series (points outside the view are left out; the legend counts them). */
static void draw_series(FILE *out, const dm_plot *p, const frame *f, const dm_plot_series *s, const char *color)
{
    double px, py;
    const size_t n = s->max_draw && s->max_draw < s->n ? s->max_draw : s->n;
    fputs("<g class=\"series\" data-label=\"", out);
    dm_xml_put(out, s->label ? s->label : "");
    fprintf(out, "\" data-n=\"%zu\">\n", s->n);
    if (p->style == DM_PLOT_DOTS) {
        /* One path of zero-length round-capped strokes: a dot per point, small in bytes. */
        fprintf(out, "<path class=\"dots\" stroke=\"%s\" stroke-width=\"2.6\" stroke-linecap=\"round\" stroke-opacity=\"0.75\" d=\"",
                color);
        for (size_t i = 0; i < n; i++) {
            if (point_px(p, f, s->x[i], s->y[i], &px, &py))
                fprintf(out, "M%.1f %.1fh0", px, py);
        }
        fputs("\"/>\n", out);
    } else {
        int pen = 0;
        fprintf(out, "<path class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" d=\"", color);
        for (size_t i = 0; i < n; i++) {
            if (point_px(p, f, s->x[i], s->y[i], &px, &py)) {
                fprintf(out, "%c%.1f %.1f", pen ? 'L' : 'M', px, py);
                pen = 1;
            } else {
                pen = 0;
            }
        }
        fputs("\"/>\n", out);
        for (size_t i = 0; s->err && i < n; i++) {
            const double e = fabs(s->err[i]);
            if (!isfinite(e) || !point_px(p, f, s->x[i], s->y[i], &px, &py))
                continue;
            const double a = py_clamped(f, s->y[i] - e), b = py_clamped(f, s->y[i] + e);
            fprintf(out, "<path class=\"err\" stroke=\"%s\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8\"/>\n", color,
                    px, a, b, px - 4, a, px - 4, b);
        }
        for (size_t i = 0; i < n; i++) {
            if (point_px(p, f, s->x[i], s->y[i], &px, &py))
                fprintf(out, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, color);
        }
    }
    fputs("</g>\n", out);
}

/* The legend's entries laid out in rows of the given width; returns the rows used. */
typedef struct entry {
    char text[200];
    double w;
} entry;

static double text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80; /* characters, not UTF-8 bytes */
    return 6.6 * (double)n;
}

dm_status dm_plot_svg(FILE *out, const dm_plot *p, const dm_plot_series *s, size_t ns, char *err)
{
    dm_status st;
    if (p->n_xcats && p->logx)
        return dm_err(err, DM_E_INPUT, "plot: a categorical x axis cannot be logarithmic");
    frame f = { .logx = p->logx, .logy = p->logy };
    if ((st = axis_view(p, s, ns, 0, &f.vx0, &f.vx1, err)) || (st = axis_view(p, s, ns, 1, &f.vy0, &f.vy1, err)))
        return st;
    const int width = p->width > 0 ? p->width : 480, height = p->height > 0 ? p->height : 300;
    if (width < 160 || height < 120)
        return dm_err(err, DM_E_INPUT, "plot: %d x %d px leaves no room for the axes (at least 160 x 120)", width,
                      height);
    const double left = p->ylabel ? 66 : 52, right = 14, top = p->title ? 30 : 12;
    const double bottom = p->xlabel ? 44 : 28;
    f.x0 = left;
    f.y0 = top;
    f.w = width - left - right;
    f.h = height - top - bottom;
    if (p->equal && !p->n_xcats) { /* grow the view on one axis so a unit is as long on both */
        const double ux = (f.vx1 - f.vx0) / f.w, uy = (f.vy1 - f.vy0) / f.h;
        if (ux > uy) {
            const double c = (f.vy0 + f.vy1) / 2, half = ux * f.h / 2;
            f.vy0 = c - half;
            f.vy1 = c + half;
        } else {
            const double c = (f.vx0 + f.vx1) / 2, half = uy * f.w / 2;
            f.vx0 = c - half;
            f.vx1 = c + half;
        }
    }

    /* The legend (at most 64 entries) counts each series' points outside the view: for dots every
     * point not drawn (a NaN sample too), for lines the finite ones off the view or <= 0 on a log
     * axis (a NaN there is a missing value, not an outlier). */
    size_t outside[64] = { 0 };
    const size_t ncount = ns < 64 ? ns : 64;
    for (size_t k = 0; k < ncount; k++) {
        for (size_t i = 0; i < s[k].n; i++) {
            double px, py;
            if (!point_px(p, &f, s[k].x[i], s[k].y[i], &px, &py) &&
                (p->style == DM_PLOT_DOTS || (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))))
                outside[k]++;
        }
    }
    entry ent[64];
    size_t ne = 0;
    for (size_t k = 0; k < ncount; k++) {
        if (!s[k].label || !*s[k].label)
            continue;
        int len = snprintf(ent[ne].text, sizeof ent[ne].text, "%s", s[k].label);
        if (s[k].max_draw && s[k].max_draw < s[k].n && len < (int)sizeof ent[ne].text)
            len += snprintf(ent[ne].text + len, sizeof ent[ne].text - (size_t)len, " (%zu of %zu drawn)",
                            s[k].max_draw, s[k].n);
        if (outside[k] && len < (int)sizeof ent[ne].text)
            snprintf(ent[ne].text + len, sizeof ent[ne].text - (size_t)len, ", %zu outside the view", outside[k]);
        ent[ne].w = 26 + text_width(ent[ne].text) + 14;
        ne++;
    }
    size_t rows = 0;
    double x = f.w; /* forces a first row */
    for (size_t i = 0; i < ne; i++) {
        if (x + ent[i].w > f.w) {
            rows++;
            x = 0;
        }
        x += ent[i].w;
    }
    const double legend_h = (double)rows * 17 + (p->note ? 17 : 0) + (rows || p->note ? 6 : 0);
    const double total_h = height + legend_h;

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot%s%s\" width=\"%d\" height=\"%.0f\" "
                 "viewBox=\"0 0 %d %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            p->klass ? " " : "", p->klass ? p->klass : "", width, total_h, width, total_h);
    fprintf(out, "<rect width=\"%d\" height=\"%.0f\" fill=\"#fff\"/>\n", width, total_h);
    if (p->title) {
        fprintf(out, "<text class=\"title\" x=\"%.1f\" y=\"19\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">",
                f.x0 + f.w / 2);
        dm_xml_put(out, p->title);
        fputs("</text>\n", out);
    }
    draw_axes(out, p, &f);
    for (size_t k = 0; k < ns; k++)
        draw_series(out, p, &f, &s[k], s[k].color ? s[k].color : palette[k % N_PALETTE]);

    fputs("<g class=\"legend\" font-size=\"11\">\n", out);
    const double ly0 = height + 4;
    size_t row = 0;
    x = f.w;
    for (size_t i = 0, k = 0; k < ncount; k++) {
        if (!s[k].label || !*s[k].label)
            continue;
        if (x + ent[i].w > f.w) {
            row++;
            x = 0;
        }
        const double ex = f.x0 + x, ey = ly0 + (double)(row - 1) * 17 + 8;
        const char *color = s[k].color ? s[k].color : palette[k % N_PALETTE];
        fputs("<g class=\"entry\">", out);
        if (p->style == DM_PLOT_DOTS)
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", ex + 10, ey, color);
        else
            fprintf(out, "<path d=\"M%.1f %.1fh20\" stroke=\"%s\" stroke-width=\"2\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>",
                    ex, ey, color, ex + 10, ey, color);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", ex + 26, ey + 4);
        dm_xml_put(out, ent[i].text);
        fputs("</text></g>\n", out);
        x += ent[i].w;
        i++;
    }
    fputs("</g>\n", out);
    if (p->note) {
        fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\">", f.x0,
                ly0 + (double)rows * 17 + 12);
        dm_xml_put(out, p->note);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
    return ferror(out) ? dm_err(err, DM_E_IO, "plot: writing the SVG failed") : DM_OK;
}
