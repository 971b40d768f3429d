/* page.c — the report's HTML pages: a page built in memory and written atomically, escaping, and
 * the files a page brings along (copied pictures, inlined SVG). */
#include "report/report_internal.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "io/atomic.h"

/* One stylesheet, inline in every page (the folder needs nothing else). */
static const char style[] =
    "body{font:14px/1.45 'DejaVu Sans',Helvetica,Arial,sans-serif;margin:0 24px 40px;color:#222;background:#fff}"
    "nav{padding:10px 0;border-bottom:1px solid #ddd;margin-bottom:8px}nav a{margin-right:16px}"
    "h1{font-size:21px;margin:14px 0 6px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #eee}"
    "h3{font-size:14px;margin:14px 0 6px}a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}"
    "table{border-collapse:collapse;margin:6px 0 14px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;"
    "vertical-align:top}td.num,td.cell{text-align:right;font-variant-numeric:tabular-nums}thead th{background:#f4f4f4}"
    "caption{caption-side:top;text-align:left;color:#555;font-size:12px;padding:2px 0 6px;max-width:520px}"
    "td.best{background:#eef6ee}.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}"
    "figure{margin:0}figcaption{font-size:12px;color:#444;max-width:440px;word-break:break-word}"
    "img.grid{image-rendering:pixelated;max-width:440px;border:1px solid #ddd}"
    "pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px;font-size:12px}"
    ".muted{color:#777}.filters{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}"
    ".filters label{font-size:13px}.status-failed,.status-diverged,.status-dead{color:#b3261e}"
    ".status-running{color:#a66b00}details{margin:8px 0}.tables{display:flex;flex-wrap:wrap;gap:4px 28px}"
    ".tbl{max-width:100%}td.cell{white-space:nowrap}";

dm_status dm_page_open(dm_page *pg, const char *path, const char *title, const char *root, char *err)
{
    memset(pg, 0, sizeof *pg);
    dm_status st;
    if ((st = dm_path_fmt(pg->path, sizeof pg->path, err, "%s", path)) || (st = dm_rep_mkdirs_for(path, err)))
        return st;
    if (!(pg->f = open_memstream(&pg->buf, &pg->n)))
        return dm_err(err, DM_E_NOMEM, "out of memory for the page %s", path);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", pg->f);
    dm_xml_put(pg->f, title);
    fprintf(pg->f, "</title>\n<style>%s</style>\n</head>\n<body>\n<nav><a href=\"%sindex.html\">all runs</a>"
                   "<span class=\"muted\">difflab report</span></nav>\n<h1>",
            style, root);
    dm_xml_put(pg->f, title);
    fputs("</h1>\n", pg->f);
    return DM_OK;
}

void dm_page_discard(dm_page *pg)
{
    if (pg->f)
        fclose(pg->f);
    free(pg->buf); /* open_memstream's buffer comes from malloc */
    pg->f = NULL;
    pg->buf = NULL;
}

dm_status dm_page_close(dm_page *pg, const char *script, char *err)
{
    if (script)
        fprintf(pg->f, "<script>\n%s</script>\n", script);
    fputs("</body>\n</html>\n", pg->f);
    const int bad = ferror(pg->f);
    const int closed = fclose(pg->f) == 0;
    pg->f = NULL;
    dm_status st = bad || !closed ? dm_err(err, DM_E_NOMEM, "out of memory writing the page %s", pg->path)
                                  : dm_write_file_atomic(pg->path, pg->buf, pg->n, err);
    dm_page_discard(pg);
    return st;
}

void dm_html_pre(FILE *f, const char *klass, const char *s)
{
    fprintf(f, "<pre class=\"%s\">", klass);
    dm_xml_put(f, s);
    fputs("</pre>\n", f);
}

void dm_html_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.4g", v);
    else if (!isnan(v))
        fputs(v > 0 ? "inf" : "-inf", f);
}

int dm_rep_wants_log(const double *v, size_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (v[i] <= 0)
            return 0;
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    return hi > 20 * lo;
}

dm_status dm_rep_mkdirs_for(const char *path, char *err)
{
    char dir[DM_PATH_SIZE];
    snprintf(dir, sizeof dir, "%s", path);
    return dm_mkdir_p(dirname(dir), err);
}

int dm_rep_file_exists(const char *path)
{
    struct stat sb; /* lstat: a symbolic link in a run folder is not a picture of the run */
    return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

dm_status dm_rep_copy(const char *src, const char *dst, char *err)
{
    char *data = NULL;
    size_t n = 0;
    dm_status st;
    if ((st = dm_read_file(src, (size_t)1 << 28, &data, &n, err)) || (st = dm_rep_mkdirs_for(dst, err)))
        goto out;
    st = dm_write_file_atomic(dst, data, n, err);
out:
    dm_free(data);
    return st;
}

/* Whether s (n bytes) is an SVG as io/plot.c writes it, checked against an allowlist: only the
 * elements and attributes that writer uses, every attribute value quoted, no comment, CDATA,
 * processing instruction, entity other than the five predefined, or NUL. So a file a run folder
 * holds (it may come from elsewhere) can be inlined into a page without carrying a script, an
 * event handler or a link. */
static int plot_svg_ok(const char *s, size_t n)
{
    static const char *const elems[] = { "svg", "g", "rect", "path", "circle", "text", NULL };
    static const char *const attrs[] = { "xmlns", "class", "width", "height", "viewBox", "font-family", "fill",
                                         "stroke", "x", "y", "d", "cx", "cy", "r", "transform", "text-anchor",
                                         "font-size", "font-weight", "stroke-width", "stroke-linecap",
                                         "stroke-opacity", "data-label", "data-n", NULL };
    if (n < 5 || strncmp(s, "<svg ", 5) != 0 || memchr(s, 0, n))
        return 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') { /* only the five core/xml.c writes */
            static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", NULL };
            int ok = 0;
            for (int k = 0; ents[k] && !ok; k++)
                ok = strncmp(s + i, ents[k], strlen(ents[k])) == 0;
            if (!ok)
                return 0;
            i++;
            continue;
        }
        if (s[i] == '>')
            return 0; /* outside a tag */
        if (s[i] != '<') {
            i++;
            continue;
        }
        i++;
        const int closing = i < n && s[i] == '/';
        i += (size_t)closing;
        size_t k = i;
        while (k < n && s[k] >= 'a' && s[k] <= 'z')
            k++;
        int known = 0;
        for (int e = 0; elems[e] && !known; e++)
            known = strlen(elems[e]) == k - i && strncmp(s + i, elems[e], k - i) == 0;
        if (!known)
            return 0;
        i = k;
        for (;;) { /* attributes: ' name="value"', then '>' or '/>' */
            if (i < n && s[i] == '>') {
                i++;
                break;
            }
            if (!closing && i + 1 < n && s[i] == '/' && s[i + 1] == '>') {
                i += 2;
                break;
            }
            if (closing || i >= n || s[i] != ' ')
                return 0;
            i++;
            k = i;
            while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') || s[k] == '-'))
                k++;
            int attr = 0;
            for (int a = 0; attrs[a] && !attr; a++)
                attr = strlen(attrs[a]) == k - i && strncmp(s + i, attrs[a], k - i) == 0;
            if (!attr || k + 1 >= n || s[k] != '=' || s[k + 1] != '"')
                return 0;
            i = k + 2;
            while (i < n && s[i] != '"' && s[i] != '<' && s[i] != '>')
                i++;
            if (i >= n || s[i] != '"')
                return 0;
            i++;
        }
    }
    return 1;
}

int dm_rep_inline_svg(FILE *f, const char *path)
{
    char *data = NULL, err[DM_ERR_SIZE];
    size_t n = 0;
    if (dm_read_file(path, (size_t)1 << 26, &data, &n, err))
        return 0;
    const int ok = plot_svg_ok(data, n);
    if (ok)
        fwrite(data, 1, n, f);
    dm_free(data);
    return ok;
}

/* Whether name is among the n of list, or <out>/<kind>/<name>.html exists. */
static int has_page(const dm_rep *r, char *const *list, size_t n, const char *kind, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    char page[DM_PATH_SIZE];
    return snprintf(page, sizeof page, "%s/%s/%s.html", r->o->out, kind, name) < (int)sizeof page &&
           dm_rep_file_exists(page);
}

int dm_rep_has_sweep_page(const dm_rep *r, const char *sweep)
{
    return has_page(r, r->sweeps, r->n_sweeps, "sweeps", sweep);
}

dm_status dm_rep_picture(const dm_rep *r, FILE *f, const char *run_dir, const char *run_id, const char *stem,
                         const char *open, const char *to_runs, const char *alt, int *shown, char *err)
{
    char src[DM_PATH_SIZE], dst[DM_PATH_SIZE];
    dm_status st;
    *shown = 0;
    if (!dm_path_name_ok(stem) || !dm_path_name_ok(run_id)) /* from a damaged or crafted file: never a path */
        return DM_OK;
    if ((st = dm_path_fmt(src, sizeof src, err, "%s/%s.svg", run_dir, stem)))
        return st;
    if (dm_rep_file_exists(src)) {
        fputs(open ? open : "", f);
        if (!dm_rep_inline_svg(f, src))
            fputs("<p class=\"muted\">(unreadable picture)</p>", f);
        *shown = 1;
        return DM_OK;
    }
    if ((st = dm_path_fmt(src, sizeof src, err, "%s/%s.png", run_dir, stem)))
        return st;
    if (!dm_rep_file_exists(src))
        return DM_OK;
    if ((st = dm_path_fmt(dst, sizeof dst, err, "%s/runs/%s/%s.png", r->o->out, run_id, stem)) ||
        (st = dm_rep_copy(src, dst, err)))
        return st;
    fputs(open ? open : "", f);
    fputs("<img class=\"grid\" alt=\"", f);
    dm_xml_put(f, alt);
    fprintf(f, "\" src=\"%s", to_runs);
    dm_xml_put(f, run_id);
    fputs("/", f);
    dm_xml_put(f, stem);
    fputs(".png\">", f);
    *shown = 1;
    return DM_OK;
}

void dm_rep_run_link(const dm_rep *r, FILE *f, const char *root, const char *run_id)
{
    const int linked = has_page(r, r->runs, r->n_runs, "runs", run_id);
    if (linked) {
        fprintf(f, "<a class=\"run\" href=\"%sruns/", root);
        dm_xml_put(f, run_id);
        fputs(".html\">", f);
    }
    dm_xml_put(f, run_id);
    if (linked)
        fputs("</a>", f);
}
