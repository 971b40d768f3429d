/* table_render.c — a built table as Markdown, LaTeX (booktabs), CSV or HTML; only formatting,
 * every number already computed by dm_table_build. */
#include "report/table_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csv.h"
#include "core/xml.h"

/* Shortest "%.*g" that reads back to the same double. */
void dm_table_format_real(char *buf, size_t n, double v)
{
    for (int p = 15; p <= 17; ++p) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put_latex(FILE *out, const char *s)
{
    for (; *s; ++s) {
        switch (*s) {
        case '\\': fputs("\\textbackslash{}", out); break;
        case '~': fputs("\\textasciitilde{}", out); break;
        case '^': fputs("\\textasciicircum{}", out); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', out);
            fputc(*s, out);
            break;
        default: fputc(*s, out);
        }
    }
}

static void put_md(FILE *out, const char *s)
{
    for (; *s; ++s) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void put_text(FILE *out, const char *s, dm_table_fmt fmt)
{
    if (fmt == DM_TABLE_LATEX)
        put_latex(out, s);
    else if (fmt == DM_TABLE_HTML)
        dm_xml_put(out, s);
    else
        put_md(out, s);
}

/* One cell as Markdown, LaTeX or HTML: "m ± e (n=N, R repeats, F failed)", bold when best; "—"
 * (or "---") when empty, with "(F failed)". */
static void put_cell(FILE *out, const dm_table_cell *x, dm_table_fmt fmt)
{
    const int tex = fmt == DM_TABLE_LATEX, html = fmt == DM_TABLE_HTML;
    if (x->n == 0) {
        fputs(tex ? "---" : "—", out);
        if (x->failed)
            fprintf(out, " (%zu failed)", x->failed);
        return;
    }
    fputs(x->best ? (tex ? "\\textbf{" : html ? "<b>" : "**") : "", out);
    fprintf(out, "%.4g", x->mean);
    if (x->n >= 2)
        fprintf(out, "%s%.2g", tex ? " $\\pm$ " : " ± ", x->err);
    fputs(x->best ? (tex ? "}" : html ? "</b>" : "**") : "", out);
    fprintf(out, " (n=%zu", x->n);
    if (x->repeats)
        fprintf(out, ", %zu repeat%s", x->repeats, x->repeats == 1 ? "" : "s");
    if (x->failed)
        fprintf(out, ", %zu failed", x->failed);
    fputc(')', out);
}

/* The legend: what a cell is and what the bold mark means (the test and its level). */
static void put_caption(FILE *out, const dm_table *t)
{
    const char *eb = t->errbar == DM_TABLE_SEM ? "sem" : "std";
    fputs(t->metric, out);
    if (t->training)
        fprintf(out, " (%s of each run's series)", dm_table_agg_names[t->agg]);
    else if (t->agg != DM_TABLE_LAST)
        fprintf(out, " (%s of each run's matching evals)", dm_table_agg_names[t->agg]);
    fprintf(out, ": mean ± %s over seeds (n; a seed's repeats are averaged first)", eb);
    if (t->lower_is_better < 0)
        fputs("; a description: neither direction is better\n", out);
    else
        fprintf(out, "; %s is better; bold: better than the runner-up of its column by a one-sided "
                "Welch t-test across seeds (a paired t-test over per-seed differences where both "
                "cells hold the same runs) at α = %g, never with n < 2\n",
                t->lower_is_better ? "lower" : "higher", DM_TABLE_ALPHA);
}

static void write_md(const dm_table *t, FILE *out)
{
    put_caption(out, t);
    fputc('\n', out);
    for (size_t i = 0; i < t->n_row_keys; ++i) {
        fputs("| ", out);
        put_md(out, t->row_keys[i]);
        fputc(' ', out);
    }
    if (t->has_config)
        fputs("| config ", out);
    for (size_t c = 0; c < t->n_cols; ++c) {
        fputs("| ", out);
        if (t->col_key) {
            put_md(out, t->col_key);
            fputc('=', out);
        }
        put_md(out, t->col_labels[c]);
        fputc(' ', out);
    }
    fputs("|\n", out);
    for (size_t i = 0; i < t->n_row_keys + (t->has_config ? 1 : 0); ++i)
        fputs("|---", out);
    for (size_t c = 0; c < t->n_cols; ++c)
        fputs("|---:", out);
    fputs("|\n", out);
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t i = 0; i < t->n_row_keys; ++i) {
            fputs("| ", out);
            put_md(out, t->row_labels[r * t->n_row_keys + i]);
            fputc(' ', out);
        }
        if (t->has_config) {
            fputs("| ", out);
            put_md(out, t->row_config[r]);
            fputc(' ', out);
        }
        for (size_t c = 0; c < t->n_cols; ++c) {
            fputs("| ", out);
            put_cell(out, &t->cells[r * t->n_cols + c], DM_TABLE_MD);
            fputc(' ', out);
        }
        fputs("|\n", out);
    }
}

static void write_latex(const dm_table *t, FILE *out)
{
    const size_t nr = t->n_row_keys + (t->has_config ? 1 : 0); /* label columns */
    fputs("% ", out);
    put_caption(out, t);
    fputs("\\begin{tabular}{", out);
    for (size_t i = 0; i < nr; ++i)
        fputc('l', out);
    for (size_t c = 0; c < t->n_cols; ++c)
        fputc('r', out);
    fputs("}\n\\toprule\n", out);
    if (t->col_key) {
        for (size_t i = 0; i < nr; ++i)
            fputs(i ? " & " : "", out);
        fprintf(out, " & \\multicolumn{%zu}{c}{", t->n_cols);
        put_latex(out, t->col_key);
        fprintf(out, "} \\\\\n\\cmidrule(lr){%zu-%zu}\n", nr + 1, nr + t->n_cols);
    }
    for (size_t i = 0; i < nr; ++i) {
        fputs(i ? " & " : "", out);
        put_latex(out, i < t->n_row_keys ? t->row_keys[i] : "config");
    }
    for (size_t c = 0; c < t->n_cols; ++c) {
        fputs(" & ", out);
        put_latex(out, t->col_labels[c]);
    }
    fputs(" \\\\\n\\midrule\n", out);
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t i = 0; i < nr; ++i) {
            fputs(i ? " & " : "", out);
            put_text(out, i < t->n_row_keys ? t->row_labels[r * t->n_row_keys + i] : t->row_config[r],
                     DM_TABLE_LATEX);
        }
        for (size_t c = 0; c < t->n_cols; ++c) {
            fputs(" & ", out);
            put_cell(out, &t->cells[r * t->n_cols + c], DM_TABLE_LATEX);
        }
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", out);
}

static void put_real(FILE *out, double v)
{
    char buf[48];
    if (isnan(v))
        return;
    dm_table_format_real(buf, sizeof buf, v);
    fputs(buf, out);
}

static void write_csv(const dm_table *t, FILE *out)
{
    for (size_t i = 0; i < t->n_row_keys; ++i) {
        dm_csv_put(out, t->row_keys[i]);
        fputc(',', out);
    }
    if (t->col_key) {
        dm_csv_put(out, t->col_key);
        fputc(',', out);
    }
    fprintf(out, "mean,%s,n,failed,best,repeats,p,config\n", t->errbar == DM_TABLE_SEM ? "sem" : "std");
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t c = 0; c < t->n_cols; ++c) {
            const dm_table_cell *x = &t->cells[r * t->n_cols + c];
            for (size_t i = 0; i < t->n_row_keys; ++i) {
                dm_csv_put(out, t->row_labels[r * t->n_row_keys + i]);
                fputc(',', out);
            }
            if (t->col_key) {
                dm_csv_put(out, t->col_labels[c]);
                fputc(',', out);
            }
            put_real(out, x->mean);
            fputc(',', out);
            put_real(out, x->err);
            fprintf(out, ",%zu,%zu,%d,%zu,", x->n, x->failed, x->best, x->repeats);
            put_real(out, x->p);
            fputc(',', out);
            dm_csv_put(out, t->row_config[r]);
            fputc('\n', out);
        }
    }
}

static void write_html(const dm_table *t, FILE *out)
{
    fputs("<table class=\"ablation\" data-metric=\"", out);
    dm_xml_put(out, t->metric);
    fputs("\">\n<caption>", out);
    char *cap = NULL;
    size_t ncap = 0;
    FILE *mem = open_memstream(&cap, &ncap);
    if (mem) {
        put_caption(mem, t);
        fclose(mem);
        if (cap && ncap && cap[ncap - 1] == '\n')
            cap[ncap - 1] = 0;
        dm_xml_put(out, cap ? cap : "");
    }
    free(cap);
    fputs("</caption>\n<thead><tr>", out);
    for (size_t i = 0; i < t->n_row_keys; ++i) {
        fputs("<th>", out);
        dm_xml_put(out, t->row_keys[i]);
        fputs("</th>", out);
    }
    if (t->has_config)
        fputs("<th>config</th>", out);
    for (size_t c = 0; c < t->n_cols; ++c) {
        fputs("<th>", out);
        if (t->col_key) {
            dm_xml_put(out, t->col_key);
            fputc('=', out);
        }
        dm_xml_put(out, t->col_labels[c]);
        fputs("</th>", out);
    }
    fputs("</tr></thead>\n<tbody>\n", out);
    for (size_t r = 0; r < t->n_rows; ++r) {
        fputs("<tr>", out);
        for (size_t i = 0; i < t->n_row_keys; ++i) {
            fputs("<th scope=\"row\">", out);
            dm_xml_put(out, t->row_labels[r * t->n_row_keys + i]);
            fputs("</th>", out);
        }
        if (t->has_config) {
            fputs("<td class=\"config\">", out);
            dm_xml_put(out, t->row_config[r]);
            fputs("</td>", out);
        }
        for (size_t c = 0; c < t->n_cols; ++c) {
            const dm_table_cell *x = &t->cells[r * t->n_cols + c];
            fprintf(out, "<td class=\"cell%s\" data-n=\"%zu\" data-mean=\"", x->best ? " best" : "", x->n);
            put_real(out, x->mean);
            fputs("\" data-err=\"", out);
            put_real(out, x->err);
            fputs("\">", out);
            put_cell(out, x, DM_TABLE_HTML);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
}

dm_status dm_table_write(const dm_table *t, dm_table_fmt fmt, FILE *out, char *err)
{
    if (fmt == DM_TABLE_HTML)
        write_html(t, out);
    else if (fmt == DM_TABLE_LATEX)
        write_latex(t, out);
    else if (fmt == DM_TABLE_CSV)
        write_csv(t, out);
    else
        write_md(t, out);
    if (fflush(out) != 0 || ferror(out))
        return dm_err(err, DM_E_IO, "writing the table failed: %s", strerror(errno));
    return DM_OK;
}
