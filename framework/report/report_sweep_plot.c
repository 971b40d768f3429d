/* report_sweep_plot.c — a sweep page's plots: each metric against each axis, from the cells
 * `difflab table` builds (report_sweep.c has the rest of the page). */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/plot.h"
#include "report/table.h"

/* A table of metric for the sweep with the main-sample-set filters; rows and col as given. */
static dm_status build(const dm_rep *r, const char *sweep, const dm_rep_sweep *w, const char *metric, const char *rows,
                       const char *col, dm_table **t, char *err)
{
    dm_table_def d;
    dm_table_def_init(&d);
    dm_status st;
    if (!(st = dm_table_def_set(&d, "sweep", sweep, "report", err)) &&
        !(st = dm_table_def_set(&d, "metric", metric, "report", err)) &&
        !(st = dm_table_def_set(&d, "rows", rows, "report", err)) &&
        !(st = dm_table_def_set(&d, "cols", col ? col : "", "report", err)) &&
        !(st = dm_table_def_set(&d, "sampler", w->samplers, "report", err)) &&
        !(st = dm_table_def_set(&d, "nfe", w->nfes, "report", err)))
        st = dm_table_build(r->ix, &d, t, err);
    dm_table_def_free(&d);
    return st;
}

/* Whether every label reads as a number (then the axis is numeric). */
static int numeric(char *const *labels, size_t n, double *v)
{
    for (size_t i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(labels[i], &end);
        if (end == labels[i] || *end || !isfinite(v[i]))
            return 0;
    }
    return 1;
}

/* Append key to the comma-separated list buf (n bytes) and count it in *count (a key list may
 * hold several: the settings fields); 0 when it does not fit. */
static int add_keys(char *buf, size_t n, const char *keys, size_t *count)
{
    const size_t len = strlen(buf);
    if (!*keys)
        return 1;
    if ((size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", keys) >= n - len)
        return 0;
    (*count)++;
    for (const char *c = keys; *c; c++)
        *count += *c == ',';
    return 1;
}

/* The row keys of the sweep's tables and plots: the axes of two or more values the index knows
 * (but axis skip, when it is the plot's column), then the settings fields. 0 when they do not fit
 * a table (DM_TABLE_MAX_KEYS keys, the buffer): the page then says so instead. */
int dm_rep_row_keys(const dm_rep_sweep *w, size_t skip, char *rows, size_t n)
{
    size_t count = 0;
    rows[0] = 0;
    for (size_t b = 0; b < w->n_axes; b++)
        if (b != skip && w->keys[b] && w->distinct[b] > 1 && !add_keys(rows, n, w->keys[b], &count))
            return 0;
    return add_keys(rows, n, w->fields, &count) && count <= DM_TABLE_MAX_KEYS;
}

/* The plot of metric against axis a: rows the other axes (their table keys), the column axis a,
 * so a line per value of the other axes; with no other axis, the rows are axis a's values and a
 * line per config group (a row the table split). *drawn: whether a plot was written (no finished
 * run with the metric: none). */
dm_status dm_rep_axis_plot(FILE *f, const dm_rep *r, const char *sweep, const dm_rep_sweep *w, size_t a,
                           const char *metric, int *drawn, char *err)
{
    char rows[1024];
    *drawn = 0;
    if (!dm_rep_row_keys(w, a, rows, sizeof rows)) {
        fputs("<p class=\"muted\">Too many axes and settings fields to plot against ", f);
        dm_xml_put(f, w->axes[a]);
        fputs(" (a table takes at most 8 row keys).</p>\n", f);
        return DM_OK;
    }
    const int single = !*rows;
    dm_table *t = NULL;
    dm_status st = build(r, sweep, w, metric, single ? w->keys[a] : rows, single ? NULL : w->keys[a], &t, err);
    if (st == DM_E_NOTFOUND)
        return DM_OK; /* no finished run has this metric */
    if (st)
        return st;
    /* x labels (nx) and lines (nl); cell[l * nx + i]: the table cell of line l at x label i, or -1 */
    size_t nx = single ? 0 : t->n_cols, nl = single ? 0 : t->n_rows;
    const size_t nmax = (t->n_rows > t->n_cols ? t->n_rows : t->n_cols) + 1; /* labels, lines */
    const size_t m = (single ? t->n_rows * t->n_rows : t->n_rows * t->n_cols) + 1; /* points */
    char **xl = dm_calloc(nmax, sizeof(char *)), **cfg = dm_calloc(nmax, sizeof(char *));
    long *cell = dm_malloc(sizeof(long) * m);
    double *xv = dm_malloc(sizeof(double) * nmax), *x = dm_malloc(sizeof(double) * m);
    double *y = dm_malloc(sizeof(double) * m), *e = dm_malloc(sizeof(double) * m);
    size_t *ord = dm_malloc(sizeof(size_t) * nmax);
    dm_plot_series *ser = dm_calloc(nmax, sizeof(dm_plot_series));
    char (*lab)[256] = dm_calloc(nmax, 256);
    if (!xl || !cfg || !cell || !xv || !x || !y || !e || !ord || !ser || !lab) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the plot of %s", metric);
        goto out;
    }
    if (single) { /* distinct x labels and distinct configs, in the table's order */
        for (size_t rr = 0; rr < t->n_rows; rr++) {
            const char *lx = t->row_labels[rr * t->n_row_keys], *lc = t->row_config[rr];
            size_t i = 0, l = 0;
            while (i < nx && strcmp(xl[i], lx) != 0)
                i++;
            if (i == nx)
                xl[nx++] = (char *)lx;
            while (l < nl && strcmp(cfg[l], lc) != 0)
                l++;
            if (l == nl)
                cfg[nl++] = (char *)lc;
        }
        for (size_t k = 0; k < nl * nx; k++)
            cell[k] = -1;
        for (size_t rr = 0; rr < t->n_rows; rr++) {
            size_t i = 0, l = 0;
            while (strcmp(xl[i], t->row_labels[rr * t->n_row_keys]) != 0)
                i++;
            while (strcmp(cfg[l], t->row_config[rr]) != 0)
                l++;
            cell[l * nx + i] = (long)(rr * t->n_cols);
        }
    } else {
        for (size_t i = 0; i < nx; i++)
            xl[i] = t->col_labels[i];
        for (size_t l = 0; l < nl; l++)
            for (size_t i = 0; i < nx; i++)
                cell[l * nx + i] = (long)(l * t->n_cols + i);
    }
    const int num = numeric(xl, nx, xv);
    for (size_t i = 0; i < nx; i++) /* numeric x in increasing order */
        ord[i] = i;
    for (size_t i = 1; num && i < nx; i++)
        for (size_t j = i; j > 0 && xv[ord[j - 1]] > xv[ord[j]]; j--) {
            const size_t k = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = k;
        }
    for (size_t l = 0; l < nl; l++) {
        for (size_t i = 0; i < nx; i++) {
            const long c = cell[l * nx + ord[i]];
            x[l * nx + i] = num ? xv[ord[i]] : (double)i;
            y[l * nx + i] = c < 0 ? NAN : t->cells[c].mean;
            e[l * nx + i] = c < 0 ? NAN : t->cells[c].err;
        }
        if (single) {
            snprintf(lab[l], sizeof lab[l], "%s%s%s%s", metric, *cfg[l] ? " [" : "", cfg[l], *cfg[l] ? "]" : "");
        } else {
            for (size_t k = 0; k < t->n_row_keys; k++)
                snprintf(lab[l] + strlen(lab[l]), sizeof lab[l] - strlen(lab[l]), "%s%s=%s", k ? ", " : "",
                         t->row_keys[k], t->row_labels[l * t->n_row_keys + k]);
            if (*t->row_config[l])
                snprintf(lab[l] + strlen(lab[l]), sizeof lab[l] - strlen(lab[l]), " [%s]", t->row_config[l]);
        }
        ser[l] = (dm_plot_series){ .label = lab[l], .n = nx, .x = x + l * nx, .y = y + l * nx, .err = e + l * nx };
    }
    const char *cats[256];
    for (size_t i = 0; !num && i < nx && i < 256; i++)
        cats[i] = xl[ord[i]];
    dm_plot p;
    dm_plot_init(&p);
    char title[300], note[300];
    snprintf(title, sizeof title, "%s against %s", metric, w->axes[a]);
    snprintf(note, sizeof note, "mean ± %s over seeds%s", t->errbar == DM_TABLE_SEM ? "sem" : "std",
             t->lower_is_better < 0 ? "" : t->lower_is_better ? "; lower is better" : "; higher is better");
    p.title = title;
    p.klass = "sweep-plot";
    p.xlabel = w->keys[a];
    p.ylabel = metric;
    p.note = note;
    p.width = 520;
    p.height = 320;
    if (!num) {
        p.xcats = cats;
        p.n_xcats = nx < 256 ? nx : 256;
    }
    p.logx = num && nx > 1 && xv[ord[0]] > 0 && xv[ord[nx - 1]] >= 10 * xv[ord[0]];
    p.logy = dm_rep_wants_log(y, nx * nl);
    fputs("<figure>", f);
    st = dm_plot_svg(f, &p, ser, nl, err);
    fputs("</figure>\n", f);
    *drawn = !st;
out:
    dm_free(xl);
    dm_free(cfg);
    dm_free(cell);
    dm_free(xv);
    dm_free(x);
    dm_free(y);
    dm_free(e);
    dm_free(ord);
    dm_free(ser);
    dm_free(lab);
    dm_table_free(t);
    return st;
}

