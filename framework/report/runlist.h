/* runlist.h — the columns that list runs, shared by `difflab runs` (cli/cmd_runs.c) and the
 * report's index page (report/report_index.c), so both show the same numbers: SQL expressions
 * over the index's runs table (alias r) joined with its run_summary view (alias s).
 *
 * status: a run whose record says running but whose lock no process on this host holds is
 * "dead" (SQL run_alive(), registered by dm_runlist_register); loss: the last point of the
 * series; sampler: the spec's; nfe, swd, mmd2, fd: of the run's main sample set (its own
 * sampler with its own settings; empty when that sampler has no evals, never another sampler's
 * added later by `difflab sample`). */
#ifndef DM_REPORT_RUNLIST_H
#define DM_REPORT_RUNLIST_H

#include <sqlite3.h>
#include <stddef.h>

#include "core/status.h"

/* The eval of `metric` (an SQL literal) in run r's main sample set s: its sampler and NFE, and
 * settings that agree with the set's on every field the set has (an fd eval's settings add the
 * feature network), the fewest added first (the shortest text; SQLite 3.40 cannot refer to the
 * view's s in this ORDER BY). Only when that set is the run's own sampler. */
#define DM_RUNLIST_MAIN_EVAL(metric)                                                                \
    "(SELECT e.value FROM evals e WHERE e.run_id = r.run_id AND e.metric = " metric                 \
    " AND s.eval_sampler IS s.sampler AND e.sampler IS s.eval_sampler AND e.nfe IS s.nfe"           \
    " AND json_valid(e.settings) AND NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN"                 \
    " json_valid(s.eval_settings) THEN s.eval_settings ELSE '{}' END) j"                            \
    " WHERE json_extract(e.settings, '$.\"' || j.key || '\"') IS NOT j.atom)"                       \
    " ORDER BY length(e.settings), e.rowid DESC LIMIT 1)"

typedef enum dm_runlist_kind { DM_RUNLIST_TEXT, DM_RUNLIST_INT, DM_RUNLIST_WALL, DM_RUNLIST_NUM } dm_runlist_kind;

typedef struct dm_runlist_col {
    const char *name, *expr;
    dm_runlist_kind kind; /* how a table formats it */
} dm_runlist_col;

/* The default columns, in order: run_id, name, status, seed, sweep, created, wall_s, loss,
 * sampler, nfe, swd, mmd2, fd. */
extern const dm_runlist_col dm_runlist_cols[];
extern const size_t dm_runlist_n_cols;

/* Register run_alive(run_id) on db for the runs of the results folder (which must outlive db). */
dm_status dm_runlist_register(sqlite3 *db, const char *results, char *err);

#endif
