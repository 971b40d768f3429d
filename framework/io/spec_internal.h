/* spec_internal.h — what the parts of the spec loader share; included only by io/spec_*.c.
 *
 * spec_load.c builds a dm_spec from a YAML tree (sections, plug-ins, defaults) and owns the
 * struct; spec_include.c merges the files that `base:` names into the tree; spec_value.c reads one typed value into an options struct; spec_hint.c words the
 * unknown-key error; spec_override.c applies "a.b.c=value" to the tree before validation.
 * Every dm_status helper writes the caller's `err` and reports DM_E_INPUT for the user's
 * mistakes, with the place ("file:line:col: ..." or "override 'k=v': ...") in front. */
#ifndef DM_IO_SPEC_INTERNAL_H
#define DM_IO_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/options.h"
#include "core/status.h"
#include "io/spec.h"
#include "io/yaml_tree.h"

#define DM_SPEC_KEY_MAX 256 /* a schema's dotted keys fit (checked) */

typedef struct dm_spec_loc {
    char *key;   /* dotted key given explicitly */
    char *where; /* "file:line:col" or "override 'k=v'" */
} dm_spec_loc;

struct dm_spec {
    const dm_schema *schema;
    const dm_plugin **plugin; /* per schema section; NULL for a pure container */
    void **opts;              /* per schema section: the plug-in's options struct */
    dm_spec_loc *locs;        /* where each explicitly given key came from */
    size_t n_locs, cap_locs;
    char *origin; /* the file (or text origin) the spec was loaded from */
};

/* One load in progress; `spec` is NULL while overrides are applied to the tree. */
typedef struct dm_spec_loader {
    const dm_schema *schema;
    dm_spec *spec;
    const char *origin;
    char *err;
} dm_spec_loader;

/* ---- spec_load.c: helpers every part uses ----------------------------------------------- */

/* DM_E_INPUT "<where at is>: <message>". */
dm_status dm_spec_bad(char *err, const dm_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "path.name", or "name" at the top level, into buf[DM_SPEC_KEY_MAX]; false if it does not fit. */
bool dm_spec_join(char *buf, const char *path, const char *name);
/* What a node is, for "expected X, got Y"; may return buf. */
const char *dm_spec_got(const dm_ynode *n, char *buf, size_t size);
/* Index of the schema section at `path`, or -1. */
long dm_spec_find_section(const dm_schema *s, const char *path);
/* The param `name` of a plug-in (pl may be NULL), or NULL. */
const dm_param_desc *dm_spec_find_param(const dm_plugin *pl, const char *name);

/* ---- spec_value.c ------------------------------------------------------------------------ */

/* Parses v as param p (named `key` in messages) into the options struct; frees a REALS array
 * it replaces. */
dm_status dm_spec_set_param(char *err, const char *key, const dm_param_desc *p, const dm_ynode *v,
                            void *opts);
/* Sets param p to its table default; a default that does not parse is DM_E_INTERNAL. */
dm_status dm_spec_set_default(char *err, const char *key, const dm_param_desc *p, void *opts);
/* A value's text as YAML (an override's value, a table default); empty text is a null scalar.
 * The nodes point at `label`, which must outlive them. */
dm_status dm_spec_parse_value(const char *text, const char *label, dm_ynode **out, char *err);
/* The shortest text that reads back to x, for messages and `difflab keys`; whole numbers
 * without an exponent. */
void dm_spec_fmt_num(double x, char buf[40]);

/* ---- spec_hint.c ------------------------------------------------------------------------- */

/* The error for `key`, not known under `path` (section d, plug-in pl, chosen by type_node; any
 * of them may be NULL): with the closest valid keys, or the plug-ins that have it. */
dm_status dm_spec_unknown_key(dm_spec_loader *L, const char *path, const dm_section_desc *d,
                              const dm_plugin *pl, const dm_ynode *key, const dm_ynode *type_node);

/* ---- spec_include.c --------------------------------------------------------------------- */

#define DM_SPEC_INCLUDE_DEPTH 16  /* nested base files (a names b names c ...) */
#define DM_SPEC_INCLUDE_FILES 256 /* base files read for one spec */

/* The base files read for one spec: their paths, which the tree's nodes point at as origin, so
 * they live until the tree is freed. Zero-initialize; dm_spec_files_free when done. */
typedef struct dm_spec_files {
    char **name;
    size_t n, cap;
} dm_spec_files;
void dm_spec_files_free(dm_spec_files *f);

/* Replaces every mapping of the tree at root (read from the file at `path`) that has a `base:`
 * key by the merge of its base files and its own keys (spec_include.c says how). */
dm_status dm_spec_resolve_includes(dm_spec_loader *L, dm_ynode *root, const char *path, dm_spec_files *files);

/* ---- spec_override.c --------------------------------------------------------------------- */

/* Applies "a.b.c=value" (ov) to the tree at root; `label` names it in messages and in the new
 * nodes, so it must outlive the tree. */
dm_status dm_spec_apply_override(dm_spec_loader *L, dm_ynode *root, const char *ov, const char *label);
/* Whether override `ov` sets the type of a plug-in section ("sampler.type=ddim"): the loader
 * applies those first (spec_override.c). */
bool dm_spec_is_type_switch(const dm_schema *s, const char *ov);

#endif
