/* sweep_spec.c — a sweep YAML parsed into a dm_sweep_def: name, base, set, grid, zip, seeds,
 * exclude, and with --quick its quick: section applied. Checked here only as far as the sweep file
 * goes; whether the axes fit the base spec is sweep_expand.c's. */
#include "train/sweep_internal.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/path.h"

/* A YAML node as flow-style text, to hand to the spec loader as an override value. */
static void emit_node(FILE *f, const dm_ynode *nd)
{
    switch (nd->kind) {
    case DM_Y_SCALAR:
        if (!nd->quoted) {
            fwrite(nd->text, 1, nd->len, f);
            return;
        }
        fputc('"', f);
        for (size_t i = 0; i < nd->len; i++) {
            const unsigned char c = (unsigned char)nd->text[i];
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
        fputc('"', f);
        return;
    case DM_Y_SEQ:
        fputc('[', f);
        for (size_t i = 0; i < nd->n; i++) {
            if (i)
                fputs(", ", f);
            emit_node(f, nd->item[i]);
        }
        fputc(']', f);
        return;
    case DM_Y_MAP:
        fputc('{', f);
        for (size_t i = 0; i + 1 < nd->n; i += 2) {
            if (i)
                fputs(", ", f);
            emit_node(f, nd->item[i]);
            fputs(": ", f);
            emit_node(f, nd->item[i + 1]);
        }
        fputc('}', f);
        return;
    }
}

char *dm_sweep_node_text(const dm_ynode *nd)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    emit_node(f, nd);
    if (fclose(f) != 0)
        return NULL;
    /* open_memstream's buffer comes from malloc: copy into difflab's allocator. */
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

static void free_axis(dm_sweep_axis *a)
{
    for (size_t i = 0; i < a->n; i++)
        dm_free(a->vals[i]);
    dm_free(a->vals);
}

void dm_sweep_def_free(dm_sweep_def *s)
{
    for (size_t i = 0; i < s->n_set; i++)
        free_axis(&s->set[i]);
    for (size_t i = 0; i < s->n_grid; i++)
        free_axis(&s->grid[i]);
    for (size_t z = 0; z < s->n_zip; z++) {
        for (size_t i = 0; i < s->zip[z].n_keys; i++)
            free_axis(&s->zip[z].keys[i]);
        dm_free(s->zip[z].keys);
    }
    for (size_t e = 0; e < s->n_excl; e++) {
        for (size_t i = 0; i < s->excl[e].n; i++)
            dm_free(s->excl[e].vals[i]);
        dm_free(s->excl[e].vals);
        dm_free(s->excl[e].keys);
    }
    dm_free(s->set);
    dm_free(s->grid);
    dm_free(s->zip);
    dm_free(s->seeds);
    dm_free(s->excl);
    dm_ytree_free(s->tree);
    dm_free(s->text);
    memset(s, 0, sizeof *s);
}

dm_status dm_sweep_err_at(const dm_ynode *nd, char *err, dm_status st, const char *fmt, const char *a,
                          const char *b)
{
    char where[512];
    dm_ytree_where(nd, where, sizeof where);
    return dm_err(err, st, "%s: %s%s%s", where, fmt, a ? a : "", b ? b : "");
}

/* An axis from a key and a sequence of values (or, for `set`, one value). */
static dm_status make_axis(const dm_ynode *key, const dm_ynode *vals, int single, dm_sweep_axis *a, char *err)
{
    a->key = key->text;
    a->where = key;
    if (!single && (vals->kind != DM_Y_SEQ))
        return dm_sweep_err_at(vals, err, DM_E_INPUT, "the axis '", key->text, "' needs a list of values");
    if (!single && vals->n == 0)
        return dm_sweep_err_at(vals, err, DM_E_INPUT, "the axis '", key->text, "' is empty");
    if (strchr(key->text, '=') || key->len == 0)
        return dm_sweep_err_at(key, err, DM_E_INPUT, "bad axis key '", key->text, "'");
    a->n = single ? 1 : vals->n;
    a->vals = dm_calloc(a->n, sizeof *a->vals);
    if (!a->vals)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < a->n; i++)
        if (!(a->vals[i] = dm_sweep_node_text(single ? vals : vals->item[i])))
            return dm_err(err, DM_E_NOMEM, "out of memory");
    return DM_OK;
}

static dm_status parse_axes(const dm_ynode *map, int single, dm_sweep_axis **out, size_t *n, char *err)
{
    if (map->kind != DM_Y_MAP)
        return dm_sweep_err_at(map, err, DM_E_INPUT, "expected a mapping of spec keys", NULL, NULL);
    *n = map->n / 2;
    if (!(*out = dm_calloc(*n ? *n : 1, sizeof **out)))
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        dm_status st = make_axis(map->item[2 * i], map->item[2 * i + 1], single, &(*out)[i], err);
        if (st)
            return st;
    }
    return DM_OK;
}

static dm_status parse_zip_group(const dm_ynode *map, dm_sweep_zip *z, char *err)
{
    z->where = map;
    dm_status st = parse_axes(map, 0, &z->keys, &z->n_keys, err);
    if (st)
        return st;
    if (z->n_keys == 0)
        return dm_sweep_err_at(map, err, DM_E_INPUT, "an empty zip group", NULL, NULL);
    z->len = z->keys[0].n;
    for (size_t i = 1; i < z->n_keys; i++)
        if (z->keys[i].n != z->len) {
            char msg[256];
            snprintf(msg, sizeof msg, "zip lists of unequal length: '%s' has %zu values, '%s' %zu", z->keys[0].key,
                     z->len, z->keys[i].key, z->keys[i].n);
            return dm_sweep_err_at(z->keys[i].where, err, DM_E_INPUT, msg, NULL, NULL);
        }
    return DM_OK;
}

/* seeds: a count n (0..n-1) or a list of seeds, into s (replacing what it held). */
static dm_status parse_seeds(const dm_ynode *v, dm_sweep_def *s, char *err)
{
    char *end;
    dm_free(s->seeds);
    s->seeds = NULL;
    s->n_seeds = 0;
    if (v->kind == DM_Y_SCALAR) {
        const long n = strtol(v->text, &end, 10);
        if (*end || n < 1 || n > 10000)
            return dm_sweep_err_at(v, err, DM_E_INPUT,
                                   "seeds: a count 1..10000 or a list of seeds", NULL, NULL);
        s->n_seeds = (size_t)n;
        if (!(s->seeds = dm_calloc(s->n_seeds, sizeof *s->seeds)))
            return dm_err(err, DM_E_NOMEM, "out of memory");
        for (size_t j = 0; j < s->n_seeds; j++)
            s->seeds[j] = (int64_t)j;
    } else if (v->kind == DM_Y_SEQ && v->n > 0) {
        s->n_seeds = v->n;
        if (!(s->seeds = dm_calloc(s->n_seeds, sizeof *s->seeds)))
            return dm_err(err, DM_E_NOMEM, "out of memory");
        for (size_t j = 0; j < v->n; j++) {
            const dm_ynode *e = v->item[j];
            const long long x = e->kind == DM_Y_SCALAR ? strtoll(e->text, &end, 10) : -1;
            if (e->kind != DM_Y_SCALAR || *end || x < 0 || x > 4294967295LL)
                return dm_sweep_err_at(e, err, DM_E_INPUT,
                                       "seeds: each seed is an integer 0..2^32-1", NULL, NULL);
            s->seeds[j] = x;
        }
    } else {
        return dm_sweep_err_at(v, err, DM_E_INPUT, "seeds: a count or a non-empty list of seeds", NULL, NULL);
    }
    return DM_OK;
}

/* Replace the axis of a's key in (arr, n) by a, or (append) add it; a is moved, and freed when
 * that fails. */
static dm_status put_axis(dm_sweep_axis **arr, size_t *n, dm_sweep_axis *a, int append, char *err)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i].key, a->key) == 0) {
            free_axis(&(*arr)[i]);
            (*arr)[i] = *a;
            return DM_OK;
        }
    if (!append) {
        dm_status st = dm_sweep_err_at(a->where, err, DM_E_INPUT,
                                       "quick: '", a->key, "' is not an axis of the sweep's grid");
        free_axis(a);
        return st;
    }
    dm_sweep_axis *p = dm_realloc(*arr, (*n + 1) * sizeof **arr);
    if (!p) {
        free_axis(a);
        return dm_err(err, DM_E_NOMEM, "out of memory");
    }
    *arr = p;
    (*arr)[(*n)++] = *a;
    return DM_OK;
}

/* --quick: the sweep's `quick:` section (set: overrides added to set, grid: axes replacing the
 * grid's axes of the same keys, seeds: the replicate axis) applied, under the name <name>_quick:
 * the same study, shortened, for tests. */
static dm_status apply_quick(const char *path, dm_sweep_def *s, const dm_ynode *q, char *err)
{
    if (!q)
        return dm_err(err, DM_E_INPUT, "%s: --quick needs a quick: section (set, grid, seeds) in the sweep", path);
    if (q->kind != DM_Y_MAP)
        return dm_sweep_err_at(q, err, DM_E_INPUT,
                               "quick: a mapping with set, grid and/or seeds", NULL, NULL);
    dm_status st = DM_OK;
    for (size_t i = 0; i + 1 < q->n && !st; i += 2) {
        const dm_ynode *k = q->item[i], *v = q->item[i + 1];
        const int is_set = strcmp(k->text, "set") == 0, is_grid = strcmp(k->text, "grid") == 0;
        if (strcmp(k->text, "seeds") == 0) {
            st = parse_seeds(v, s, err);
        } else if (is_set || is_grid) {
            dm_sweep_axis *ax = NULL;
            size_t na = 0;
            st = parse_axes(v, is_set, &ax, &na, err);
            size_t j = 0;
            for (; j < na && !st; j++)
                st = is_set ? put_axis(&s->set, &s->n_set, &ax[j], 1, err) : put_axis(&s->grid, &s->n_grid, &ax[j], 0, err);
            for (; j < na; j++)   /* not reached: an error stopped the loop */
                free_axis(&ax[j]);
            dm_free(ax);
        } else {
            st = dm_sweep_err_at(k, err, DM_E_INPUT,
                                 "unknown quick key '", k->text, "'; valid: set, grid, seeds");
        }
    }
    if (!st && strlen(s->name) + 6 >= sizeof s->name)
        return dm_err(err, DM_E_INPUT, "%s: the name is too long for its quick variant", path);
    if (!st)
        strcat(s->name, "_quick");
    return st;
}

/* s->text parsed, `path` naming it in messages (with lines when it is a file); base: is looked
 * for next to `path` (a file) first, then in the working folder. */
static dm_status parse_text(const char *path, bool is_file, dm_sweep_def *s, int quick, char *err)
{
    dm_status st;
    if ((st = dm_ytree_parse(s->text, s->text_len, path, is_file, &s->tree, err)))
        return st;
    const dm_ynode *t = s->tree;
    if (!t || t->kind != DM_Y_MAP)
        return dm_err(err, DM_E_INPUT, "%s: a sweep spec is a mapping (name, base, grid, zip, seeds, exclude, set)", path);
    static const char *const known[] = { "name", "base", "set", "grid", "zip", "seeds", "exclude", "quick", NULL };
    const dm_ynode *name = NULL, *base = NULL, *quick_node = NULL;
    for (size_t i = 0; i + 1 < t->n; i += 2) {
        const dm_ynode *k = t->item[i], *v = t->item[i + 1];
        int ok = 0;
        for (int j = 0; known[j]; j++)
            ok |= strcmp(k->text, known[j]) == 0;
        if (!ok)
            return dm_sweep_err_at(k, err, DM_E_INPUT, "unknown sweep key '", k->text,
                      "'; valid: name, base, set, grid, zip, seeds, exclude, quick");
        if (strcmp(k->text, "name") == 0)
            name = v;
        else if (strcmp(k->text, "quick") == 0)
            quick_node = v;
        else if (strcmp(k->text, "base") == 0)
            base = v;
        else if (strcmp(k->text, "set") == 0)
            st = parse_axes(v, 1, &s->set, &s->n_set, err);
        else if (strcmp(k->text, "grid") == 0)
            st = parse_axes(v, 0, &s->grid, &s->n_grid, err);
        else if (strcmp(k->text, "zip") == 0) {
            const int many = v->kind == DM_Y_SEQ;
            s->n_zip = many ? v->n : 1;
            if (!(s->zip = dm_calloc(s->n_zip ? s->n_zip : 1, sizeof *s->zip)))
                return dm_err(err, DM_E_NOMEM, "out of memory");
            for (size_t z = 0; z < s->n_zip && !st; z++)
                st = parse_zip_group(many ? v->item[z] : v, &s->zip[z], err);
        } else if (strcmp(k->text, "seeds") == 0) {
            st = parse_seeds(v, s, err);
        } else if (strcmp(k->text, "exclude") == 0) {
            if (v->kind != DM_Y_SEQ)
                return dm_sweep_err_at(v, err, DM_E_INPUT,
                                       "exclude: a list of mappings {key: value, ...}", NULL, NULL);
            s->n_excl = v->n;
            if (!(s->excl = dm_calloc(v->n ? v->n : 1, sizeof *s->excl)))
                return dm_err(err, DM_E_NOMEM, "out of memory");
            for (size_t e = 0; e < v->n; e++) {
                const dm_ynode *m = v->item[e];
                dm_sweep_excl *x = &s->excl[e];
                x->where = m;
                if (m->kind != DM_Y_MAP || m->n == 0)
                    return dm_sweep_err_at(m, err, DM_E_INPUT,
                                           "exclude: each entry is a non-empty mapping {key: value}", NULL, NULL);
                x->n = m->n / 2;
                x->keys = dm_calloc(x->n, sizeof *x->keys);
                x->vals = dm_calloc(x->n, sizeof *x->vals);
                if (!x->keys || !x->vals)
                    return dm_err(err, DM_E_NOMEM, "out of memory");
                for (size_t j = 0; j < x->n; j++) {
                    x->keys[j] = m->item[2 * j]->text;
                    /* A quoted scalar matches by its text: "{type: cosine}" names a section value. */
                    const dm_ynode *xv = m->item[2 * j + 1];
                    x->vals[j] = xv->kind == DM_Y_SCALAR && xv->quoted ? dm_strdup(xv->text) : dm_sweep_node_text(xv);
                    if (!x->vals[j])
                        return dm_err(err, DM_E_NOMEM, "out of memory");
                }
            }
        }
        if (st)
            return st;
    }
    if (!name || name->kind != DM_Y_SCALAR || !dm_path_name_ok(name->text))
        return name ? dm_sweep_err_at(name, err, DM_E_INPUT,
                                      "name: " DM_PATH_NAME_RULE, NULL, NULL)
                    : dm_err(err, DM_E_INPUT, "%s: the sweep needs a name", path);
    if (!base || base->kind != DM_Y_SCALAR || !base->len)
        return base ? dm_sweep_err_at(base, err, DM_E_INPUT, "base: the path of the base spec", NULL, NULL)
                    : dm_err(err, DM_E_INPUT, "%s: the sweep needs a base spec (base: PATH)", path);
    snprintf(s->name, sizeof s->name, "%s", name->text);
    if (quick) {
        dm_status qs = apply_quick(path, s, quick_node, err);
        if (qs)
            return qs;
    }
    /* base: relative to the sweep file's folder if it is there, else to the working folder. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat sb;
    if (base->text[0] == '/' || !is_file ||
        !(snprintf(s->base, sizeof s->base, "%s/%s", dirname(dir), base->text) < (int)sizeof s->base &&
          stat(s->base, &sb) == 0 && S_ISREG(sb.st_mode))) {
        snprintf(s->base, sizeof s->base, "%s", base->text);
        if (stat(s->base, &sb) != 0 || !S_ISREG(sb.st_mode))
            return dm_sweep_err_at(base, err, DM_E_INPUT,
                                   "base: no spec file '", base->text, "' (next to the sweep or here)");
    }
    if (!s->n_seeds) {
        /* Default: the base spec's own seed, as a one-seed replicate axis. */
        s->n_seeds = 1;
        if (!(s->seeds = dm_calloc(1, sizeof *s->seeds)))
            return dm_err(err, DM_E_NOMEM, "out of memory");
        s->seeds[0] = -1;
    }
    return DM_OK;
}

dm_status dm_sweep_parse(const char *path, dm_sweep_def *s, int quick, char *err)
{
    dm_status st = dm_sweep_read_file(path, &s->text, &s->text_len, err);
    return st ? st : parse_text(path, true, s, quick, err);
}

dm_status dm_sweep_parse_text(char *text, const char *label, dm_sweep_def *s, char *err)
{
    s->text = text;
    s->text_len = strlen(text);
    return parse_text(label, false, s, 0, err);
}
