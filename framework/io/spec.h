/* spec.h — YAML specs (libyaml) parsed against a schema of option tables.
 *
 * Loading: the YAML text is parsed into a tree (with line/column of every node); in a spec file,
 * the files that `base:` keys name (at the top level or in a section, relative to the naming
 * file's folder) are merged into it (spec_include.c: deep merge, a plug-in section of another
 * type replaces the base's, cycles refused); overrides ("key.path=value", value parsed as a
 * YAML scalar or flow sequence) are applied to the tree, and
 * the tree is validated against the schema: every section gets its plug-in (from `type`, or the
 * section's default) and an options struct filled with the given values or the table's defaults.
 *
 * Errors (all DM_E_INPUT, except DM_E_NOMEM) name the place: "spec.yaml:3:5: ..." for a file,
 * "override 'train.lr=abc': ..." for an override. Covered: missing file, YAML syntax error (line
 * and column), more than one document, a document that is not a mapping, duplicate key, unknown
 * key (with the closest valid keys), wrong type, out-of-range value, unknown plug-in name (with
 * the valid names), an override naming a key that does not exist. Anchors and aliases are
 * expanded with a bound on the total number of nodes, so an alias bomb is an error.
 *
 * The resolved spec is written canonically: every key of the schema (defaults included), keys
 * sorted, reals in the shortest text that reads back to the same double. Loading the canonical
 * text again gives the same canonical text. config_hash = SHA-256 of the canonical text without
 * keys flagged DM_OPT_NOHASH or DM_OPT_SEED.
 *
 * A dm_spec owns its options structs (and their dm_reals arrays); it keeps a pointer to the
 * schema, which must outlive it. Not thread-safe; read-only use from many threads is fine. */
#ifndef DM_IO_SPEC_H
#define DM_IO_SPEC_H

#include <stdint.h>
#include <stdio.h>

#include "core/options.h"
#include "core/status.h"

typedef struct dm_spec dm_spec;

/* Load a spec file. overrides: n_over strings "a.b.c=value". */
dm_status dm_spec_load_file(const dm_schema *schema, const char *path, int n_over,
                            const char *const *overrides, dm_spec **out, char *err);
/* Load from text; `origin` names it in messages (a path, or "<run abc/config>"). Text has no
 * folder to resolve `base:` against: such a key is refused (as it is in an override's value). */
dm_status dm_spec_load_text(const dm_schema *schema, const char *text, const char *origin,
                            int n_over, const char *const *overrides, dm_spec **out, char *err);
/* Load from len bytes of text, as a file's bytes are loaded: they need not end in a NUL and may
 * hold NULs (libyaml refuses those). */
dm_status dm_spec_load_mem(const dm_schema *schema, const char *text, size_t len, const char *origin,
                           int n_over, const char *const *overrides, dm_spec **out, char *err);
void dm_spec_free(dm_spec *spec);

/* The schema the spec was loaded against. */
const dm_schema *dm_spec_get_schema(const dm_spec *spec);

/* The chosen plug-in and filled options struct of a section, by its path; NULL if no such
 * section. The options struct is the one the plug-in's table describes. */
const dm_plugin *dm_spec_plugin(const dm_spec *spec, const char *section_path);
const void *dm_spec_opts(const dm_spec *spec, const char *section_path);

/* Where a dotted key was given: "spec.yaml:3:5", "override 'k=v'", or "<origin> (default of KEY)"
 * when it took its default; for errors found after loading (plug-ins that do not fit together). */
void dm_spec_where(const dm_spec *spec, const char *key, char *buf, size_t size);

/* Canonical YAML text of the resolved spec (caller frees with dm_free). With for_hash, keys
 * flagged DM_OPT_NOHASH or DM_OPT_SEED are left out. */
dm_status dm_spec_canonical(const dm_spec *spec, int for_hash, char **text, char *err);
/* SHA-256 hex of dm_spec_canonical(spec, for_hash = 1). */
dm_status dm_spec_config_hash(const dm_spec *spec, char hex[65], char *err);

/* Every resolved key as a typed value, in canonical (sorted) order: for the index's params.
 * kv->key and kv->text are valid only during the callback; text is set for every type (the
 * canonical text of the value, strings unquoted). A non-OK return from fn stops the walk and is
 * returned. */
typedef struct dm_spec_kv {
    const char *key;          /* dotted: "diffusion.schedule.T", "diffusion.schedule.type" */
    dm_opt_type type;         /* a plug-in's `type` key is reported as DM_OPT_STR */
    int64_t i;                /* INT, BOOL (0/1), CHOICE (index) */
    double r;                 /* REAL */
    const char *text;         /* STR, CHOICE (the word), REALS (as a flow sequence "[1, 2]") */
    unsigned flags;
} dm_spec_kv;
typedef dm_status (*dm_spec_kv_fn)(void *ctx, const dm_spec_kv *kv, char *err);
dm_status dm_spec_foreach(const dm_spec *spec, dm_spec_kv_fn fn, void *ctx, char *err);

/* `difflab keys [NAME]`: every key with type, default, bounds and doc; with `filter`, only the
 * sections or plug-ins whose path or name equals it. Returns DM_E_INPUT (with the valid names)
 * when filter matches nothing. */
dm_status dm_spec_print_keys(const dm_schema *schema, const char *filter, FILE *out, char *err);

#endif
