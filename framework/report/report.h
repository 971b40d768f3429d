/* report.h — `difflab report`: a static, self-contained HTML report of runs and sweeps, one
 * folder that opens from disk with no server and no network (docs/report.md).
 *
 *   <out>/index.html           every run of the index, filterable by status, name, sweep, tag
 *   <out>/runs/<run_id>.html   a run: loss and gradient-norm curves against step and wall time,
 *                              every eval (metric against NFE per sampler), its sample pictures,
 *                              its provenance (spec, seeds, commit, build, BLAS, host, links to
 *                              its teacher, classifier and feature network)
 *   <out>/runs/<run_id>/       the run's PNG pictures, copied (SVG plots are inlined)
 *   <out>/sweeps/<name>.html   a sweep: its tables, a plot per metric against each axis (mean ±
 *                              std over seeds, a line per value of the other axes; cells as
 *                              `difflab table` builds them, so never pooling configs), the
 *                              sample picture of every cell side by side, and its runs
 *
 * Plots are SVG (io/plot.h), inlined. Pages are written atomically; an existing folder is
 * updated (pages of other runs already there stay and are linked). Reads the index and the run
 * files; writes only under out. */
#ifndef DM_REPORT_REPORT_H
#define DM_REPORT_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

#define DM_REPORT_MAX_ITEMS 256

typedef struct dm_report_opts {
    const char *results;    /* the results folder: its index.sqlite, runs/ and sweeps/ */
    const char *out;        /* the report folder (created) */
    const char *runs[DM_REPORT_MAX_ITEMS];   /* run ids or unique prefixes: a page each */
    size_t n_runs;
    const char *sweeps[DM_REPORT_MAX_ITEMS]; /* sweep names: a page each, and its runs' pages */
    size_t n_sweeps;
    const char *defs[DM_REPORT_MAX_ITEMS];   /* table definitions (difflab table --def) for the
                                              * sweep pages; none: one table per metric */
    size_t n_defs;
    int all;                /* no runs or sweeps named: every sweep and every run */
    FILE *log;              /* one line per page written (NULL: quiet) */
} dm_report_opts;

/* Write the report. Unknown runs or sweeps are DM_E_INPUT (nothing written); a run whose files
 * cannot be read gets a page saying so (the error named), not a failure of the report. */
dm_status dm_report_write(const dm_report_opts *o, char *err);

#endif
