/* sweep_internal.h — what the parts of the sweep module share; included only by train/sweep_*.c.
 *
 * sweep_spec.c parses a sweep YAML into a dm_sweep_def (the --quick variant applied),
 * sweep_expand.c expands it into dm_sweep_lines (one per run, with the runs each needs first),
 * sweep_manifest.c freezes those as results/sweeps/<name>/ and reads the manifest back,
 * sweep_run.c runs one line and sweep_status.c tells the lines' states from their run files.
 * Every dm_status function writes a message into the caller's err (DM_ERR_SIZE) on failure. */
#ifndef DM_TRAIN_SWEEP_INTERNAL_H
#define DM_TRAIN_SWEEP_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "io/runfile_vet.h"
#include "io/runrec.h"
#include "io/yaml_tree.h"

/* ---- the parsed sweep (sweep_spec.c) ---- */

typedef struct dm_sweep_axis {
    const char *key;        /* borrowed from the tree */
    const dm_ynode *where;  /* the key node, for messages */
    size_t n;
    char **vals;            /* n override value texts */
} dm_sweep_axis;

typedef struct dm_sweep_zip {
    size_t n_keys, len;
    dm_sweep_axis *keys;    /* each with len values */
    const dm_ynode *where;
} dm_sweep_zip;

typedef struct dm_sweep_excl {
    size_t n;
    const char **keys;
    char **vals;
    const dm_ynode *where;
    int matched;
} dm_sweep_excl;

typedef struct dm_sweep_def {
    char name[128];
    char base[PATH_MAX];
    dm_ynode *tree;
    char *text;             /* the sweep file */
    size_t text_len;
    size_t n_set;
    dm_sweep_axis *set;     /* n = 1 each */
    size_t n_grid;
    dm_sweep_axis *grid;
    size_t n_zip;
    dm_sweep_zip *zip;
    size_t n_seeds;
    int64_t *seeds;         /* -1: the base spec's own seed */
    size_t n_excl;
    dm_sweep_excl *excl;
} dm_sweep_def;

/* Parse the sweep spec at path into s (zeroed by the caller; dm_sweep_def_free it even on
 * failure), with quick the sweep's `quick:` section applied and "_quick" added to its name. */
dm_status dm_sweep_parse(const char *path, dm_sweep_def *s, int quick, char *err);
void dm_sweep_def_free(dm_sweep_def *s);
/* The same from a sweep spec's text (dm_malloc'd; s owns it from now on, also on failure), named
 * `label` in messages (no lines: it is not a file); base: relative to the working folder. */
dm_status dm_sweep_parse_text(char *text, const char *label, dm_sweep_def *s, char *err);

/* A YAML node as flow-style text, as an axis value is handed to the spec loader (dm_free). */
char *dm_sweep_node_text(const dm_ynode *nd);

/* st with the message "ORIGIN:LINE:COL: <fmt><a><b>" at the sweep file's node nd (a, b may be NULL). */
dm_status dm_sweep_err_at(const dm_ynode *nd, char *err, dm_status st, const char *fmt, const char *a,
                          const char *b);

/* ---- the expansion (sweep_expand.c) ---- */

enum { DM_SWEEP_N_PRE = 6 }; /* runs a line may need first */

/* A run a line needs, named by spec file + seed (a cd teacher, a guidance classifier, a feature
 * network): a make prerequisite of that line. id[0] == 0: none. needs: bit k set when this run
 * needs the line's pre[k] first (a teacher's own feature network). */
typedef struct dm_sweep_prereq {
    char id[256];
    char spec[PATH_MAX];
    int64_t seed;
    unsigned needs;
} dm_sweep_prereq;

typedef struct dm_sweep_line {
    char run_id[256];
    int64_t seed;
    char *axes_json;        /* {"key":"value",...} of the line's combination */
    char *spec;             /* the resolved spec, canonical YAML */
    dm_sweep_prereq pre[DM_SWEEP_N_PRE]; /* [0] the cd teacher, [1] the guidance classifier, [2] eval.features;
                                         * [3..5] the teacher's own */
} dm_sweep_line;

/* Every combination of s's axes that no exclude matches, times the seeds, as *n_out lines
 * (*out: dm_sweep_lines_free, also on failure). Refused: a bad axis value, two combinations
 * making one run, an exclude that matches nothing. */
dm_status dm_sweep_expand_lines(dm_sweep_def *s, dm_sweep_line **out, size_t *n_out, char *err);
void dm_sweep_lines_free(dm_sweep_line *lines, size_t n);

/* ---- the manifest (sweep_manifest.c) ---- */

/* A sweep spec or a manifest, whole, into *text (dm_free) of *len bytes. */
dm_status dm_sweep_read_file(const char *path, char **text, size_t *len, char *err);

/* s as a JSON string, quotes included. */
void dm_sweep_put_json_str(FILE *f, const char *s);

/* The run id of manifest line `want` of sweep `name` into run_id (n bytes; want < 0: none), and
 * into *count (may be NULL) the number of lines. */
dm_status dm_sweep_manifest_line(const char *results, const char *name, long want, char *run_id, size_t n,
                                 long *count, char *err);

/* s expanded and frozen as results/sweeps/<name>/, or a frozen sweep extended (dm_sweep_expand
 * says how); `path` names the sweep in messages. The caller frees s. */
dm_status dm_sweep_freeze(const char *results, dm_sweep_def *s, const char *path, char *name_out, size_t name_n,
                          FILE *out, char *err);

/* ---- the runs' states (sweep_status.c) ---- */

/* The run's status from its files ("" if it has none), and its error message; keep (may be NULL)
 * gets the record when it was read (the caller frees it), else stays empty. The run file is read
 * first by v's child (NULL: a child for this file; a loop over the runs keeps one). */
void dm_sweep_run_status(dm_runfile_vetter *v, const char *results, const char *id, char *status, size_t n, char *msg, size_t nmsg,
                         dm_runrec *keep);

#endif
