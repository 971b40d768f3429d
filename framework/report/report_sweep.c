/* report_sweep.c — a sweep's page: its tables, a plot per metric against each swept axis, the
 * sample picture of every cell, and its runs. Cells are what `difflab table` builds (one config
 * group each, seeds as replicates), so a plot never pools runs a table would keep apart. */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "report/table.h"

static void info_free(dm_rep_sweep *w)
{
    for (size_t a = 0; a < w->n_axes; a++) {
        dm_free(w->axes[a]);
        dm_free(w->keys[a]);
    }
    for (size_t c = 0; c < w->n_cells; c++) {
        for (size_t a = 0; a < w->n_axes; a++)
            dm_free(w->cells[c].vals[a]);
        for (size_t i = 0; i < w->cells[c].n_ids; i++)
            dm_free(w->cells[c].ids[i]);
        dm_free(w->cells[c].ids);
    }
    dm_free(w->cells);
    dm_free(w->yaml);
}

/* A column's text (NULL: ""), copied. */
static char *dup(const unsigned char *s)
{
    return dm_strdup(s ? (const char *)s : "");
}

static int key_exists(const dm_rep *r, const char *key)
{
    sqlite3_stmt *q = NULL;
    int found = sqlite3_prepare_v2(r->db, "SELECT 1 FROM params WHERE key = ? LIMIT 1", -1, &q, NULL) == SQLITE_OK &&
                sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

/* The manifest read line by line, each parsed with SQLite's JSON functions. */
static dm_status read_manifest(const dm_rep *r, const char *sweep, dm_rep_sweep *w, char *err)
{
    char path[DM_PATH_SIZE];
    char *text = NULL;
    size_t len = 0;
    dm_status st;
    if ((st = dm_path_fmt(path, sizeof path, err, "%s/sweeps/%s/sweep.yaml", r->o->results, sweep)))
        return st;
    if (dm_read_file(path, (size_t)1 << 20, &w->yaml, &len, err))
        w->yaml = NULL;
    if ((st = dm_path_fmt(path, sizeof path, err, "%s/sweeps/%s/manifest.jsonl", r->o->results, sweep)))
        return st;
    if ((st = dm_read_file(path, (size_t)1 << 30, &text, &len, err)))
        return st == DM_E_NOTFOUND ? dm_err(err, DM_E_INPUT, "report: no sweep '%s' (no %s)", sweep, path) : st;
    sqlite3_stmt *q = NULL, *ax = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT json_extract(?1, '$.run_id')", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "SELECT key, value FROM json_each(?1, '$.axes')", -1, &ax, NULL) != SQLITE_OK) {
        st = dm_err(err, DM_E_IO, "report: %s", sqlite3_errmsg(r->db));
        goto out;
    }
    size_t lineno = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && !st; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *vals[DM_REP_MAX_AXES] = { 0 };
        size_t nv = 0;
        sqlite3_reset(q);
        sqlite3_reset(ax);
        sqlite3_bind_text(q, 1, line, -1, SQLITE_STATIC);
        sqlite3_bind_text(ax, 1, line, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_text(q, 0)) {
            st = dm_err(err, DM_E_INPUT, "%s:%zu: not a manifest line (no run_id)", path, lineno);
            break;
        }
        char *id = dup(sqlite3_column_text(q, 0));
        int rc = SQLITE_DONE;
        while (!st && (rc = sqlite3_step(ax)) == SQLITE_ROW) {
            if (nv == DM_REP_MAX_AXES) {
                st = dm_err(err, DM_E_INPUT, "%s:%zu: more than %d axes (the report shows at most %d)", path, lineno,
                            DM_REP_MAX_AXES, DM_REP_MAX_AXES);
                break;
            }
            if (lineno == 1 && !(w->axes[w->n_axes++] = dup(sqlite3_column_text(ax, 0))))
                st = dm_err(err, DM_E_NOMEM, "out of memory");
            if (!(vals[nv++] = dup(sqlite3_column_text(ax, 1))))
                st = dm_err(err, DM_E_NOMEM, "out of memory");
        }
        if (!st && (rc != SQLITE_DONE || nv != w->n_axes))
            st = dm_err(err, DM_E_INPUT, "%s:%zu: its axes differ from line 1's (%zu axes)", path, lineno, w->n_axes);
        /* the cell of these values: an existing one, or a new one */
        size_t c = 0;
        for (; !st && c < w->n_cells; c++) {
            size_t a = 0;
            while (a < nv && vals[a] && w->cells[c].vals[a] && strcmp(vals[a], w->cells[c].vals[a]) == 0)
                a++;
            if (a == nv)
                break;
        }
        if (!st && c == w->n_cells) {
            dm_rep_cell *more = dm_realloc(w->cells, sizeof(dm_rep_cell) * (w->n_cells + 1));
            if (!more) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
            } else {
                w->cells = more;
                memset(&w->cells[c], 0, sizeof(dm_rep_cell));
                for (size_t a = 0; a < nv; a++) {
                    w->cells[c].vals[a] = vals[a];
                    vals[a] = NULL;
                }
                w->n_cells++;
            }
        }
        if (!st) {
            char **ids = dm_realloc(w->cells[c].ids, sizeof(char *) * (w->cells[c].n_ids + 1));
            if (ids)
                w->cells[c].ids = ids;
            if (!ids || !id) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
            } else {
                w->cells[c].ids = ids;
                ids[w->cells[c].n_ids++] = id;
                id = NULL;
            }
        }
        dm_free(id);
        for (size_t a = 0; a < nv; a++)
            dm_free(vals[a]);
    }
    /* Table keys: the axis itself when the index knows it as a param, else KEY.type (an axis
     * over whole plug-in sections, {type: mlp}). */
    for (size_t a = 0; a < w->n_axes && !st; a++) {
        w->distinct[a] = w->n_cells ? 1 : 0;
        for (size_t c = 1; c < w->n_cells; c++) {
            size_t k = 0;
            while (k < c && strcmp(w->cells[k].vals[a], w->cells[c].vals[a]) != 0)
                k++;
            w->distinct[a] += k == c;
        }
        char k[300];
        snprintf(k, sizeof k, "%s.type", w->axes[a]);
        if (key_exists(r, w->axes[a]))
            w->keys[a] = dup((const unsigned char *)w->axes[a]);
        else if (key_exists(r, k))
            w->keys[a] = dup((const unsigned char *)k);
    }
out:
    sqlite3_finalize(q);
    sqlite3_finalize(ax);
    dm_free(text);
    return st;
}

dm_status dm_rep_sweep_runs(const dm_rep *r, const char *sweep, char ***ids, size_t *n, char *err)
{
    dm_rep_sweep w = { 0 };
    dm_status st = read_manifest(r, sweep, &w, err);
    size_t total = 0;
    for (size_t c = 0; c < w.n_cells; c++)
        total += w.cells[c].n_ids;
    *ids = st ? NULL : dm_calloc(total + 1, sizeof(char *));
    *n = 0;
    if (!st && !*ids)
        st = dm_err(err, DM_E_NOMEM, "out of memory");
    for (size_t c = 0; c < w.n_cells && !st; c++)
        for (size_t i = 0; i < w.cells[c].n_ids; i++) {
            (*ids)[(*n)++] = w.cells[c].ids[i];
            w.cells[c].ids[i] = NULL;
        }
    info_free(&w);
    return st;
}

/* The sweep's evals filters (dm_rep_sweep: samplers, nfes, fields). */
static void main_filters(const dm_rep *r, const char *sweep, dm_rep_sweep *w)
{
    static const char *const sql[3] = {
        "SELECT group_concat(v, ',') FROM (SELECT DISTINCT p.text_value AS v FROM params p JOIN sweep_runs w"
        " ON w.run_id = p.run_id WHERE w.sweep = ?1 AND p.key = 'sampler.type' ORDER BY v)",
        "SELECT group_concat(v, ',') FROM (SELECT DISTINCT s.nfe AS v FROM run_summary s JOIN sweep_runs w"
        " ON w.run_id = s.run_id WHERE w.sweep = ?1 AND s.eval_sampler IS s.sampler AND s.nfe IS NOT NULL ORDER BY v)",
        /* fields of the settings of the runs' own samplers' evals that take several values */
        "SELECT group_concat('settings.' || k, ',') FROM (SELECT j.key AS k FROM evals e JOIN sweep_runs w"
        " ON w.run_id = e.run_id JOIN params p ON p.run_id = e.run_id AND p.key = 'sampler.type'"
        " AND p.text_value = e.sampler, json_each(CASE WHEN json_valid(e.settings) THEN e.settings ELSE '{}' END) j"
        " WHERE w.sweep = ?1 GROUP BY j.key HAVING count(DISTINCT j.atom) > 1 ORDER BY j.key)",
    };
    char *out[3] = { w->samplers, w->nfes, w->fields };
    for (int k = 0; k < 3; k++) {
        sqlite3_stmt *q = NULL;
        out[k][0] = 0;
        if (sqlite3_prepare_v2(r->db, sql[k], -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, sweep, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
                snprintf(out[k], sizeof w->fields, "%s", (const char *)sqlite3_column_text(q, 0));
        }
        sqlite3_finalize(q);
    }
    /* A field an axis sets (sampler.steps, guidance.scale) is that axis already. */
    char kept[512] = "", buf[512];
    snprintf(buf, sizeof buf, "%s", w->fields);
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        if (strncmp(f, "settings.", 9) != 0 || !f[9])
            continue; /* cut short by the buffer */
        const char *field = f + strlen("settings.");
        int axis = 0;
        for (size_t a = 0; a < w->n_axes && !axis; a++) {
            const char *dot = strrchr(w->axes[a], '.');
            axis = dot && strcmp(dot + 1, field) == 0 &&
                   (strncmp(w->axes[a], "sampler.", 8) == 0 || strncmp(w->axes[a], "guidance.", 9) == 0);
        }
        if (!axis)
            snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "%s%s", *kept ? "," : "", f);
    }
    snprintf(w->fields, sizeof w->fields, "%s", kept);
}

/* The text "key=value, ..." of a cell. */
static void cell_label(const dm_rep_sweep *w, const dm_rep_cell *c, char *buf, size_t n)
{
    buf[0] = 0;
    for (size_t a = 0; a < w->n_axes; a++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", a ? ", " : "", w->axes[a], c->vals[a]);
}

/* The picture of every cell: its first finished run's main sample set, side by side. */
static dm_status cell_pictures(FILE *f, const dm_rep *r, const dm_rep_sweep *w, char *err)
{
    fputs("<h2 id=\"samples\">Samples of every cell</h2>\n<p class=\"muted\">Each cell's first finished run "
          "(lowest seed), its own sampler.</p>\n<div class=\"figs cells\">\n", f);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT r.path, s.eval_sampler, s.nfe, r.seed FROM runs r JOIN run_summary s"
                           " ON s.run_id = r.run_id WHERE r.run_id = ? AND r.status = 'finished'", -1, &q, NULL) !=
        SQLITE_OK)
        return dm_err(err, DM_E_IO, "report: %s", sqlite3_errmsg(r->db));
    dm_status st = DM_OK;
    for (size_t c = 0; c < w->n_cells && !st; c++) {
        char label[1024], stem[300];
        cell_label(w, &w->cells[c], label, sizeof label);
        fputs("<figure class=\"cell\">", f);
        int shown = 0;
        for (size_t i = 0; i < w->cells[c].n_ids && !shown && !st; i++) {
            const char *id = w->cells[c].ids[i];
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_text(q, 0) || !sqlite3_column_text(q, 1))
                continue;
            snprintf(stem, sizeof stem, "%s_%lld", (const char *)sqlite3_column_text(q, 1),
                     (long long)sqlite3_column_int64(q, 2));
            st = dm_rep_picture(r, f, (const char *)sqlite3_column_text(q, 0), id, stem, NULL, "../runs/", label,
                                &shown, err);
            if (shown) {
                fputs("<figcaption>", f);
                dm_xml_put(f, label);
                fprintf(f, "<br>seed %lld: ", (long long)sqlite3_column_int64(q, 3));
                dm_rep_run_link(r, f, "../", id);
                fputs("</figcaption>", f);
            }
        }
        if (!shown && !st) {
            fputs("<p class=\"muted\">no picture: no finished run</p><figcaption>", f);
            dm_xml_put(f, label);
            fputs("</figcaption>", f);
        }
        fputs("</figure>\n", f);
    }
    sqlite3_finalize(q);
    fputs("</div>\n", f);
    return st;
}

/* The runs, cell by cell, with their status in the index ("not run" when absent). */
static void runs_table(FILE *f, const dm_rep *r, const dm_rep_sweep *w, size_t counts[4])
{
    sqlite3_stmt *q = NULL;
    const int ok = sqlite3_prepare_v2(r->db, "SELECT status FROM runs WHERE run_id = ?", -1, &q, NULL) == SQLITE_OK;
    fputs("<h2 id=\"runs\">Runs</h2>\n<table class=\"runs\"><thead><tr>", f);
    for (size_t a = 0; a < w->n_axes; a++) {
        fputs("<th>", f);
        dm_xml_put(f, w->axes[a]);
        fputs("</th>", f);
    }
    fputs("<th>run</th><th>status</th></tr></thead><tbody>\n", f);
    for (size_t c = 0; c < w->n_cells; c++)
        for (size_t i = 0; i < w->cells[c].n_ids; i++) {
            const char *id = w->cells[c].ids[i], *status = "not run";
            fputs("<tr>", f);
            for (size_t a = 0; a < w->n_axes; a++) {
                fputs("<td>", f);
                dm_xml_put(f, w->cells[c].vals[a]);
                fputs("</td>", f);
            }
            fputs("<td>", f);
            dm_rep_run_link(r, f, "../", id);
            if (ok) {
                sqlite3_reset(q);
                sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
                if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
                    status = (const char *)sqlite3_column_text(q, 0);
            }
            counts[strcmp(status, "finished") == 0 ? 0 : strcmp(status, "not run") == 0 ? 1
                   : strcmp(status, "running") == 0 ? 2 : 3]++;
            fputs("</td><td class=\"status-", f);
            dm_xml_put(f, status);
            fputs("\">", f);
            dm_xml_put(f, status);
            fputs("</td></tr>\n", f);
        }
    fputs("</tbody></table>\n", f);
    sqlite3_finalize(q);
}

/* The metrics the sweep's runs have from their samplers (not the noise baseline or the floor), in
 * the order first recorded; NULL-terminated, each to free. */
static dm_status sweep_metrics(const dm_rep *r, const char *sweep, char ***out, char *err)
{
    sqlite3_stmt *q = NULL;
    size_t n = 0;
    *out = dm_calloc(65, sizeof(char *));
    if (!*out)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    if (sqlite3_prepare_v2(r->db, "SELECT e.metric FROM evals e JOIN sweep_runs w ON w.run_id = e.run_id"
                           " WHERE w.sweep = ? AND e.sampler NOT IN ('noise', 'exact') GROUP BY e.metric"
                           " ORDER BY min(e.rowid)", -1, &q, NULL) != SQLITE_OK)
        return dm_err(err, DM_E_IO, "report: %s", sqlite3_errmsg(r->db));
    sqlite3_bind_text(q, 1, sweep, -1, SQLITE_STATIC);
    while (n < 64 && sqlite3_step(q) == SQLITE_ROW)
        if (!((*out)[n++] = dup(sqlite3_column_text(q, 0)))) {
            sqlite3_finalize(q);
            return dm_err(err, DM_E_NOMEM, "out of memory");
        }
    sqlite3_finalize(q);
    return DM_OK;
}

static void free_list(char **l)
{
    for (size_t i = 0; l && l[i]; i++)
        dm_free(l[i]);
    dm_free(l);
}

/* One table into the page; a table with no matching run says so instead. */
static dm_status put_table(FILE *f, const dm_rep *r, const dm_table_def *d, const char *heading, char *err)
{
    dm_table *t = NULL;
    dm_status st = dm_table_build(r->ix, d, &t, err);
    fputs("<div class=\"tbl\"><h3>", f);
    dm_xml_put(f, heading);
    fputs("</h3>\n", f);
    if (st == DM_E_NOTFOUND) {
        fputs("<p class=\"muted\">No finished run has a value yet.</p></div>\n", f);
        return DM_OK;
    }
    if (!st) {
        st = dm_table_write(t, DM_TABLE_HTML, f, err);
        for (size_t i = 0; i < t->n_notes; i++) {
            fputs("<p class=\"muted note\">", f);
            dm_xml_put(f, t->notes[i]);
            fputs("</p>\n", f);
        }
    }
    fputs("</div>\n", f);
    dm_table_free(t);
    return st;
}

static dm_status tables(FILE *f, const dm_rep *r, const char *sweep, const dm_rep_sweep *w, char *const *metrics,
                        char *err)
{
    dm_status st = DM_OK;
    fputs("<h2 id=\"tables\">Tables</h2>\n<div class=\"tables\">\n", f);
    for (size_t i = 0; i < r->o->n_defs && !st; i++) { /* the study's own tables */
        dm_table_def d;
        dm_table_def_init(&d);
        if (!(st = dm_table_def_load(&d, r->o->defs[i], err)) && !d.sweep)
            st = dm_table_def_set(&d, "sweep", sweep, "report", err);
        if (!st) { /* the heading: the file's first comment line (as study.sh's RESULTS.md), else its path */
            char *text = NULL, heading[512];
            size_t len = 0, k = 0;
            snprintf(heading, sizeof heading, "%s", r->o->defs[i]);
            if (dm_read_file(r->o->defs[i], (size_t)1 << 20, &text, &len, err) == DM_OK && text[0] == '#') {
                const char *c = text + 1;
                while (*c == ' ')
                    c++;
                while (c[k] && c[k] != '\n' && k + 1 < sizeof heading)
                    k++;
                snprintf(heading, sizeof heading, "%.*s", (int)k, c);
            }
            dm_free(text);
            st = put_table(f, r, &d, heading, err);
        }
        dm_table_def_free(&d);
    }
    if (r->o->n_defs) {
        fputs("</div>\n", f);
        return st;
    }
    char rows[1024];
    if (!dm_rep_row_keys(w, (size_t)-1, rows, sizeof rows)) {
        fputs("<p class=\"muted\">Too many axes and settings fields for a table (at most 8 row keys): "
              "<code>difflab table --sweep</code> with the keys of interest.</p>\n</div>\n", f);
        return DM_OK;
    }
    if (!*rows) {
        fputs("<p class=\"muted\">The sweep has no axis of two or more values that the index knows as a spec key.</p>\n", f);
        snprintf(rows, sizeof rows, "seed");
    }
    for (size_t m = 0; metrics[m] && !st; m++) {
        dm_table_def d;
        dm_table_def_init(&d);
        if (!(st = dm_table_def_set(&d, "sweep", sweep, "report", err)) &&
            !(st = dm_table_def_set(&d, "metric", metrics[m], "report", err)) &&
            !(st = dm_table_def_set(&d, "rows", rows, "report", err)) &&
            !(st = dm_table_def_set(&d, "sampler", w->samplers, "report", err)) &&
            !(st = dm_table_def_set(&d, "nfe", w->nfes, "report", err)))
            st = put_table(f, r, &d, metrics[m], err);
        dm_table_def_free(&d);
    }
    fputs("</div>\n", f);
    return st;
}

dm_status dm_rep_sweep_page(dm_rep *r, const char *sweep, char *err)
{
    dm_rep_sweep w = { 0 };
    char path[DM_PATH_SIZE], title[300];
    char **metrics = NULL;
    dm_page pg = { 0 };
    dm_status st;
    if ((st = read_manifest(r, sweep, &w, err)) || (st = sweep_metrics(r, sweep, &metrics, err)) ||
        (st = dm_path_fmt(path, sizeof path, err, "%s/sweeps/%s.html", r->o->out, sweep)))
        goto out;
    snprintf(title, sizeof title, "sweep %s", sweep);
    if ((st = dm_page_open(&pg, path, title, "../", err)))
        goto out;
    FILE *f = pg.f;
    main_filters(r, sweep, &w);
    fputs("<p><a href=\"#tables\">tables</a> · <a href=\"#plots\">plots</a> · <a href=\"#samples\">samples</a>"
          " · <a href=\"#runs\">runs</a></p>\n<p>", f);
    fprintf(f, "%zu cells", w.n_cells);
    for (size_t a = 0; a < w.n_axes; a++) {
        fputs(a ? ", " : " over ", f);
        dm_xml_put(f, w.axes[a]);
    }
    fputs(". Each cell is one config group; its replicates are its seeds. Metrics are of each run's own "
          "sampler", f);
    if (*w.samplers) {
        fputs(" (", f);
        dm_xml_put(f, w.samplers);
        if (*w.nfes) {
            fputs(", NFE ", f);
            dm_xml_put(f, w.nfes);
        }
        fputs(")", f);
    }
    if (*w.fields) {
        fputs("; their evals differ in ", f);
        dm_xml_put(f, w.fields);
        fputs(" (sampled after training), a row of each table and a line of each plot per value", f);
    }
    fputs(".</p>\n", f);
    if (w.yaml) {
        fputs("<details><summary>sweep.yaml</summary>\n", f);
        dm_html_pre(f, "sweep-yaml", w.yaml);
        fputs("</details>\n", f);
    }
    if ((st = tables(f, r, sweep, &w, metrics, err)))
        goto out;
    fputs("<h2 id=\"plots\">Plots</h2>\n<div class=\"figs\">\n", f);
    size_t n_plots = 0;
    for (size_t m = 0; metrics[m] && !st; m++)
        for (size_t a = 0; a < w.n_axes && !st; a++) {
            if (w.distinct[a] < 2 || !w.keys[a])
                continue;
            int drawn = 0;
            st = dm_rep_axis_plot(f, r, sweep, &w, a, metrics[m], &drawn, err);
            n_plots += (size_t)drawn;
        }
    fputs("</div>\n", f);
    if (!n_plots)
        fputs("<p class=\"muted\">No axis with two values and a metric to plot.</p>\n", f);
    size_t counts[4] = { 0 };
    if (st || (st = cell_pictures(f, r, &w, err)))
        goto out;
    runs_table(f, r, &w, counts);
    fprintf(f, "<p class=\"counts\">%zu finished, %zu not run, %zu running, %zu failed or other</p>\n", counts[0],
            counts[1], counts[2], counts[3]);
    st = dm_page_close(&pg, NULL, err);
    if (!st && r->o->log)
        fprintf(r->o->log, "report: %s\n", path);
out:
    dm_page_discard(&pg);
    free_list(metrics);
    info_free(&w);
    return st;
}
