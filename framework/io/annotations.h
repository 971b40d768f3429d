/* annotations.h — a run's tags and notes: what a researcher says about a run after the fact.
 *
 * They live in results/runs/<id>/annotations.yaml, a small file of their own (never in run.h5,
 * which a live run may be writing), replaced atomically (io/atomic.h) under the flock of
 * results/locks/<id>.annotations.lock, so two `difflab tag` calls at once both land. The index
 * holds a copy (tables tags and notes: dm_index_put_annotations) that `difflab reindex` rebuilds
 * from the files.
 *
 *   # difflab annotations of run <id> (difflab tag, difflab note)
 *   tags:
 *     baseline: "yes"
 *   notes:
 *     - {time: "2026-12-03T10:00:00Z", text: "lr too high: loss spikes at 2k"}
 *
 * A tag key is 1 to 64 of [A-Za-z0-9_.-]; a value is any text of at most DM_ANNOT_MAX bytes
 * without a NUL; `key=` (an empty value) removes the tag. Tags are kept sorted by key; notes in
 * the order they were added. */
#ifndef DM_IO_ANNOTATIONS_H
#define DM_IO_ANNOTATIONS_H

#include <stddef.h>

#include "core/status.h"

#define DM_ANNOT_MAX 4096   /* bytes of a tag value or a note */
#define DM_ANNOT_KEY_MAX 64

typedef struct dm_annot_tag {
    char *key, *value;
} dm_annot_tag;

typedef struct dm_annot_note {
    char time[32]; /* ISO 8601 UTC */
    char *text;
} dm_annot_note;

typedef struct dm_annotations {
    dm_annot_tag *tags;
    size_t n_tags;
    dm_annot_note *notes;
    size_t n_notes;
} dm_annotations;

/* Reads run folder dir's annotations.yaml into *a (empty when there is none). A file that is not
 * valid is DM_E_INPUT naming it, with line and column. */
dm_status dm_annotations_read(const char *dir, dm_annotations *a, char *err);

/* Under the run's annotation lock: reads the file, sets the n_kv "key=value" tags (an empty
 * value removes the key) and appends `note` (NULL: none) stamped with the current time, writes
 * the file atomically, then calls after(ctx, result) still under the lock (the index's copy, so
 * that copies are written in the order the files were), and leaves the result in *out. Bad keys
 * or values are DM_E_INPUT before anything is written. */
typedef dm_status (*dm_annotations_fn)(void *ctx, const dm_annotations *a, char *err);
dm_status dm_annotations_update(const char *results, const char *id, const char *dir, int n_kv,
                                const char *const *kv, const char *note, dm_annotations_fn after, void *ctx,
                                dm_annotations *out, char *err);

void dm_annotations_free(dm_annotations *a);

#endif
