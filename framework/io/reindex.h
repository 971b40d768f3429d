/* reindex.h — `difflab reindex`: rebuild results/index.sqlite from the run files.
 *
 * The run files are the source of truth and the index is derived from them, so a lost, corrupt
 * or outdated index can always be rebuilt. The sweep code calls this too. */
#ifndef DM_IO_REINDEX_H
#define DM_IO_REINDEX_H

#include <stddef.h>
#include <stdio.h>

#include "core/options.h"
#include "core/status.h"

typedef struct dm_reindex_stats {
    size_t n_indexed;   /* runs in the new index */
    size_t n_skipped;   /* run folders left out (each named on `report` with the reason) */
} dm_reindex_stats;

/* Rebuild <results>/index.sqlite from every <results>/runs/<folder>/run.h5: each is read
 * (dm_runstore_read_file: first in a reader child with a time limit, kept for all the files),
 * its spec reloaded from the canonical YAML stored in it (against schema:
 * &dm_spec_schema), and upserted into a new index built in <results>/.index.sqlite.tmp.<pid>,
 * which then replaces the old one atomically (dm_index_replace). Runs may be running and
 * writing meanwhile: what changed while the new index was built is added to it at the swap.
 *
 * A folder whose run.h5 is missing, unreadable, corrupt or damaged (its reading takes longer than
 * the limit or crashes), whose stored spec no longer loads, or which repeats the run_id of another
 * folder is skipped; each is one line "<folder>: <reason>"
 * on report (NULL: none), in folder order, and counted in stats->n_skipped. That is still DM_OK:
 * the others are indexed. Errors are about the index itself (the results folder cannot be
 * written, out of memory, ...; the old index is then untouched) or DM_E_NOTFOUND when there is
 * no <results>/runs folder (nothing written). First, temporary indexes left by reindexes that were
 * killed (their process is gone) are removed, each with a line on report. */
dm_status dm_reindex(const char *results, const dm_schema *schema, FILE *report,
                     dm_reindex_stats *stats, char *err);

#endif
