/* report_index.c — the report's index page: every run of the index with the columns of `difflab
 * runs` (report/runlist.h) and its tags, filtered in the page by status, name, sweep and tag; the
 * sweeps with pages. Then dm_report_write, which writes the pages asked for. */
#include "report/report_internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "report/runlist.h"

/* The filters: each row carries data-status, data-name, data-sweeps (space-separated) and
 * data-tags ("k=v" lines); a row shows when it passes all four. */
static const char filter_js[] =
    "(function(){\n"
    "var q=function(id){return document.getElementById(id);};\n"
    "var rows=[].slice.call(document.querySelectorAll('#runs tbody tr'));\n"
    "function apply(){\n"
    "  var st=q('f-status').value,nm=q('f-name').value.trim(),sw=q('f-sweep').value,tg=q('f-tag').value.trim();\n"
    "  var shown=0;\n"
    "  rows.forEach(function(r){\n"
    "    var d=r.dataset,ok=(!st||d.status===st)&&(!nm||d.name.indexOf(nm)>=0||d.id.indexOf(nm)===0)\n"
    "      &&(!sw||(' '+d.sweeps+' ').indexOf(' '+sw+' ')>=0);\n"
    "    if(ok&&tg){var tags=d.tags?d.tags.split('\\n'):[];ok=tags.some(function(t){\n"
    "      return tg.indexOf('=')>=0?t===tg:t.split('=')[0]===tg;});}\n"
    "    r.style.display=ok?'':'none';if(ok)shown++;});\n"
    "  q('f-count').textContent=shown+' of '+rows.length+' runs';\n"
    "}\n"
    "['f-status','f-name','f-sweep','f-tag'].forEach(function(id){q(id).addEventListener('input',apply);});\n"
    "apply();\n"
    "})();\n";

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* <option>s of the distinct values of an SQL query's first column. */
static void options(FILE *f, sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        if (!v)
            continue;
        fputs("<option>", f);
        dm_xml_put(f, v);
        fputs("</option>", f);
    }
    sqlite3_finalize(q);
}

dm_status dm_rep_index_page(dm_rep *r, char *err)
{
    char path[DM_PATH_SIZE];
    dm_page pg;
    dm_status st;
    if ((st = dm_path_fmt(path, sizeof path, err, "%s/index.html", r->o->out)) ||
        (st = dm_page_open(&pg, path, "runs", "", err)))
        return st;
    FILE *f = pg.f;
    /* the sweeps whose pages are in the folder */
    DIR *dir;
    char sweeps_dir[DM_PATH_SIZE];
    snprintf(sweeps_dir, sizeof sweeps_dir, "%s/sweeps", r->o->out);
    if ((dir = opendir(sweeps_dir))) {
        char *names[1024];
        size_t n = 0;
        for (struct dirent *e; (e = readdir(dir)) && n < 1024;) {
            const size_t len = strlen(e->d_name);
            if (e->d_name[0] != '.' && len > 5 && strcmp(e->d_name + len - 5, ".html") == 0 &&
                (names[n] = dm_strdup(e->d_name)))
                n++;
        }
        closedir(dir);
        qsort(names, n, sizeof *names, cmp_names);
        if (n)
            fputs("<h2>Sweeps</h2>\n<ul class=\"sweeps\">\n", f);
        for (size_t i = 0; i < n; i++) {
            names[i][strlen(names[i]) - 5] = 0;
            fputs("<li><a class=\"sweep\" href=\"sweeps/", f);
            dm_xml_put(f, names[i]);
            fputs(".html\">", f);
            dm_xml_put(f, names[i]);
            fputs("</a></li>\n", f);
            dm_free(names[i]);
        }
        if (n)
            fputs("</ul>\n", f);
    }
    fputs("<h2>Runs</h2>\n<div class=\"filters\">"
          "<label>status <select id=\"f-status\"><option value=\"\">any</option>"
          "<option>running</option><option>dead</option><option>finished</option><option>failed</option>"
          "<option>diverged</option><option>interrupted</option></select></label>"
          "<label>name or id <input id=\"f-name\" type=\"search\" size=\"18\"></label>"
          "<label>sweep <select id=\"f-sweep\"><option value=\"\">any</option>",
          f);
    options(f, r->db, "SELECT DISTINCT sweep FROM sweep_runs ORDER BY sweep");
    fputs("</select></label><label>tag <input id=\"f-tag\" type=\"search\" size=\"16\" placeholder=\"key or key=value\">"
          "</label><span id=\"f-count\" class=\"muted\"></span></div>\n<table id=\"runs\" class=\"runs\"><thead><tr>",
          f);
    for (size_t c = 0; c < dm_runlist_n_cols; c++)
        fprintf(f, "<th>%s</th>", dm_runlist_cols[c].name);
    fputs("<th>tags</th></tr></thead>\n<tbody>\n", f);

    /* the columns of `difflab runs`, then the tags as "k=v" lines */
    char *sql = sqlite3_mprintf("%s", "SELECT");
    for (size_t c = 0; c < dm_runlist_n_cols && sql; c++) {
        char *more = sqlite3_mprintf("%s%s %s", sql, c ? "," : "", dm_runlist_cols[c].expr);
        sqlite3_free(sql);
        sql = more;
    }
    char *full = sql ? sqlite3_mprintf("%s, (SELECT group_concat(key || '=' || value, char(10)) FROM (SELECT key, "
                                       "value FROM tags t WHERE t.run_id = r.run_id ORDER BY key)) FROM runs r "
                                       "LEFT JOIN run_summary s ON s.run_id = r.run_id ORDER BY r.created, r.run_id",
                                       sql)
                     : NULL;
    sqlite3_free(sql);
    sqlite3_stmt *q = NULL;
    if (!full || sqlite3_prepare_v2(r->db, full, -1, &q, NULL) != SQLITE_OK) {
        st = dm_err(err, DM_E_IO, "report: listing the runs: %s", full ? sqlite3_errmsg(r->db) : "out of memory");
        sqlite3_free(full);
        dm_page_discard(&pg);
        return st;
    }
    sqlite3_free(full);
    const int nc = (int)dm_runlist_n_cols;
    while (sqlite3_step(q) == SQLITE_ROW) {
#define COLTEXT(i) (sqlite3_column_text(q, (i)) ? (const char *)sqlite3_column_text(q, (i)) : "")
        fputs("<tr data-id=\"", f);
        dm_xml_put(f, COLTEXT(0));
        fputs("\" data-name=\"", f);
        dm_xml_put(f, COLTEXT(1));
        fputs("\" data-status=\"", f);
        dm_xml_put(f, COLTEXT(2));
        fputs("\" data-sweeps=\"", f);
        dm_xml_put(f, COLTEXT(4));
        fputs("\" data-tags=\"", f);
        dm_xml_put(f, COLTEXT(nc));
        fputs("\">", f);
        for (int c = 0; c < nc; c++) {
            const dm_runlist_kind k = dm_runlist_cols[c].kind;
            fputs(k == DM_RUNLIST_NUM || k == DM_RUNLIST_WALL || k == DM_RUNLIST_INT ? "<td class=\"num\">" : "<td>", f);
            if (c == 0) {
                dm_rep_run_link(r, f, "", COLTEXT(0));
            } else if (c == 2) {
                fputs("<span class=\"status-", f);
                dm_xml_put(f, COLTEXT(2));
                fputs("\">", f);
                dm_xml_put(f, COLTEXT(2));
                fputs("</span>", f);
            } else if (sqlite3_column_type(q, c) == SQLITE_NULL) {
            } else if (k == DM_RUNLIST_NUM) {
                dm_html_num(f, sqlite3_column_double(q, c));
            } else if (k == DM_RUNLIST_WALL) {
                fprintf(f, "%.1f", sqlite3_column_double(q, c));
            } else {
                dm_xml_put(f, COLTEXT(c));
            }
            fputs("</td>", f);
        }
        fputs("<td class=\"tags\">", f);
        dm_xml_put(f, COLTEXT(nc));
        fputs("</td></tr>\n", f);
#undef COLTEXT
    }
    sqlite3_finalize(q);
    fputs("</tbody></table>\n", f);
    if ((st = dm_page_close(&pg, filter_js, err)))
        return st;
    if (r->o->log)
        fprintf(r->o->log, "report: %s\n", path);
    return DM_OK;
}

/* The ids of every run of the index, in creation order (NULL-terminated, each to free). */
static dm_status all_runs(const dm_rep *r, char ***ids, size_t *n, char *err)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 64;
    *n = 0;
    if (!(*ids = dm_calloc(cap, sizeof(char *))))
        return dm_err(err, DM_E_NOMEM, "out of memory");
    if (sqlite3_prepare_v2(r->db, "SELECT run_id FROM runs ORDER BY created, run_id", -1, &q, NULL) != SQLITE_OK)
        return dm_err(err, DM_E_IO, "report: %s", sqlite3_errmsg(r->db));
    dm_status st = DM_OK;
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        if (!id || !dm_path_name_ok(id))
            continue; /* not a run id difflab makes (a crafted index): it names no page */
        if (*n + 1 >= cap) {
            char **more = dm_realloc(*ids, sizeof(char *) * cap * 2);
            if (!more) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
                break;
            }
            memset(more + cap, 0, sizeof(char *) * cap);
            *ids = more;
            cap *= 2;
        }
        if (!((*ids)[*n] = dm_strdup(id)))
            st = dm_err(err, DM_E_NOMEM, "out of memory");
        else
            (*n)++;
    }
    sqlite3_finalize(q);
    return st;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        dm_free(ids[i]);
    dm_free(ids);
}

/* Whether id is among the first n of ids. */
static int listed(char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

dm_status dm_report_write(const dm_report_opts *o, char *err)
{
    dm_rep r = { .o = o, .vet = DM_RUNFILE_VETTER_INIT };
    char path[DM_PATH_SIZE];
    char **ids = NULL, **sweeps = NULL;
    size_t n_ids = 0, n_sweeps = 0;
    dm_status st;
    if ((st = dm_path_fmt(path, sizeof path, err, "%s/index.sqlite", o->results)) ||
        (st = dm_index_open(path, 1, &r.ix, err)))
        return st;
    r.db = dm_index_db(r.ix);
    if ((st = dm_runlist_register(r.db, o->results, err)))
        goto out;
    /* Everything named is checked before a page is written. */
    const int everything = o->all || (!o->n_runs && !o->n_sweeps);
    if (!(ids = dm_calloc(DM_REPORT_MAX_ITEMS + 1, sizeof(char *))) ||
        !(sweeps = dm_calloc(DM_REPORT_MAX_ITEMS + 1, sizeof(char *)))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory");
        goto out;
    }
    if (everything) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(r.db, "SELECT DISTINCT sweep FROM sweep_runs ORDER BY sweep", -1, &q, NULL) == SQLITE_OK)
            while (n_sweeps < DM_REPORT_MAX_ITEMS && sqlite3_step(q) == SQLITE_ROW) {
                const char *s = (const char *)sqlite3_column_text(q, 0);
                char m[DM_PATH_SIZE];
                snprintf(m, sizeof m, "%s/sweeps/%s/manifest.jsonl", o->results, s ? s : "");
                if (s && dm_path_name_ok(s) && dm_rep_file_exists(m) && (sweeps[n_sweeps] = dm_strdup(s)))
                    n_sweeps++;
            }
        sqlite3_finalize(q);
        free_ids(ids, 0);
        ids = NULL;
        if ((st = all_runs(&r, &ids, &n_ids, err)))
            goto out;
    } else {
        for (size_t i = 0; i < o->n_sweeps; i++) {
            char m[DM_PATH_SIZE];
            if ((st = dm_path_fmt(m, sizeof m, err, "%s/sweeps/%s/manifest.jsonl", o->results, o->sweeps[i])))
                goto out;
            if (!dm_path_name_ok(o->sweeps[i]) || !dm_rep_file_exists(m)) {
                st = dm_err(err, DM_E_INPUT, "report --sweep: no sweep '%s' in %s/sweeps", o->sweeps[i], o->results);
                goto out;
            }
            if (!(sweeps[n_sweeps] = dm_strdup(o->sweeps[i]))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
                goto out;
            }
            n_sweeps++;
        }
        for (size_t i = 0; i < o->n_runs; i++) {
            char id[512];
            if ((st = dm_index_find_run(r.ix, o->runs[i], id, sizeof id, err))) {
                if (st == DM_E_NOTFOUND)
                    st = dm_err(err, DM_E_INPUT, "report: no run '%s' in the index", o->runs[i]);
                goto out;
            }
            if (!dm_path_name_ok(id)) {
                st = dm_err(err, DM_E_INPUT, "report: the index names run '%s', which is not a run id", id);
                goto out;
            }
            if (!listed(ids, n_ids, id) && !(ids[n_ids++] = dm_strdup(id))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    /* Run pages first (the sweep pages link to them), then sweeps, then the index. */
    for (size_t s = 0; s < n_sweeps && !everything && !st; s++) {
        char **sw = NULL;
        size_t n = 0;
        if (!(st = dm_rep_sweep_runs(&r, sweeps[s], &sw, &n, err)))
            for (size_t i = 0; i < n && !st; i++) {
                char page_id[512];
                if (!dm_path_name_ok(sw[i]) || dm_index_find_run(r.ix, sw[i], page_id, sizeof page_id, err) != DM_OK ||
                    strcmp(page_id, sw[i]) != 0 || listed(ids, n_ids, sw[i]))
                    continue; /* not run yet, or listed */
                char **more = dm_realloc(ids, sizeof(char *) * (n_ids + 2));
                if (!more) {
                    st = dm_err(err, DM_E_NOMEM, "out of memory");
                    break;
                }
                ids = more;
                ids[n_ids++] = sw[i];
                ids[n_ids] = NULL;
                sw[i] = NULL;
            }
        free_ids(sw, n);
    }
    r.runs = ids;
    r.n_runs = n_ids;
    r.sweeps = sweeps;
    r.n_sweeps = n_sweeps;
    for (size_t i = 0; i < n_ids && !st; i++)
        st = dm_rep_run_page(&r, ids[i], err);
    for (size_t s = 0; s < n_sweeps && !st; s++)
        st = dm_rep_sweep_page(&r, sweeps[s], err);
    if (!st)
        st = dm_rep_index_page(&r, err);
out:
    free_ids(ids, n_ids);
    free_ids(sweeps, n_sweeps);
    dm_runfile_vetter_end(&r.vet);
    dm_index_close(r.ix);
    return st;
}
