/* options.h — the one source of truth for options.
 *
 * Every plug-in (and every fixed spec section) declares its options in a const table of
 * dm_param_desc. From that table come: the spec validator (unknown key, wrong type, out of range,
 * closest valid names), the defaults of the resolved spec, the typed rows of the index's `params`
 * table, and `difflab keys`. No option is described anywhere else.
 *
 * Storage of a value in its section's options struct, at `offset`:
 *   DM_OPT_INT    int64_t          DM_OPT_REAL   double
 *   DM_OPT_BOOL   bool             DM_OPT_STR    char[DM_OPT_STR_MAX]
 *   DM_OPT_CHOICE int (index into `choices`)
 *   DM_OPT_REALS  dm_reals (heap array owned by the spec; a YAML sequence of numbers, or a
 *                 sequence of equal-length sequences, flattened row-major with `rows` set) */
#ifndef DM_CORE_OPTIONS_H
#define DM_CORE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_OPT_STR_MAX 128

typedef enum dm_opt_type {
    DM_OPT_INT,
    DM_OPT_REAL,
    DM_OPT_BOOL,
    DM_OPT_STR,
    DM_OPT_CHOICE,
    DM_OPT_REALS,
} dm_opt_type;

/* flags */
enum {
    DM_OPT_NOHASH = 1u << 0, /* does not change results (threads, intervals, names): not in config_hash */
    DM_OPT_SEED = 1u << 1,   /* the master seed: not in config_hash, but part of a run's inputs */
};

typedef struct dm_reals {
    double *v;   /* n values, row-major */
    size_t n;    /* number of values */
    size_t rows; /* 0 for a flat list; else n / rows values per row */
} dm_reals;

typedef struct dm_param_desc {
    const char *name;            /* key within its section ("lr", "T") */
    dm_opt_type type;
    const char *def;             /* default as YAML text ("1e-3", "true", "[0.5, 0.5]", "ddpm") */
    double min, max;             /* inclusive bounds for INT, REAL and each element of REALS */
    const char *const *choices;  /* DM_OPT_CHOICE: NULL-terminated list of valid words */
    unsigned flags;
    size_t offset;               /* offsetof(the options struct, field) */
    const char *doc;             /* one line */
} dm_param_desc;

/* The descriptor every plug-in vtable starts with (so a pointer to the vtable is a pointer to
 * its dm_plugin), and the shape of a fixed section. */
typedef struct dm_plugin {
    const char *name;              /* the YAML name, e.g. "ddpm_linear" */
    const char *doc;               /* one line */
    const dm_param_desc *params;   /* terminated by an entry with name == NULL; may be NULL */
    size_t opts_size;              /* size of the options struct the table's offsets point into */
} dm_plugin;

/* One section of a spec: a dotted path and either one fixed option table or a registry of
 * plug-ins among which the key `type` chooses. Paths that are proper prefixes of other paths
 * ("diffusion" for "diffusion.schedule") are pure containers and hold no keys of their own. */
typedef struct dm_section_desc {
    const char *path;                  /* "" (top level), "train", "diffusion.schedule" */
    const char *doc;
    const dm_plugin *fixed;            /* a fixed section, or NULL */
    const dm_plugin *const *registry;  /* a plug-in section: NULL-terminated, or NULL */
    const char *default_type;          /* plug-in chosen when `type` is absent; NULL: required */
    const char *kind;                  /* what a registry holds, for messages: "sampler" */
} dm_section_desc;

typedef struct dm_schema {
    const dm_section_desc *sections;
    size_t n_sections;
} dm_schema;

/* Registry lookup by name; NULL if absent. */
const dm_plugin *dm_registry_find(const dm_plugin *const *registry, const char *name);

/* Helpers for option tables. */
#define DM_OPT_END { NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL }

/* The shortest "%.{p}g" text of v that reads back to the same double (p = 1..17). */
void dm_format_real(double v, char buf[32]);

/* An options struct as a compact JSON object, keys in table order:
 * {"steps":1000,"variance":"beta"}. NULL on allocation failure; caller frees with dm_free. */
char *dm_opts_json(const dm_plugin *p, const void *opts);

#endif
