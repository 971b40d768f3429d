/* report_internal.h — shared by report*.c (the report's pages) and page.c (HTML pieces); not an
 * API: see report.h. */
#ifndef DM_REPORT_REPORT_INTERNAL_H
#define DM_REPORT_REPORT_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

#include "core/path.h"
#include "core/xml.h"
#include "io/index.h"
#include "io/runfile_vet.h"
#include "report/report.h"

typedef struct dm_rep {
    const dm_report_opts *o;
    dm_index *ix;
    sqlite3 *db;
    dm_runfile_vetter vet;   /* one child process reads every run file first (runfile_vet.h) */
    char **runs;             /* the run pages and sweep pages this report writes (links to them do */
    size_t n_runs;           /* not depend on the order the pages are written in) */
    char **sweeps;
    size_t n_sweeps;
} dm_rep;

/* ---- page.c: pages and their pieces ---- */

/* A page being written: built in memory, then written atomically to path. */
typedef struct dm_page {
    FILE *f;
    char *buf;
    size_t n;
    char path[DM_PATH_SIZE];
} dm_page;

/* Start the page at path (its folder made) with a title; root is the way from its folder to the
 * report's ("" or "../"), for the stylesheet-free links back to the index. */
dm_status dm_page_open(dm_page *pg, const char *path, const char *title, const char *root, char *err);
/* End the page (with script, inline, or NULL) and write it. The page is freed either way. */
dm_status dm_page_close(dm_page *pg, const char *script, char *err);
/* Free a page not written. */
void dm_page_discard(dm_page *pg);

/* A <pre> block of s. */
void dm_html_pre(FILE *f, const char *klass, const char *s);
/* A number as a table shows it: 4 significant digits, "" for NaN. */
void dm_html_num(FILE *f, double v);

/* A log axis for these values: every finite one positive, spanning more than a factor of 20. */
int dm_rep_wants_log(const double *v, size_t n);

/* Make the folders of path (mkdir -p of its dirname). */
dm_status dm_rep_mkdirs_for(const char *path, char *err);
/* Copy file src to dst (atomically). */
dm_status dm_rep_copy(const char *src, const char *dst, char *err);
/* Whether a regular file exists at path. */
int dm_rep_file_exists(const char *path);
/* Inline the SVG file at path into the page when it is a plot as io/plot.c writes it (checked
 * against an allowlist of its elements and attributes: no script, handler or link can come in);
 * 0 if unreadable or not such a plot. */
int dm_rep_inline_svg(FILE *f, const char *path);

/* The picture <stem> of a run folder into the page, after `open` (a tag the caller closes; NULL:
 * none) when there is one: the SVG plot
 * inlined (dm_rep_inline_svg; one that fails its allowlist shows "(unreadable picture)"), else the
 * PNG copied to <out>/runs/<run_id>/<stem>.png and shown by an <img> (alt text alt) whose src
 * starts with to_runs, the way from the page's folder to <out>/runs/ ("" from a run page,
 * "../runs/" from a sweep page). *shown: whether the folder has either; nothing is written
 * otherwise, nor for a stem or run id that is not a path name. */
dm_status dm_rep_picture(const dm_rep *r, FILE *f, const char *run_dir, const char *run_id, const char *stem,
                         const char *open, const char *to_runs, const char *alt, int *shown, char *err);

/* The id of the run's page, linked from a page whose way to the report's root is root: a link
 * when this report writes that page or <out>/runs/<id>.html exists, else the plain id. */
void dm_rep_run_link(const dm_rep *r, FILE *f, const char *root, const char *run_id);
/* Whether the sweep's page is written by this report or is in the folder. */
int dm_rep_has_sweep_page(const dm_rep *r, const char *sweep);

#define DM_REP_MAX_AXES 16

/* ---- report_sweep.c, report_sweep_plot.c: a sweep ---- */

/* A cell of the sweep: one value per axis (the manifest's text), and its runs (one per seed). */
typedef struct dm_rep_cell {
    char *vals[DM_REP_MAX_AXES];
    char **ids;
    size_t n_ids;
} dm_rep_cell;

typedef struct dm_rep_sweep {
    char *axes[DM_REP_MAX_AXES];      /* the manifest's axis keys */
    char *keys[DM_REP_MAX_AXES];      /* the table key of each (the key, or KEY.type for a section), or NULL */
    size_t distinct[DM_REP_MAX_AXES]; /* how many values each takes (an axis of one value is not a key) */
    size_t n_axes;
    dm_rep_cell *cells;
    size_t n_cells;
    char *yaml;                /* sweep.yaml, if present */
    /* The evals shown: the runs' own samplers and NFEs (table filters "a,b"), and the settings
     * fields in which those evals differ beyond the axes (settings.F keys: a cfg study's scales
     * sampled after training), so that no cell pools evals of different settings. */
    char samplers[512], nfes[512], fields[512];
} dm_rep_sweep;

/* The row keys of the sweep's tables and plots: the axes of two or more values the index knows
 * (but axis skip, the plot's column; (size_t)-1: none), then the settings fields. 0 when they do
 * not fit a table (DM_TABLE_MAX_KEYS keys, n bytes): the page then says so instead. */
int dm_rep_row_keys(const dm_rep_sweep *w, size_t skip, char *rows, size_t n);
/* The plot of metric against axis a into the page (report_sweep_plot.c); *drawn: whether one
 * was written (none when no finished run has the metric). */
dm_status dm_rep_axis_plot(FILE *f, const dm_rep *r, const char *sweep, const dm_rep_sweep *w, size_t a,
                           const char *metric, int *drawn, char *err);

/* ---- the pages ---- */
dm_status dm_rep_run_page(dm_rep *r, const char *run_id, char *err);     /* report_run.c */
dm_status dm_rep_sweep_page(dm_rep *r, const char *sweep, char *err);    /* report_sweep.c */
dm_status dm_rep_index_page(dm_rep *r, char *err);                       /* report_index.c */

/* The runs of a sweep, from its manifest (results/sweeps/<name>/manifest.jsonl), in line
 * order (report_sweep.c); *ids is an array of n strings (free each, then the array). */
dm_status dm_rep_sweep_runs(const dm_rep *r, const char *sweep, char ***ids, size_t *n, char *err);

#endif
