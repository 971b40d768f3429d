/* report_run.c — a run's page: summary, training curves, evals, pictures, provenance. */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/plot.h"
#include "io/runrec.h"
#include "io/runstore.h"

static dm_status plot_into(FILE *f, const dm_plot *p, const dm_plot_series *s, size_t ns, const char *caption,
                           char *err)
{
    fputs("<figure>", f);
    dm_status st = dm_plot_svg(f, p, s, ns, err);
    if (caption) {
        fputs("<figcaption>", f);
        dm_xml_put(f, caption);
        fputs("</figcaption>", f);
    }
    fputs("</figure>\n", f);
    return st;
}

/* Each training series against step and against wall time. */
static dm_status training(FILE *f, const dm_runrec *rec, char *err)
{
    fputs("<h2 id=\"training\">Training</h2>\n", f);
    if (!rec->n_series) {
        fputs("<p class=\"muted\">No training series recorded (an analytic model trains nothing).</p>\n", f);
        return DM_OK;
    }
    fputs("<p class=\"muted\">Each point is the mean over the steps since the previous logged step "
          "(run.log_every), as recorded in run.h5's /metrics.</p>\n<div class=\"figs\">\n", f);
    dm_status st = DM_OK;
    /* loss, then grad_norm, then the others in their recorded order */
    size_t order[64], no = 0;
    static const char *const first[] = { "loss", "grad_norm" };
    for (int k = 0; k < 2; k++)
        for (size_t j = 0; j < rec->n_series; j++)
            if (strcmp(rec->series[j].name, first[k]) == 0 && no < 64)
                order[no++] = j;
    for (size_t j = 0; j < rec->n_series && no < 64; j++)
        if (strcmp(rec->series[j].name, first[0]) != 0 && strcmp(rec->series[j].name, first[1]) != 0)
            order[no++] = j;
    for (size_t k = 0; k < no && !st; k++) {
        const dm_series *s = &rec->series[order[k]];
        double *x = dm_malloc(sizeof(double) * (s->n + 1));
        if (!x)
            return dm_err(err, DM_E_NOMEM, "out of memory for the plot of %s", s->name);
        for (size_t i = 0; i < s->n; i++)
            x[i] = (double)s->step[i];
        for (int wall = 0; wall < 2 && !st; wall++) {
            dm_plot p;
            dm_plot_init(&p);
            char title[160];
            snprintf(title, sizeof title, "%s against %s", s->name, wall ? "wall time" : "step");
            p.title = title;
            p.klass = "training";
            p.xlabel = wall ? "wall time (s)" : "step";
            p.ylabel = s->name;
            p.logy = dm_rep_wants_log(s->value, s->n);
            p.width = 420;
            p.height = 280;
            const dm_plot_series ps = { .label = NULL, .n = s->n, .x = wall ? s->wall_s : x, .y = s->value };
            st = plot_into(f, &p, &ps, 1, NULL, err);
        }
        dm_free(x);
    }
    fputs("</div>\n", f);
    return st;
}

static int is_descriptive_sampler(const char *s)
{
    return strcmp(s, "noise") == 0 || strcmp(s, "exact") == 0;
}

/* The settings of an eval without the fields that set its NFE (steps; rk45's tolerances), so
 * that one sampler's evals at several NFE make one line: q is line_key_sql prepared (NULL: the
 * settings as they are). Returns a dm_malloc'd string. */
static const char line_key_sql[] =
    "SELECT CASE WHEN json_valid(?1) THEN json_remove(?1, '$.steps', '$.rtol', '$.atol') ELSE ?1 END";

static char *line_key(sqlite3_stmt *q, const char *settings)
{
    const char *v = settings;
    if (q && sqlite3_reset(q) == SQLITE_OK && sqlite3_bind_text(q, 1, settings, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        v = (const char *)sqlite3_column_text(q, 0);
    return dm_strdup(v);
}

/* One plot per metric: value against NFE, a line per sampler and settings (apart from those
 * that set the NFE) with NFE > 0; then the table of every eval. */
static dm_status evals(const dm_rep *r, FILE *f, const dm_runrec *rec, char *err)
{
    fputs("<h2 id=\"evals\">Evaluations</h2>\n", f);
    if (!rec->n_evals) {
        fputs("<p class=\"muted\">No evals recorded.</p>\n", f);
        return DM_OK;
    }
    const size_t n = rec->n_evals;
    double *x = dm_malloc(sizeof(double) * n), *y = dm_malloc(sizeof(double) * n);
    dm_plot_series *ser = dm_malloc(sizeof(dm_plot_series) * n);
    char **labels = dm_calloc(n, sizeof(char *));
    char *done_metric = dm_calloc(n, 1), *used = dm_calloc(n, 1);
    char **keys = dm_calloc(n, sizeof(char *));
    dm_status st = x && y && ser && labels && done_metric && used && keys
                       ? DM_OK : dm_err(err, DM_E_NOMEM, "out of memory for the evals' plots");
    sqlite3_stmt *kq = NULL;
    if (sqlite3_prepare_v2(r->db, line_key_sql, -1, &kq, NULL) != SQLITE_OK)
        kq = NULL;
    for (size_t i = 0; i < n && !st; i++)
        if (!(keys[i] = line_key(kq, rec->evals[i].settings_json)))
            st = dm_err(err, DM_E_NOMEM, "out of memory for the evals' plots");
    sqlite3_finalize(kq);
    fputs("<div class=\"figs\">\n", f);
    size_t n_plots = 0;
    for (size_t m = 0; m < n && !st; m++) {
        if (done_metric[m])
            continue;
        const char *metric = rec->evals[m].metric;
        size_t np = 0, ns = 0;
        memset(used, 0, n);
        /* series: (sampler, settings) groups of this metric with nfe > 0, points sorted by nfe */
        for (size_t i = m; i < n; i++) {
            const dm_eval *e = &rec->evals[i];
            if (strcmp(e->metric, metric) != 0)
                continue;
            done_metric[i] = 1;
            if (used[i] || e->nfe <= 0 || is_descriptive_sampler(e->sampler))
                continue;
            const size_t start = np;
            for (size_t j = i; j < n; j++) {
                const dm_eval *g = &rec->evals[j];
                if (!used[j] && g->nfe > 0 && strcmp(g->metric, metric) == 0 && strcmp(g->sampler, e->sampler) == 0 &&
                    strcmp(keys[j], keys[i]) == 0) {
                    used[j] = 1;
                    size_t at = np++; /* insertion by nfe */
                    while (at > start && x[at - 1] > (double)g->nfe) {
                        x[at] = x[at - 1];
                        y[at] = y[at - 1];
                        at--;
                    }
                    x[at] = (double)g->nfe;
                    y[at] = g->value;
                }
            }
            /* the label: the sampler, and its other settings when it has several lines */
            int several = 0;
            for (size_t j = m; j < n && !several; j++)
                several = strcmp(rec->evals[j].metric, metric) == 0 && strcmp(rec->evals[j].sampler, e->sampler) == 0 &&
                          rec->evals[j].nfe > 0 && strcmp(keys[j], keys[i]) != 0;
            const size_t len = strlen(e->sampler) + strlen(keys[i]) + 2;
            if (!(labels[ns] = dm_malloc(len))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory for the evals' plots");
                break;
            }
            snprintf(labels[ns], len, "%s%s%s", e->sampler, several ? " " : "", several ? keys[i] : "");
            ser[ns] = (dm_plot_series){ .label = labels[ns], .n = np - start, .x = x + start, .y = y + start };
            ns++;
        }
        size_t longest = 0;
        for (size_t k = 0; k < ns; k++)
            longest = ser[k].n > longest ? ser[k].n : longest;
        if (!st && longest >= 2) { /* a line needs two NFEs; single points are in the table */
            n_plots++;
            dm_plot p;
            dm_plot_init(&p);
            char title[160];
            snprintf(title, sizeof title, "%s against NFE", metric);
            p.title = title;
            p.klass = "evals";
            p.xlabel = "NFE (network evaluations per sample)";
            p.ylabel = metric;
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = 0; i < np; i++) {
                lo = fmin(lo, x[i]);
                hi = fmax(hi, x[i]);
            }
            p.logx = lo > 0 && hi >= 4 * lo; /* NFE spanning a factor of 4 or more */
            p.logy = dm_rep_wants_log(y, np);
            st = plot_into(f, &p, ser, ns, NULL, err);
        }
        for (size_t k = 0; k < ns; k++) {
            dm_free(labels[k]);
            labels[k] = NULL;
        }
    }
    fputs("</div>\n", f);
    if (!n_plots)
        fputs("<p class=\"muted\">No sampler has evals at two or more NFE, so there is nothing to plot against "
              "NFE: <code>difflab sample RUN --sampler NAME --steps N</code> adds points.</p>\n", f);
    if (!st) {
        fputs("<details open><summary>Every eval</summary>\n<table class=\"evals\"><thead><tr><th>metric</th>"
              "<th>sampler</th><th>nfe</th><th>settings</th><th>n_samples</th><th>value</th></tr></thead><tbody>\n",
              f);
        for (size_t i = 0; i < n; i++) {
            const dm_eval *e = &rec->evals[i];
            fputs("<tr><td>", f);
            dm_xml_put(f, e->metric);
            fputs("</td><td>", f);
            dm_xml_put(f, e->sampler);
            fprintf(f, "</td><td class=\"num\">%lld</td><td>", (long long)e->nfe);
            dm_xml_put(f, e->settings_json);
            fprintf(f, "</td><td class=\"num\">%lld</td><td class=\"num\" title=\"%.17g\">", (long long)e->n_samples,
                    e->value);
            dm_html_num(f, e->value);
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table></details>\n", f);
    }
    dm_free(x);
    dm_free(y);
    dm_free(ser);
    dm_free(labels);
    dm_free(done_metric);
    dm_free(used);
    for (size_t i = 0; keys && i < n; i++)
        dm_free(keys[i]);
    dm_free(keys);
    return st;
}

/* One picture of the run folder in a figure with its caption (dm_rep_picture). */
static dm_status picture(const dm_rep *r, FILE *f, const char *run_dir, const char *run_id, const char *stem,
                         const char *caption, int *shown, char *err)
{
    dm_status st = dm_rep_picture(r, f, run_dir, run_id, stem, "<figure class=\"picture\">", "", caption, shown, err);
    if (!st && *shown) {
        fputs("<figcaption>", f);
        dm_xml_put(f, caption);
        fputs("</figcaption></figure>\n", f);
    }
    return st;
}

static dm_status pictures(const dm_rep *r, FILE *f, const dm_runrec *rec, const char *dir, const char *run_id,
                          char *err)
{
    fputs("<h2 id=\"samples\">Samples</h2>\n<div class=\"figs\">\n", f);
    dm_status st = DM_OK;
    int shown = 0;
    for (size_t i = 0; i < rec->n_samples && !st; i++) {
        const dm_sample_set *s = &rec->samples[i];
        char cap[512];
        snprintf(cap, sizeof cap, "%s: %s, nfe %lld, %lld samples %s", s->name, s->sampler, (long long)s->nfe,
                 (long long)s->n, strcmp(s->settings_json, "{}") ? s->settings_json : "");
        int one = 0;
        st = picture(r, f, dir, run_id, s->name, cap, &one, err);
        shown |= one;
    }
    for (int l = 0; l < 100 && !st; l++) {
        char stem[32];
        snprintf(stem, sizeof stem, "posterior_%02d", l);
        int one = 0;
        st = picture(r, f, dir, run_id, stem, "draws from the exact posterior of one noisy point", &one, err);
        shown |= one;
        if (!one)
            break;
    }
    fputs("</div>\n", f);
    if (!shown)
        fputs("<p class=\"muted\">No pictures in the run folder.</p>\n", f);
    return st;
}

/* A run id named by a spec key (a teacher, classifier or feature network), linked when the index
 * has it. */
static void linked_param(const dm_rep *r, FILE *f, const char *run_id, const char *key, const char *what)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT text_value FROM params WHERE run_id = ? AND key = ?", -1, &q, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) && *sqlite3_column_text(q, 0)) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        char id[512], e[DM_ERR_SIZE];
        fputs("<tr><th>", f);
        dm_xml_put(f, what);
        fputs(" (", f);
        dm_xml_put(f, key);
        fputs(")</th><td>", f);
        if (dm_index_find_run(r->ix, v, id, sizeof id, e) == DM_OK)
            dm_rep_run_link(r, f, "../", id);
        else
            dm_xml_put(f, v);
        fputs("</td></tr>\n", f);
    }
    sqlite3_finalize(q);
}

static void provenance(const dm_rep *r, FILE *f, const dm_runrec *rec, const char *run_id)
{
    fputs("<h2 id=\"provenance\">Provenance</h2>\n<table class=\"provenance\"><tbody>\n", f);
    for (size_t i = 0; i < rec->n_attrs; i++) {
        fputs("<tr><th>", f);
        dm_xml_put(f, rec->attrs[i].key);
        fputs("</th><td>", f);
        if (strcmp(rec->attrs[i].key, "teacher") == 0 && *rec->attrs[i].value)
            dm_rep_run_link(r, f, "../", rec->attrs[i].value);
        else
            dm_xml_put(f, rec->attrs[i].value);
        fputs("</td></tr>\n", f);
    }
    linked_param(r, f, run_id, "distill.teacher", "teacher");
    linked_param(r, f, run_id, "guidance.classifier", "classifier");
    linked_param(r, f, run_id, "eval.features", "feature network");
    fputs("<tr><th>config_hash</th><td>", f);
    dm_xml_put(f, rec->config_hash);
    fputs("</td></tr>\n<tr><th>group_hash</th><td>", f);
    dm_xml_put(f, rec->group_hash);
    fputs("</td></tr>\n", f);
    fputs("<tr><th>data</th><td>", f);
    dm_xml_put(f, rec->data_name ? rec->data_name : "");
    fprintf(f, ": %lld train, %lld test, dim %lld, std %.6g, sha256 ", (long long)rec->data_n_train,
            (long long)rec->data_n_test, (long long)rec->data_dim, rec->data_std);
    dm_xml_put(f, rec->data_sha256);
    fputs("</td></tr>\n</tbody></table>\n", f);
    fputs("<h3>Seeds</h3>\n<table class=\"seeds\"><thead><tr><th>stream</th><th>seed</th></tr></thead><tbody>\n", f);
    fprintf(f, "<tr><td>master</td><td class=\"num\">%llu</td></tr>\n", (unsigned long long)rec->seed);
    for (size_t i = 0; i < rec->n_seeds; i++) {
        fputs("<tr><td>", f);
        dm_xml_put(f, rec->seeds[i].stream);
        fprintf(f, "</td><td class=\"num\">%llu</td></tr>\n", (unsigned long long)rec->seeds[i].seed);
    }
    fputs("</tbody></table>\n<h3>Spec (resolved)</h3>\n", f);
    dm_html_pre(f, "spec", rec->config_yaml ? rec->config_yaml : "");
}

/* Summary rows from the index: status (as `difflab runs` shows it), sweeps, tags, notes. */
static void summary(const dm_rep *r, FILE *f, const char *run_id)
{
    static const char sql[] =
        "SELECT r.name, r.status, r.seed, r.created, r.finished, r.wall_s, r.n_params,"
        " (SELECT group_concat(sweep, ' ') FROM (SELECT sweep FROM sweep_runs WHERE run_id = r.run_id ORDER BY sweep)),"
        " (SELECT group_concat(key || '=' || value, ', ') FROM (SELECT key, value FROM tags WHERE run_id = r.run_id"
        "  ORDER BY key))"
        " FROM runs r WHERE r.run_id = ?";
    static const char *const names[] = { "name", "status", "seed", "created", "finished", "wall_s", "n_params",
                                         "sweeps", "tags" };
    sqlite3_stmt *q = NULL;
    fputs("<table class=\"summary\"><tbody>\n", f);
    if (sqlite3_prepare_v2(r->db, sql, -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            for (int c = 0; c < 9; c++) {
                const char *v = (const char *)sqlite3_column_text(q, c);
                fprintf(f, "<tr><th>%s</th><td>", names[c]);
                if (c == 7 && v) { /* sweeps: links to their pages */
                    char buf[1024];
                    snprintf(buf, sizeof buf, "%s", v);
                    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                        const int has = dm_rep_has_sweep_page(r, w);
                        if (has) {
                            fputs("<a class=\"sweep\" href=\"../sweeps/", f);
                            dm_xml_put(f, w);
                            fputs(".html\">", f);
                        }
                        dm_xml_put(f, w);
                        fputs(has ? "</a> " : " ", f);
                    }
                } else if (c == 1 && v) {
                    fputs("<span class=\"status-", f);
                    dm_xml_put(f, v);
                    fputs("\">", f);
                    dm_xml_put(f, v);
                    fputs("</span>", f);
                } else {
                    dm_xml_put(f, v ? v : "");
                }
                fputs("</td></tr>\n", f);
            }
    }
    sqlite3_finalize(q);
    fputs("</tbody></table>\n", f);
    if (sqlite3_prepare_v2(r->db, "SELECT time, text FROM notes WHERE run_id = ? ORDER BY n", -1, &q, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
        int any = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            fputs(any ? "" : "<h3>Notes</h3>\n<ul class=\"notes\">\n", f);
            any = 1;
            fputs("<li><span class=\"muted\">", f);
            dm_xml_put(f, (const char *)sqlite3_column_text(q, 0));
            fputs("</span> ", f);
            dm_xml_put(f, (const char *)sqlite3_column_text(q, 1));
            fputs("</li>\n", f);
        }
        fputs(any ? "</ul>\n" : "", f);
    }
    sqlite3_finalize(q);
}

dm_status dm_rep_run_page(dm_rep *r, const char *run_id, char *err)
{
    char path[DM_PATH_SIZE], dir[DM_PATH_SIZE], h5[DM_PATH_SIZE], title[300];
    dm_runrec rec;
    dm_page pg;
    dm_status st;
    dm_runrec_init(&rec);
    sqlite3_stmt *q = NULL;
    dir[0] = 0;
    if (sqlite3_prepare_v2(r->db, "SELECT path FROM runs WHERE run_id = ?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
            snprintf(dir, sizeof dir, "%s", (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    snprintf(title, sizeof title, "run %s", run_id);
    if ((st = dm_path_fmt(path, sizeof path, err, "%s/runs/%s.html", r->o->out, run_id)) ||
        (st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)) ||
        (st = dm_page_open(&pg, path, title, "../", err)))
        return st;
    FILE *f = pg.f;
    fputs("<p><a href=\"#training\">training</a> · <a href=\"#evals\">evaluations</a> · <a href=\"#samples\">samples"
          "</a> · <a href=\"#provenance\">provenance</a></p>\n",
          f);
    summary(r, f, run_id);
    char why[DM_ERR_SIZE];
    if (!*dir) {
        fputs("<p class=\"status-failed\">The index has no folder for this run.</p>\n", f);
    } else if (dm_runstore_read_file(&r->vet, h5, &rec, why)) {
        /* A damaged or missing run file: the page says so; the report goes on. */
        fputs("<p class=\"status-failed\">The run file cannot be read: ", f);
        dm_xml_put(f, why);
        fputs("</p>\n", f);
    } else if ((st = training(f, &rec, err)) || (st = evals(r, f, &rec, err)) ||
               (st = pictures(r, f, &rec, dir, run_id, err))) {
        dm_page_discard(&pg);
        dm_runrec_free(&rec);
        return st;
    } else {
        provenance(r, f, &rec, run_id);
    }
    dm_runrec_free(&rec);
    if ((st = dm_page_close(&pg, NULL, err)))
        return st;
    if (r->o->log)
        fprintf(r->o->log, "report: %s\n", path);
    return DM_OK;
}
