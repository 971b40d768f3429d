/* yaml_tree.h — YAML text -> a tree of scalars, sequences and mappings, with the line and column of
 * every node, built from libyaml's event parser. Internal to io/ (the spec loader uses it).
 *
 * Aliases are expanded into copies. The number of nodes (copies included), the bytes of scalar
 * text and the nesting depth are bounded, so an alias bomb ("billion laughs") or a very deep
 * document is a clean DM_E_INPUT error, not a hang, an OOM or a stack overflow. Duplicate keys
 * in a mapping are an error. Only one document per text.
 *
 * Every node records `origin` (a label it does not own: the caller keeps it alive as long as the
 * tree) and a 1-based line/column, or line 0 when the origin has no lines (an override value).
 * Ownership: a mapping or sequence owns its items; dm_ytree_free frees a whole subtree. */
#ifndef DM_IO_YAML_TREE_H
#define DM_IO_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define DM_YTREE_MAX_NODES 100000
#define DM_YTREE_MAX_BYTES (16u << 20)
#define DM_YTREE_MAX_DEPTH 128

typedef enum dm_ykind { DM_Y_SCALAR, DM_Y_SEQ, DM_Y_MAP } dm_ykind;

typedef struct dm_ynode {
    dm_ykind kind;
    const char *origin; /* not owned */
    int line, col;      /* 1-based; line 0: origin has no lines */
    /* DM_Y_SCALAR */
    char *text; /* NUL-terminated; may hold NULs of its own, see len */
    size_t len;
    bool quoted; /* quoted, block (| >) or tagged !!str: a string, never a number */
    /* DM_Y_SEQ: n items. DM_Y_MAP: n / 2 pairs, item[2i] the key (a scalar), item[2i+1] its
     * value. */
    struct dm_ynode **item;
    size_t n, cap;
    /* Size of the subtree as parsed (for the bounds on alias expansion); not kept up to date
     * by later edits. */
    size_t n_nodes, n_bytes;
    int height;
} dm_ynode;

/* Parses `len` bytes of `text`. *out is NULL when the text holds no document at all (empty, or
 * only comments). With has_lines, messages say "ORIGIN:LINE:COL: ..."; else "ORIGIN: ...". */
dm_status dm_ytree_parse(const char *text, size_t len, const char *origin, bool has_lines, dm_ynode **out,
                         char *err);
void dm_ytree_free(dm_ynode *node);

/* New nodes (line 0 when the origin has no lines). NULL when out of memory. */
dm_ynode *dm_ytree_new_scalar(const char *origin, int line, int col, const char *text, bool quoted);
dm_ynode *dm_ytree_new_map(const char *origin, int line, int col);

/* Index into item[] of the key `key` (its value is at index + 1), or -1. */
long dm_ytree_map_find(const dm_ynode *map, const char *key);
/* Appends a pair. On failure (DM_E_NOMEM) the caller still owns key and value. */
dm_status dm_ytree_map_add(dm_ynode *map, dm_ynode *key, dm_ynode *value, char *err);

/* A plain scalar that YAML reads as null: "", "~", "null", "Null", "NULL". */
bool dm_ytree_is_null(const dm_ynode *node);

/* "ORIGIN:LINE:COL" or "ORIGIN" into buf. */
void dm_ytree_where(const dm_ynode *node, char *buf, size_t size);

#endif
