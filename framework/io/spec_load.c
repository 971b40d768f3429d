/* spec_load.c — loading a spec: YAML tree, overrides applied to the tree (spec_override.c),
 * validation against the schema's option tables into one options struct per section (values in
 * spec_value.c, unknown keys in spec_hint.c), and the accessors. Output is in spec_emit.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/spec.h"
#include "io/spec_internal.h"
#include "io/yaml_tree.h"

#define SPEC_FILE_MAX (64u << 20) /* a spec is a page of text; refuse to slurp a huge file */

/* Remember where `key` was given (for errors found after loading). */
static dm_status add_loc(dm_spec *spec, const char *key, const dm_ynode *at, char *err)
{
    char where[512];
    dm_ytree_where(at, where, sizeof where);
    if (spec->n_locs == spec->cap_locs) {
        size_t cap = spec->cap_locs ? 2 * spec->cap_locs : 16;
        dm_spec_loc *nl = dm_realloc(spec->locs, cap * sizeof *nl);
        if (!nl)
            return dm_err(err, DM_E_NOMEM, "out of memory for the spec");
        spec->locs = nl;
        spec->cap_locs = cap;
    }
    dm_spec_loc *l = &spec->locs[spec->n_locs];
    l->key = dm_strdup(key);
    l->where = dm_strdup(where);
    if (!l->key || !l->where) {
        dm_free(l->key);
        dm_free(l->where);
        return dm_err(err, DM_E_NOMEM, "out of memory for the spec");
    }
    spec->n_locs++;
    return DM_OK;
}

/* ---- small helpers, shared with spec_*.c -------------------------------------------------- */

dm_status dm_spec_bad(char *err, const dm_ynode *at, const char *fmt, ...)
{
    char where[512], msg[DM_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dm_ytree_where(at, where, sizeof where);
    return dm_err(err, DM_E_INPUT, "%s: %s", where, msg);
}

/* "path.name", or "name" at the top level; false if it does not fit. */
bool dm_spec_join(char *buf, const char *path, const char *name)
{
    int w = snprintf(buf, DM_SPEC_KEY_MAX, "%s%s%s", path, path[0] ? "." : "", name);
    return w >= 0 && w < DM_SPEC_KEY_MAX;
}

/* What a node is, for "expected X, got Y". */
const char *dm_spec_got(const dm_ynode *n, char *buf, size_t size)
{
    if (n->kind == DM_Y_MAP)
        return "a mapping";
    if (n->kind == DM_Y_SEQ)
        return "a sequence";
    if (dm_ytree_is_null(n))
        return "nothing";
    const char *dots = n->len > 60 ? "..." : "";
    if (n->quoted)
        snprintf(buf, size, "the string \"%.60s%s\"", n->text, dots);
    else
        snprintf(buf, size, "'%.60s%s'", n->text, dots);
    return buf;
}

long dm_spec_find_section(const dm_schema *s, const char *path)
{
    for (size_t i = 0; i < s->n_sections; i++)
        if (strcmp(s->sections[i].path, path) == 0)
            return (long)i;
    return -1;
}

/* Is `name` a component under `path` that leads to a section ("diffusion" at the top)? */
static bool is_child(const dm_schema *s, const char *path, const char *name)
{
    char full[DM_SPEC_KEY_MAX];
    if (!name[0] || strchr(name, '.') || !dm_spec_join(full, path, name))
        return false;
    size_t n = strlen(full);
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *p = s->sections[i].path;
        if (strncmp(p, full, n) == 0 && (p[n] == '\0' || p[n] == '.'))
            return true;
    }
    return false;
}

const dm_param_desc *dm_spec_find_param(const dm_plugin *pl, const char *name)
{
    for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void list_plugins(const dm_plugin *const *reg, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; reg && reg[i] && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", reg[i]->name);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* ---- validation -------------------------------------------------------------------------- */

static dm_status resolve_plugin(dm_spec_loader *L, const dm_section_desc *d, const dm_ynode *type_node,
                                const dm_ynode *at, const dm_plugin **out)
{
    char key[DM_SPEC_KEY_MAX], valid[512], g[96];
    const char *kind = d->kind ? d->kind : "plug-in";
    if (!dm_spec_join(key, d->path, "type"))
        return dm_err(L->err, DM_E_INTERNAL, "option table: section path too long");
    list_plugins(d->registry, valid, sizeof valid);
    if (type_node) {
        if (type_node->kind != DM_Y_SCALAR || dm_ytree_is_null(type_node))
            return dm_spec_bad(L->err, type_node, "%s: expected a %s name, got %s; valid: %s", key, kind,
                               dm_spec_got(type_node, g, sizeof g), valid);
        /* `data: datasets/moons.yaml` names a file where a plug-in goes: say how a file is named. */
        const char *t = type_node->text, *ext = strrchr(t, '.');
        char hint[256] = "";
        if (strchr(t, '/') || (ext && (strcmp(ext, ".yaml") == 0 || strcmp(ext, ".yml") == 0)))
            snprintf(hint, sizeof hint, " (for a file of the section's keys write %s: {base: %.100s})", d->path, t);
        if (!(*out = dm_registry_find(d->registry, t)))
            return dm_spec_bad(L->err, type_node, "%s: unknown %s '%s'; valid: %s%s", key, kind, t, valid, hint);
        return DM_OK;
    }
    if (d->default_type) {
        if (!(*out = dm_registry_find(d->registry, d->default_type)))
            return dm_err(L->err, DM_E_INTERNAL, "option table: default %s '%s' of %s is not registered",
                          kind, d->default_type, d->path);
        return DM_OK;
    }
    if (at)
        return dm_spec_bad(L->err, at, "%s is required; valid: %s", key, valid);
    return dm_err(L->err, DM_E_INPUT, "%s: %s is required; valid: %s", L->origin, key, valid);
}

/* Allocates the section's options struct and fills every param: given in `map`, or default. */
static dm_status section_fill(dm_spec_loader *L, long si, const dm_plugin *pl, const dm_ynode *map)
{
    const char *path = L->schema->sections[si].path;
    char key[DM_SPEC_KEY_MAX];
    if (L->spec->opts[si])
        return dm_err(L->err, DM_E_INTERNAL, "section '%s' filled twice", path);
    L->spec->plugin[si] = pl;
    if (!(L->spec->opts[si] = dm_calloc(1, pl->opts_size)))
        return *path ? dm_err(L->err, DM_E_NOMEM, "out of memory for the options of '%s'", path)
                     : dm_err(L->err, DM_E_NOMEM, "out of memory for the top-level options");
    for (const dm_param_desc *p = pl->params; p && p->name; p++) {
        if (!dm_spec_join(key, path, p->name))
            return dm_err(L->err, DM_E_INTERNAL, "option table: key %s.%s too long", path, p->name);
        long k = map ? dm_ytree_map_find(map, p->name) : -1;
        dm_status st = k >= 0 ? dm_spec_set_param(L->err, key, p, map->item[k + 1], L->spec->opts[si])
                              : dm_spec_set_default(L->err, key, p, L->spec->opts[si]);
        if (st == DM_OK && k >= 0)
            st = add_loc(L->spec, key, map->item[k + 1], L->err);
        if (st != DM_OK)
            return st;
    }
    return DM_OK;
}

/* Validates the node at `path` (the top level, a section, or a container) and its children. */
static dm_status check_node(dm_spec_loader *L, const char *path, const dm_ynode *node)
{
    long si = dm_spec_find_section(L->schema, path);
    const dm_section_desc *d = si >= 0 ? &L->schema->sections[si] : NULL;
    bool plug = d && d->registry;
    const dm_ynode *map = NULL, *type_node = NULL;
    const dm_plugin *pl = d ? d->fixed : NULL;
    char g[96], child[DM_SPEC_KEY_MAX];
    dm_status st = DM_OK;
    if (node->kind == DM_Y_MAP)
        map = node;
    else if (plug && node->kind == DM_Y_SCALAR && !dm_ytree_is_null(node))
        type_node = node; /* `sampler: ddim` is {type: ddim} */
    else if (!dm_ytree_is_null(node))
        return dm_spec_bad(L->err, node, "%s: expected a mapping, got %s", path,
                           dm_spec_got(node, g, sizeof g));
    long tk = map && plug ? dm_ytree_map_find(map, "type") : -1;
    if (tk >= 0)
        type_node = map->item[tk + 1];
    if (plug && (st = resolve_plugin(L, d, type_node, node, &pl)) != DM_OK)
        return st;
    if (plug && type_node) {
        if (!dm_spec_join(child, path, "type"))
            return dm_err(L->err, DM_E_INTERNAL, "section path too long");
        if ((st = add_loc(L->spec, child, type_node, L->err)) != DM_OK)
            return st;
    }
    for (size_t i = 0; map && i < map->n; i += 2) {
        const dm_ynode *k = map->item[i];
        bool known = (long)i == tk;
        if (!known && strlen(k->text) == k->len) /* a key with a NUL in it matches nothing */
            known = dm_spec_find_param(pl, k->text) || is_child(L->schema, path, k->text);
        if (!known && strcmp(k->text, "base") == 0 && k->len == 4)
            return dm_spec_bad(L->err, k, "%s%sbase: base files are read only from a spec file (difflab run FILE), "
                               "not from an override or a recorded spec", path, path[0] ? "." : "");
        if (!known)
            return dm_spec_unknown_key(L, path, d, pl, k, type_node);
    }
    if (pl && (st = section_fill(L, si, pl, map)) != DM_OK)
        return st;
    for (size_t i = 0; map && i < map->n; i += 2) {
        const char *k = map->item[i]->text;
        if ((long)i == tk || dm_spec_find_param(pl, k))
            continue;
        if (!dm_spec_join(child, path, k))
            return dm_err(L->err, DM_E_INTERNAL, "section path too long");
        if ((st = check_node(L, child, map->item[i + 1])) != DM_OK)
            return st;
    }
    return DM_OK;
}

/* Sections the text did not mention: defaults (a plug-in section needs a default type). */
static dm_status fill_missing(dm_spec_loader *L)
{
    for (size_t i = 0; i < L->schema->n_sections; i++) {
        const dm_section_desc *d = &L->schema->sections[i];
        const dm_plugin *pl = d->fixed;
        dm_status st = DM_OK;
        if (L->spec->opts[i] || (!d->fixed && !d->registry))
            continue;
        if (d->registry && (st = resolve_plugin(L, d, NULL, NULL, &pl)) != DM_OK)
            return st;
        if ((st = section_fill(L, (long)i, pl, NULL)) != DM_OK)
            return st;
    }
    return DM_OK;
}
/* ---- public ------------------------------------------------------------------------------- */

void dm_spec_free(dm_spec *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; spec->opts && i < spec->schema->n_sections; i++) {
        const dm_plugin *pl = spec->plugin[i];
        for (const dm_param_desc *p = pl ? pl->params : NULL; spec->opts[i] && p && p->name; p++) {
            if (p->type == DM_OPT_REALS) {
                dm_reals r;
                memcpy(&r, (char *)spec->opts[i] + p->offset, sizeof r);
                dm_free(r.v);
            }
        }
        dm_free(spec->opts[i]);
    }
    for (size_t i = 0; i < spec->n_locs; i++) {
        dm_free(spec->locs[i].key);
        dm_free(spec->locs[i].where);
    }
    dm_free(spec->locs);
    dm_free(spec->origin);
    dm_free(spec->opts);
    dm_free(spec->plugin);
    dm_free(spec);
}

/* file: the spec's own file, whose `base:` keys are resolved (NULL for text, where they are
 * refused). */
static dm_status load(const dm_schema *schema, const char *text, size_t len, const char *origin, const char *file,
                      int n_over, const char *const *overrides, dm_spec **out, char *err)
{
    dm_ynode *root = NULL;
    dm_spec_files files = {0};
    char **labels = NULL;
    dm_spec *spec = NULL;
    dm_spec_loader L = {schema, NULL, origin, err};
    dm_status st;
    *out = NULL;
    if ((st = dm_ytree_parse(text, len, origin, true, &root, err)) != DM_OK)
        goto out;
    if (!root || dm_ytree_is_null(root)) {
        st = dm_err(err, DM_E_INPUT, "%s:%d:%d: the spec is empty (expected a mapping of keys)", origin,
                    root ? root->line : 1, root ? root->col : 1);
        goto out;
    }
    if (root->kind != DM_Y_MAP) {
        char g[96];
        st = dm_spec_bad(err, root, "expected a mapping of keys at the top level, got %s",
                         dm_spec_got(root, g, sizeof g));
        goto out;
    }
    if (file && (st = dm_spec_resolve_includes(&L, root, file, &files)) != DM_OK)
        goto out;
    if (n_over > 0 && !(labels = dm_calloc((size_t)n_over, sizeof *labels))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory applying overrides");
        goto out;
    }
    /* Plug-in type switches first (they drop the old plug-in's keys), then the others, each
     * pass in the order given (a later override of the same key wins). */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n_over; i++) {
            if (dm_spec_is_type_switch(schema, overrides[i]) != (pass == 0))
                continue;
            /* nodes point at their label, so labels live until the tree is gone */
            size_t n = strlen(overrides[i]) + sizeof "override ''";
            if (!(labels[i] = dm_malloc(n))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory applying overrides");
                goto out;
            }
            snprintf(labels[i], n, "override '%s'", overrides[i]);
            if ((st = dm_spec_apply_override(&L, root, overrides[i], labels[i])) != DM_OK)
                goto out;
        }
    if (!(spec = dm_calloc(1, sizeof *spec)) ||
        !(spec->plugin = dm_calloc(schema->n_sections, sizeof *spec->plugin)) ||
        !(spec->opts = dm_calloc(schema->n_sections, sizeof *spec->opts))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the spec");
        goto out;
    }
    spec->schema = schema;
    if (!(spec->origin = dm_strdup(origin))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the spec");
        goto out;
    }
    L.spec = spec;
    if ((st = check_node(&L, "", root)) != DM_OK || (st = fill_missing(&L)) != DM_OK)
        goto out;
    *out = spec;
    spec = NULL;
out:
    if (spec && !spec->opts) { /* half-built: dm_spec_free needs both arrays or neither */
        dm_free(spec->plugin);
        dm_free(spec);
        spec = NULL;
    }
    dm_spec_free(spec);
    dm_ytree_free(root);
    dm_spec_files_free(&files);
    for (int i = 0; labels && i < n_over; i++)
        dm_free(labels[i]);
    dm_free(labels);
    return st;
}

dm_status dm_spec_load_text(const dm_schema *schema, const char *text, const char *origin, int n_over,
                            const char *const *overrides, dm_spec **out, char *err)
{
    return load(schema, text, strlen(text), origin, NULL, n_over, overrides, out, err);
}

dm_status dm_spec_load_mem(const dm_schema *schema, const char *text, size_t len, const char *origin, int n_over,
                           const char *const *overrides, dm_spec **out, char *err)
{
    return load(schema, text, len, origin, NULL, n_over, overrides, out, err);
}

dm_status dm_spec_load_file(const dm_schema *schema, const char *path, int n_over,
                            const char *const *overrides, dm_spec **out, char *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    dm_status st = DM_OK;
    *out = NULL;
    if (!(f = fopen(path, "rb"))) {
        st = dm_err(err, DM_E_INPUT, "cannot read spec '%s': %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= SPEC_FILE_MAX) {
                st = dm_err(err, DM_E_INPUT, "cannot read spec '%s': larger than %u bytes", path,
                            (unsigned)SPEC_FILE_MAX);
                goto out;
            }
            cap = cap ? 2 * cap : 4096;
            char *nb = dm_realloc(buf, cap + 1);
            if (!nb) {
                st = dm_err(err, DM_E_NOMEM, "out of memory reading spec '%s'", path);
                goto out;
            }
            buf = nb;
        }
        size_t got_n = fread(buf + len, 1, cap - len, f);
        len += got_n;
        if (got_n == 0) {
            if (ferror(f)) {
                st = dm_err(err, DM_E_INPUT, "cannot read spec '%s': %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    buf[len] = '\0';
    st = load(schema, buf, len, path, path, n_over, overrides, out, err);
out:
    if (f)
        fclose(f);
    dm_free(buf);
    return st;
}

void dm_spec_where(const dm_spec *spec, const char *key, char *buf, size_t size)
{
    /* The last match wins: an override is recorded after the file's own key. */
    for (size_t i = spec->n_locs; i-- > 0;) {
        if (strcmp(spec->locs[i].key, key) == 0) {
            snprintf(buf, size, "%s", spec->locs[i].where);
            return;
        }
    }
    snprintf(buf, size, "%s (default of %s)", spec->origin ? spec->origin : "spec", key);
}

const dm_schema *dm_spec_get_schema(const dm_spec *spec)
{
    return spec->schema;
}

const dm_plugin *dm_spec_plugin(const dm_spec *spec, const char *section_path)
{
    long i = dm_spec_find_section(spec->schema, section_path);
    return i >= 0 ? spec->plugin[i] : NULL;
}

const void *dm_spec_opts(const dm_spec *spec, const char *section_path)
{
    long i = dm_spec_find_section(spec->schema, section_path);
    return i >= 0 ? spec->opts[i] : NULL;
}
