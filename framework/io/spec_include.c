/* spec_include.c — `base:` in spec files: a spec, or any section of it, built on other files.
 *
 * `base: PATH` (or a list of paths) in a mapping of the spec — the top level, a section such as
 * `data:`, or a container such as `diffusion:` — names files whose content is that mapping's
 * starting point: the files are merged in order (a later one wins), then the mapping's own keys
 * on top. A path is relative to the folder of the file that names it. At the top level the file
 * is a spec; in a section it holds that section's keys (`data: {base: ../datasets/moons.yaml}`
 * with moons.yaml `{type: moons, noise: 0.05}`). `base` is a reserved key: no option has that
 * name, so it cannot be confused with a plug-in's own key, nor with the shorthand `sampler: heun`.
 *
 * Merging is a deep merge of mappings with one rule for plug-in sections, the rule overrides
 * follow (spec_override.c): a section whose `type` differs from the base's (or from the
 * section's default type when the base gives none) replaces the base's section whole, since the
 * old plug-in's keys mean nothing to the new one; the same type merges key by key. A shorthand
 * (`param: eps`) is the mapping {type: eps}. A section left empty (`train:`) keeps the base's;
 * any other value that is not a mapping replaces the base's value.
 *
 * Refused, at the place of the `base:` that names the file: a path that is not a readable file,
 * an include cycle (with the chain of files), more than DM_SPEC_INCLUDE_DEPTH nested files, more
 * than DM_SPEC_INCLUDE_FILES files or DM_YTREE_MAX_NODES nodes in all. Every node keeps the file,
 * line and column it was read from, so a later error (a wrong type in a base file) names that
 * file. Resolving happens before overrides: a spec with bases behaves as the flat spec with
 * the same content, and resolves to the same canonical text and config_hash. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/spec_internal.h"
#include "io/yaml_tree.h"

#define INCLUDE_FILE_MAX (64u << 20) /* as the loader's own file */

typedef struct include_link {
    dev_t dev;
    ino_t ino;
    const char *shown; /* as named in messages (owned by the files list or the caller) */
} include_link;

typedef struct includer {
    dm_spec_loader *L;
    dm_spec_files *files;
    include_link chain[DM_SPEC_INCLUDE_DEPTH + 1]; /* the file being read and those that named it */
    int depth;
    size_t n_nodes;
} includer;

void dm_spec_files_free(dm_spec_files *f)
{
    for (size_t i = 0; i < f->n; i++)
        dm_free(f->name[i]);
    dm_free(f->name);
    f->name = NULL;
    f->n = f->cap = 0;
}

static dm_status files_add(dm_spec_files *f, const char *name, char **out, char *err)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        char **nn = dm_realloc(f->name, cap * sizeof *nn);
        if (!nn)
            return dm_err(err, DM_E_NOMEM, "out of memory reading base files");
        f->name = nn;
        f->cap = cap;
    }
    if (!(*out = dm_strdup(name)))
        return dm_err(err, DM_E_NOMEM, "out of memory reading base files");
    f->name[f->n++] = *out;
    return DM_OK;
}

/* Is `path` the top level, a section, or a container on the way to one ("diffusion")? */
static bool schema_node(const dm_schema *s, const char *path)
{
    const size_t n = strlen(path);
    if (n == 0)
        return true;
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *p = s->sections[i].path;
        if (strncmp(p, path, n) == 0 && (p[n] == '\0' || p[n] == '.'))
            return true;
    }
    return false;
}

static const dm_section_desc *plugin_section(const dm_schema *s, const char *path)
{
    const long i = dm_spec_find_section(s, path);
    return i >= 0 && s->sections[i].registry ? &s->sections[i] : NULL;
}

/* The plug-in a section mapping names: its `type` (NULL if that is not a scalar), else the
 * section's default. */
static const char *type_of(const dm_ynode *map, const dm_section_desc *d)
{
    const long k = dm_ytree_map_find(map, "type");
    if (k < 0)
        return d->default_type;
    const dm_ynode *t = map->item[k + 1];
    return t->kind == DM_Y_SCALAR ? t->text : NULL;
}

/* A plug-in shorthand (`param: eps`) in *slot becomes the mapping {type: eps}. */
static dm_status to_map(dm_ynode **slot, char *err)
{
    dm_ynode *v = *slot, *m = NULL, *t = NULL;
    if (v->kind != DM_Y_SCALAR || dm_ytree_is_null(v))
        return DM_OK;
    if (!(m = dm_ytree_new_map(v->origin, v->line, v->col)) ||
        !(t = dm_ytree_new_scalar(v->origin, v->line, v->col, "type", false)) || dm_ytree_map_add(m, t, v, NULL)) {
        dm_ytree_free(m);
        dm_ytree_free(t);
        return dm_err(err, DM_E_NOMEM, "out of memory merging base files");
    }
    *slot = m;
    return DM_OK;
}

static void clear_map(dm_ynode *m)
{
    for (size_t i = 0; i < m->n; i++)
        dm_ytree_free(m->item[i]);
    m->n = 0;
}

/* Moves src's pairs into dst (both mappings at `path`), src's winning. The moved items of src
 * become NULL, so freeing src afterwards (also after a failure) frees exactly what is left. */
static dm_status merge(includer *I, dm_ynode *dst, dm_ynode *src, const char *path)
{
    const dm_schema *s = I->L->schema;
    const dm_section_desc *d = plugin_section(s, path);
    if (d) {
        const long k = dm_ytree_map_find(src, "type");
        const char *ts = k >= 0 && src->item[k + 1]->kind == DM_Y_SCALAR ? src->item[k + 1]->text : NULL;
        const char *tb = type_of(dst, d);
        if (k >= 0 && (!ts || !tb || strcmp(ts, tb) != 0))
            clear_map(dst); /* another plug-in: the base's section goes whole */
    }
    for (size_t i = 0; i + 1 < src->n; i += 2) {
        dm_ynode *k = src->item[i], *v = src->item[i + 1];
        const long j = dm_ytree_map_find(dst, k->text);
        char child[DM_SPEC_KEY_MAX];
        dm_status st = DM_OK;
        if (j < 0) {
            if ((st = dm_ytree_map_add(dst, k, v, I->L->err)))
                return st;
            src->item[i] = src->item[i + 1] = NULL;
            continue;
        }
        const bool node = strlen(k->text) == k->len && dm_spec_join(child, path, k->text) && schema_node(s, child);
        if (node && dm_ytree_is_null(v)) { /* an empty section keeps the base's */
            dm_ytree_free(k);
            dm_ytree_free(v);
            src->item[i] = src->item[i + 1] = NULL;
            continue;
        }
        if (node && plugin_section(s, child) &&
            ((st = to_map(&dst->item[j + 1], I->L->err)) || (st = to_map(&src->item[i + 1], I->L->err))))
            return st;
        v = src->item[i + 1];
        if (node && v->kind == DM_Y_MAP && dst->item[j + 1]->kind == DM_Y_MAP) {
            if ((st = merge(I, dst->item[j + 1], v, child)))
                return st;
            dm_ytree_free(k);
            dm_ytree_free(v);
        } else { /* the includer's key and value replace the base's */
            dm_ytree_free(dst->item[j]);
            dm_ytree_free(dst->item[j + 1]);
            dst->item[j] = k;
            dst->item[j + 1] = v;
        }
        src->item[i] = src->item[i + 1] = NULL;
    }
    return DM_OK;
}

static dm_status resolve(includer *I, dm_ynode *map, const char *path, const char *dir);

/* The folder part of `file` ("configs/methods/" of "configs/methods/ddpm.yaml", "" of "a.yaml"). */
static void dir_of(const char *file, char *dir, size_t size)
{
    const char *slash = strrchr(file, '/');
    const size_t n = slash ? (size_t)(slash - file) + 1 : 0;
    snprintf(dir, size, "%.*s", (int)n, file);
}

/* The file named by `at` (a path relative to `dir`), parsed, its own bases resolved, into *out:
 * the mapping of the spec (path "") or of the section `path`. */
static dm_status load_base(includer *I, const dm_ynode *at, const char *path, const char *dir, dm_ynode **out)
{
    char *err = I->L->err, full[DM_PATH_SIZE], g[96], where[512];
    dm_ynode *tree = NULL;
    char *text = NULL, *name = NULL;
    size_t len = 0;
    struct stat sb;
    dm_status st;
    *out = NULL;
    if (at->kind != DM_Y_SCALAR || dm_ytree_is_null(at) || memchr(at->text, '\0', at->len))
        return dm_spec_bad(err, at, "base: expected the path of a spec file (or a list of paths), got %s",
                           dm_spec_got(at, g, sizeof g));
    if (snprintf(full, sizeof full, "%s%s", at->text[0] == '/' ? "" : dir, at->text) >= (int)sizeof full)
        return dm_spec_bad(err, at, "base: the path '%.200s...' is too long", at->text);
    if (stat(full, &sb) != 0)
        return dm_spec_bad(err, at, "base: cannot read '%s': %s", full, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return dm_spec_bad(err, at, "base: '%s' is not a file", full);
    for (int i = 0; i <= I->depth; i++) {
        if (I->chain[i].dev != sb.st_dev || I->chain[i].ino != sb.st_ino)
            continue;
        char chain[DM_ERR_SIZE / 2] = "";
        size_t used = 0;
        for (int j = 0; j <= I->depth && used < sizeof chain; j++)
            used += (size_t)snprintf(chain + used, sizeof chain - used, "%s -> ", I->chain[j].shown);
        return dm_spec_bad(err, at, "base: include cycle: %s%s", chain, full);
    }
    if (I->depth == DM_SPEC_INCLUDE_DEPTH)
        return dm_spec_bad(err, at, "base: more than %d nested base files", DM_SPEC_INCLUDE_DEPTH);
    if (I->files->n == DM_SPEC_INCLUDE_FILES)
        return dm_spec_bad(err, at, "base: more than %d base files in one spec", DM_SPEC_INCLUDE_FILES);
    if ((st = files_add(I->files, full, &name, err)))
        return st;
    dm_ytree_where(at, where, sizeof where);
    if ((st = dm_read_file(name, INCLUDE_FILE_MAX, &text, &len, err))) {
        dm_err_prefix(err, "%s: base", where);
        return st == DM_E_NOMEM ? st : DM_E_INPUT;
    }
    st = dm_ytree_parse(text, len, name, true, &tree, err);
    dm_free(text);
    if (st == DM_OK && (!tree || dm_ytree_is_null(tree)))
        st = dm_err(err, DM_E_INPUT, "%s:1:1: the base file is empty (expected a mapping of keys)", name);
    else if (st == DM_OK && tree->kind != DM_Y_MAP)
        st = dm_spec_bad(err, tree, "expected a mapping of %s keys, got %s", path[0] ? path : "spec",
                         dm_spec_got(tree, g, sizeof g));
    else if (st == DM_OK && tree->n_nodes > DM_YTREE_MAX_NODES - I->n_nodes)
        st = dm_err(err, DM_E_INPUT, "%s: the spec and its base files hold more than %d nodes", name,
                    DM_YTREE_MAX_NODES);
    if (st) {
        if (st == DM_E_INPUT) { /* say which base: the file may be named by several */
            const size_t n = strlen(err);
            snprintf(err + n, DM_ERR_SIZE - n, " (the base named at %s)", where);
        }
        dm_ytree_free(tree);
        return st;
    }
    I->n_nodes += tree->n_nodes;
    char sub[DM_PATH_SIZE];
    dir_of(name, sub, sizeof sub);
    I->chain[++I->depth] = (include_link){sb.st_dev, sb.st_ino, name};
    st = resolve(I, tree, path, sub);
    I->depth--;
    if (st) {
        dm_ytree_free(tree);
        return st;
    }
    *out = tree;
    return DM_OK;
}

/* Resolves the bases of `map` (at schema path `path`, read from a file in folder `dir`): those of
 * its sections first, then its own. */
static dm_status resolve(includer *I, dm_ynode *map, const char *path, const char *dir)
{
    const dm_schema *s = I->L->schema;
    char child[DM_SPEC_KEY_MAX];
    dm_status st = DM_OK;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const dm_ynode *k = map->item[i];
        if (map->item[i + 1]->kind != DM_Y_MAP || strlen(k->text) != k->len || strcmp(k->text, "base") == 0 ||
            !dm_spec_join(child, path, k->text) || !schema_node(s, child))
            continue;
        if ((st = resolve(I, map->item[i + 1], child, dir)))
            return st;
    }
    const long b = dm_ytree_map_find(map, "base");
    if (b < 0)
        return DM_OK;
    const dm_ynode *names = map->item[b + 1];
    const size_t n = names->kind == DM_Y_SEQ ? names->n : 1;
    if (n == 0)
        return dm_spec_bad(I->L->err, names, "base: an empty list (give a path, or leave base out)");
    dm_ynode *acc = NULL;
    for (size_t i = 0; i < n && !st; i++) {
        dm_ynode *t = NULL;
        st = load_base(I, names->kind == DM_Y_SEQ ? names->item[i] : names, path, dir, &t);
        if (!st && !acc)
            acc = t;
        else if (!st) {
            st = merge(I, acc, t, path);
            dm_ytree_free(t);
        }
    }
    if (st) {
        dm_ytree_free(acc);
        return st;
    }
    /* The base pair goes; the mapping's other keys go on top of the bases' merge, which then
     * becomes the mapping (the mapping node itself stays, with its place in its file). */
    dm_ytree_free(map->item[b]);
    dm_ytree_free(map->item[b + 1]);
    memmove(&map->item[b], &map->item[b + 2], (map->n - (size_t)b - 2) * sizeof *map->item);
    map->n -= 2;
    st = merge(I, acc, map, path);
    dm_ynode **item = map->item;
    const size_t n_items = map->n, cap = map->cap;
    map->item = acc->item;
    map->n = acc->n;
    map->cap = acc->cap;
    acc->item = item;
    acc->n = n_items;
    acc->cap = cap;
    dm_ytree_free(acc);
    return st;
}

dm_status dm_spec_resolve_includes(dm_spec_loader *L, dm_ynode *root, const char *path, dm_spec_files *files)
{
    includer I = {.L = L, .files = files, .n_nodes = root->n_nodes};
    struct stat sb;
    char dir[DM_PATH_SIZE];
    if (stat(path, &sb) == 0)
        I.chain[0] = (include_link){sb.st_dev, sb.st_ino, path};
    else
        I.chain[0] = (include_link){(dev_t)-1, (ino_t)-1, path};
    dir_of(path, dir, sizeof dir);
    return resolve(&I, root, "", dir);
}
