#define _GNU_SOURCE 1   /* asprintf, nftw */
#include "train/sweep.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "core/path.h"
#include "diffusion/guidance.h"
#include "diffusion/losses.h"
#include "io/index.h"
#include "io/runlog.h"
#include "io/spec.h"
#include "io/yaml_tree.h"
#include "io/runstore.h"
#include "train/run.h"
#include "train/runref.h"
#include "train/schema.h"

#define MAX_LINES 100000

/* ---- small helpers ---- */

#define SWEEP_FILE_MAX (64u << 20)   /* a sweep spec or a manifest of MAX_LINES resolved specs */

static dm_status read_file(const char *path, char **text, size_t *len, char *err)
{
    return dm_read_file(path, SWEEP_FILE_MAX, text, len, err);
}

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

static char *node_text(const dm_ynode *nd)
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

static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ---- the parsed sweep ---- */

typedef struct axis {
    const char *key;        /* borrowed from the tree */
    const dm_ynode *where;  /* the key node, for messages */
    size_t n;
    char **vals;            /* n override value texts */
} axis;

typedef struct zipgroup {
    size_t n_keys, len;
    axis *keys;             /* each with len values */
    const dm_ynode *where;
} zipgroup;

typedef struct excl {
    size_t n;
    const char **keys;
    char **vals;
    const dm_ynode *where;
    int matched;
} excl;

typedef struct sweep {
    char name[128];
    char base[PATH_MAX];
    dm_ynode *tree;
    char *text;             /* the sweep file */
    size_t text_len;
    size_t n_set;
    axis *set;              /* n = 1 each */
    size_t n_grid;
    axis *grid;
    size_t n_zip;
    zipgroup *zip;
    size_t n_seeds;
    int64_t *seeds;
    size_t n_excl;
    excl *excl;
} sweep;

static void free_axis(axis *a)
{
    for (size_t i = 0; i < a->n; i++)
        dm_free(a->vals[i]);
    dm_free(a->vals);
}

static void sweep_free(sweep *s)
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

static dm_status at(const dm_ynode *nd, char *err, dm_status st, const char *fmt, const char *a, const char *b)
{
    char where[512];
    dm_ytree_where(nd, where, sizeof where);
    return dm_err(err, st, "%s: %s%s%s", where, fmt, a ? a : "", b ? b : "");
}

/* An axis from a key and a sequence of values (or, for `set`, one value). */
static dm_status make_axis(const dm_ynode *key, const dm_ynode *vals, int single, axis *a, char *err)
{
    a->key = key->text;
    a->where = key;
    if (!single && (vals->kind != DM_Y_SEQ))
        return at(vals, err, DM_E_INPUT, "the axis '", key->text, "' needs a list of values");
    if (!single && vals->n == 0)
        return at(vals, err, DM_E_INPUT, "the axis '", key->text, "' is empty");
    if (strchr(key->text, '=') || key->len == 0)
        return at(key, err, DM_E_INPUT, "bad axis key '", key->text, "'");
    a->n = single ? 1 : vals->n;
    a->vals = dm_calloc(a->n, sizeof *a->vals);
    if (!a->vals)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < a->n; i++)
        if (!(a->vals[i] = node_text(single ? vals : vals->item[i])))
            return dm_err(err, DM_E_NOMEM, "out of memory");
    return DM_OK;
}

static dm_status parse_axes(const dm_ynode *map, int single, axis **out, size_t *n, char *err)
{
    if (map->kind != DM_Y_MAP)
        return at(map, err, DM_E_INPUT, "expected a mapping of spec keys", NULL, NULL);
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

static dm_status parse_zip_group(const dm_ynode *map, zipgroup *z, char *err)
{
    z->where = map;
    dm_status st = parse_axes(map, 0, &z->keys, &z->n_keys, err);
    if (st)
        return st;
    if (z->n_keys == 0)
        return at(map, err, DM_E_INPUT, "an empty zip group", NULL, NULL);
    z->len = z->keys[0].n;
    for (size_t i = 1; i < z->n_keys; i++)
        if (z->keys[i].n != z->len) {
            char msg[256];
            snprintf(msg, sizeof msg, "zip lists of unequal length: '%s' has %zu values, '%s' %zu", z->keys[0].key,
                     z->len, z->keys[i].key, z->keys[i].n);
            return at(z->keys[i].where, err, DM_E_INPUT, msg, NULL, NULL);
        }
    return DM_OK;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* seeds: a count n (0..n-1) or a list of seeds, into s (replacing what it held). */
static dm_status parse_seeds(const dm_ynode *v, sweep *s, char *err)
{
    char *end;
    dm_free(s->seeds);
    s->seeds = NULL;
    s->n_seeds = 0;
    if (v->kind == DM_Y_SCALAR) {
        const long n = strtol(v->text, &end, 10);
        if (*end || n < 1 || n > 10000)
            return at(v, err, DM_E_INPUT, "seeds: a count 1..10000 or a list of seeds", NULL, NULL);
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
                return at(e, err, DM_E_INPUT, "seeds: each seed is an integer 0..2^32-1", NULL, NULL);
            s->seeds[j] = x;
        }
    } else {
        return at(v, err, DM_E_INPUT, "seeds: a count or a non-empty list of seeds", NULL, NULL);
    }
    return DM_OK;
}

/* Replace the axis of a's key in (arr, n) by a, or (append) add it; a is moved. */
static dm_status put_axis(axis **arr, size_t *n, axis *a, int append, char *err)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i].key, a->key) == 0) {
            free_axis(&(*arr)[i]);
            (*arr)[i] = *a;
            return DM_OK;
        }
    if (!append)
        return at(a->where, err, DM_E_INPUT, "quick: '", a->key, "' is not an axis of the sweep's grid");
    axis *p = dm_realloc(*arr, (*n + 1) * sizeof **arr);
    if (!p)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    *arr = p;
    (*arr)[(*n)++] = *a;
    return DM_OK;
}

/* --quick: the sweep's `quick:` section (set: overrides added to set, grid: axes replacing the
 * grid's axes of the same keys, seeds: the replicate axis) applied, under the name <name>_quick:
 * the same study, shortened, for tests. */
static dm_status apply_quick(const char *path, sweep *s, const dm_ynode *q, char *err)
{
    if (!q)
        return dm_err(err, DM_E_INPUT, "%s: --quick needs a quick: section (set, grid, seeds) in the sweep", path);
    if (q->kind != DM_Y_MAP)
        return at(q, err, DM_E_INPUT, "quick: a mapping with set, grid and/or seeds", NULL, NULL);
    dm_status st = DM_OK;
    for (size_t i = 0; i + 1 < q->n && !st; i += 2) {
        const dm_ynode *k = q->item[i], *v = q->item[i + 1];
        const int is_set = strcmp(k->text, "set") == 0, is_grid = strcmp(k->text, "grid") == 0;
        if (strcmp(k->text, "seeds") == 0) {
            st = parse_seeds(v, s, err);
        } else if (is_set || is_grid) {
            axis *ax = NULL;
            size_t na = 0;
            st = parse_axes(v, is_set, &ax, &na, err);
            size_t j = 0;
            for (; j < na && !st; j++)
                st = is_set ? put_axis(&s->set, &s->n_set, &ax[j], 1, err) : put_axis(&s->grid, &s->n_grid, &ax[j], 0, err);
            for (; j < na; j++)   /* not moved: an error stopped the loop */
                free_axis(&ax[j]);
            dm_free(ax);
        } else {
            st = at(k, err, DM_E_INPUT, "unknown quick key '", k->text, "'; valid: set, grid, seeds");
        }
    }
    if (!st && strlen(s->name) + 6 >= sizeof s->name)
        return dm_err(err, DM_E_INPUT, "%s: the name is too long for its quick variant", path);
    if (!st)
        strcat(s->name, "_quick");
    return st;
}

static dm_status parse_sweep(const char *path, sweep *s, int quick, char *err)
{
    dm_status st = read_file(path, &s->text, &s->text_len, err);
    if (st)
        return st;
    if ((st = dm_ytree_parse(s->text, s->text_len, path, true, &s->tree, err)))
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
            return at(k, err, DM_E_INPUT, "unknown sweep key '", k->text,
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
                return at(v, err, DM_E_INPUT, "exclude: a list of mappings {key: value, ...}", NULL, NULL);
            s->n_excl = v->n;
            if (!(s->excl = dm_calloc(v->n ? v->n : 1, sizeof *s->excl)))
                return dm_err(err, DM_E_NOMEM, "out of memory");
            for (size_t e = 0; e < v->n; e++) {
                const dm_ynode *m = v->item[e];
                excl *x = &s->excl[e];
                x->where = m;
                if (m->kind != DM_Y_MAP || m->n == 0)
                    return at(m, err, DM_E_INPUT, "exclude: each entry is a non-empty mapping {key: value}", NULL, NULL);
                x->n = m->n / 2;
                x->keys = dm_calloc(x->n, sizeof *x->keys);
                x->vals = dm_calloc(x->n, sizeof *x->vals);
                if (!x->keys || !x->vals)
                    return dm_err(err, DM_E_NOMEM, "out of memory");
                for (size_t j = 0; j < x->n; j++) {
                    x->keys[j] = m->item[2 * j]->text;
                    /* A quoted scalar matches by its text: "{type: cosine}" names a section value. */
                    const dm_ynode *xv = m->item[2 * j + 1];
                    x->vals[j] = xv->kind == DM_Y_SCALAR && xv->quoted ? dm_strdup(xv->text) : node_text(xv);
                    if (!x->vals[j])
                        return dm_err(err, DM_E_NOMEM, "out of memory");
                }
            }
        }
        if (st)
            return st;
    }
    if (!name || name->kind != DM_Y_SCALAR || !valid_name(name->text))
        return name ? at(name, err, DM_E_INPUT, "name: letters, digits, '_', '-', '.' (at most 127)", NULL, NULL)
                    : dm_err(err, DM_E_INPUT, "%s: the sweep needs a name", path);
    if (!base || base->kind != DM_Y_SCALAR || !base->len)
        return base ? at(base, err, DM_E_INPUT, "base: the path of the base spec", NULL, NULL)
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
    if (base->text[0] == '/' ||
        !(snprintf(s->base, sizeof s->base, "%s/%s", dirname(dir), base->text) < (int)sizeof s->base &&
          stat(s->base, &sb) == 0 && S_ISREG(sb.st_mode))) {
        snprintf(s->base, sizeof s->base, "%s", base->text);
        if (stat(s->base, &sb) != 0 || !S_ISREG(sb.st_mode))
            return at(base, err, DM_E_INPUT, "base: no spec file '", base->text, "' (next to the sweep or here)");
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

/* ---- expansion ---- */

typedef struct line {
    char run_id[256];
    int64_t seed;
    char *axes_json;
    char *spec;
    /* Runs this line needs, named by spec file + seed (a cd teacher, a guidance classifier):
     * make prerequisites of this line. */
    struct prereq {
        char id[256];
        char spec[PATH_MAX];
        int64_t seed;
    } pre[2];
} line;

typedef struct combo {
    size_t n;
    const char *keys[64];
    const char *vals[64];
} combo;

/* Dots in a key: its depth in the spec ("diffusion.loss" 1, "diffusion.loss.distance" 2). */
static int key_depth(const char *key)
{
    int d = 0;
    for (; *key; key++)
        d += *key == '.';
    return d;
}

/* The base spec with the sweep's set overrides, the combination's axes and the seed. Overrides
 * go shallowest key first (stable: set before axes at equal depth), so a whole-section axis
 * (`diffusion.loss: [{type: cd}, ...]`) never wipes a key inside that section given by another
 * axis or by set (`diffusion.loss.distance`): the more specific key wins. */
static dm_status load_combo(const sweep *s, const combo *c, int64_t seed, dm_spec **spec, char *err)
{
    const size_t n = s->n_set + c->n + 1;
    char **over = dm_calloc(n, sizeof *over);
    int *depth = dm_calloc(n, sizeof *depth);
    dm_status st = DM_OK;
    if (!over || !depth) {
        dm_free(over);
        dm_free(depth);
        return dm_err(err, DM_E_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n_set && !st; i++, k++)
        if (asprintf(&over[k], "%s=%s", s->set[i].key, s->set[i].vals[0]) < 0)
            st = dm_err(err, DM_E_NOMEM, "out of memory");
        else
            depth[k] = key_depth(s->set[i].key);
    for (size_t i = 0; i < c->n && !st; i++, k++)
        if (asprintf(&over[k], "%s=%s", c->keys[i], c->vals[i]) < 0)
            st = dm_err(err, DM_E_NOMEM, "out of memory");
        else
            depth[k] = key_depth(c->keys[i]);
    /* Insertion sort by depth: stable. */
    for (size_t i = 1; i < k && !st; i++)
        for (size_t j = i; j > 0 && depth[j - 1] > depth[j]; j--) {
            char *t = over[j];
            over[j] = over[j - 1];
            over[j - 1] = t;
            const int dt = depth[j];
            depth[j] = depth[j - 1];
            depth[j - 1] = dt;
        }
    if (!st && seed >= 0 && asprintf(&over[k++], "seed=%lld", (long long)seed) < 0)
        st = dm_err(err, DM_E_NOMEM, "out of memory");
    if (!st)
        st = dm_spec_load_file(&dm_spec_schema, s->base, (int)k, (const char *const *)over, spec, err);
    for (size_t i = 0; i < k; i++)
        free(over[i]);
    dm_free(over);
    dm_free(depth);
    return st;
}

/* Each axis value alone on the base: a key the spec lacks or a bad value is named where the
 * sweep gives it. */
static dm_status check_axis(const sweep *s, const axis *a, const char *what, char *err)
{
    for (size_t i = 0; i < a->n; i++) {
        combo c = { .n = 1, .keys = { a->key }, .vals = { a->vals[i] } };
        dm_spec *spec = NULL;
        dm_status st = load_combo(s, &c, -1, &spec, err);
        dm_spec_free(spec);
        if (st) {
            char where[512];
            dm_ytree_where(a->where, where, sizeof where);
            dm_err_prefix(err, "%s: %s axis '%s', value %s", where, what, a->key, a->vals[i]);
            return st;
        }
    }
    return DM_OK;
}

static int excluded(sweep *s, const combo *c)
{
    int any = 0;
    for (size_t e = 0; e < s->n_excl; e++) {
        excl *x = &s->excl[e];
        int all = 1;
        for (size_t j = 0; j < x->n && all; j++) {
            int hit = 0;
            for (size_t i = 0; i < c->n && !hit; i++)
                hit = strcmp(c->keys[i], x->keys[j]) == 0 && strcmp(c->vals[i], x->vals[j]) == 0;
            all = hit;
        }
        if (all) {
            x->matched = 1;
            any = 1;
        }
    }
    return any;
}

static char *combo_json(const combo *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    fputc('{', f);
    for (size_t i = 0; i < c->n; i++) {
        if (i)
            fputc(',', f);
        put_json_str(f, c->keys[i]);
        fputc(':', f);
        put_json_str(f, c->vals[i]);
    }
    fputc('}', f);
    if (fclose(f) != 0)
        return NULL;
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

/* One run a line needs, named by a spec file (name) and seed under key: its id into P. Not a
 * file: nothing to do (a run id is resolved when the line runs). */
static dm_status prerequisite(const char *name, int64_t seed, const char *key, struct prereq *P, char *err)
{
    struct stat sb;
    if (!name[0] || stat(name, &sb) != 0 || !S_ISREG(sb.st_mode))
        return DM_OK;
    char so[64], hash[65];
    snprintf(so, sizeof so, "seed=%lld", (long long)seed);
    const char *over[1] = { so };
    dm_spec *t = NULL;
    dm_status st = dm_spec_load_file(&dm_spec_schema, name, 1, over, &t, err);
    if (!st)
        st = dm_run_id(t, P->id, sizeof P->id, hash, err);
    dm_spec_free(t);
    if (st) {
        dm_err_prefix(err, "%s '%s'", key, name);
        return st;
    }
    if (!realpath(name, P->spec))
        snprintf(P->spec, sizeof P->spec, "%s", name);
    P->seed = seed;
    return DM_OK;
}

/* A CD line whose distill.teacher is a spec file, and a classifier-guided line whose
 * guidance.classifier is one: those runs (their ids from the spec and seed) must finish first, so
 * the make fragment makes them prerequisites. */
static dm_status prerequisites(const dm_spec *spec, line *L, char *err)
{
    const dm_loss_ops *loss = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    const dm_distill_opts *dist = dm_spec_opts(spec, "distill");
    const dm_guidance_ops *gu = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    dm_status st = DM_OK;
    if (loss->consistency == DM_CM_KIND_CD)
        st = prerequisite(dist->teacher, dist->teacher_seed, "distill.teacher", &L->pre[0], err);
    if (!st && gu->kind == DM_GUIDE_CLASSIFIER) {
        const dm_classifier_guidance_opts *cg = dm_spec_opts(spec, "guidance");
        st = prerequisite(cg->classifier, cg->classifier_seed, "guidance.classifier", &L->pre[1], err);
    }
    return st;
}

static dm_status expand(sweep *s, line **out, size_t *n_out, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < s->n_set && !st; i++)
        st = check_axis(s, &s->set[i], "set", err);
    for (size_t i = 0; i < s->n_grid && !st; i++)
        st = check_axis(s, &s->grid[i], "grid", err);
    for (size_t z = 0; z < s->n_zip && !st; z++)
        for (size_t i = 0; i < s->zip[z].n_keys && !st; i++)
            st = check_axis(s, &s->zip[z].keys[i], "zip", err);
    if (st)
        return st;

    /* Mixed radix over the grid axes, then the zip groups. */
    const size_t n_dims = s->n_grid + s->n_zip;
    size_t total = 1, keys = s->n_grid;
    for (size_t i = 0; i < s->n_grid; i++)
        total *= s->grid[i].n;
    for (size_t z = 0; z < s->n_zip; z++) {
        total *= s->zip[z].len;
        keys += s->zip[z].n_keys;
    }
    if (keys > 64)
        return dm_err(err, DM_E_INPUT, "a sweep has at most 64 axis keys; this one %zu", keys);
    if (total * s->n_seeds > MAX_LINES)
        return dm_err(err, DM_E_INPUT, "the sweep expands to %zu runs; at most %d", total * s->n_seeds, MAX_LINES);
    line *lines = dm_calloc(total * s->n_seeds + 1, sizeof *lines);
    size_t *idx = dm_calloc(n_dims + 1, sizeof *idx);
    if (!lines || !idx) {
        dm_free(lines);
        dm_free(idx);
        return dm_err(err, DM_E_NOMEM, "out of memory");
    }
    size_t nl = 0;
    for (size_t k = 0; k < total && !st; k++) {
        combo c = { 0 };
        size_t r = k;
        for (size_t d = n_dims; d-- > 0;) {
            const size_t len = d < s->n_grid ? s->grid[d].n : s->zip[d - s->n_grid].len;
            idx[d] = r % len;
            r /= len;
        }
        for (size_t i = 0; i < s->n_grid; i++) {
            c.keys[c.n] = s->grid[i].key;
            c.vals[c.n++] = s->grid[i].vals[idx[i]];
        }
        for (size_t z = 0; z < s->n_zip; z++)
            for (size_t i = 0; i < s->zip[z].n_keys; i++) {
                c.keys[c.n] = s->zip[z].keys[i].key;
                c.vals[c.n++] = s->zip[z].keys[i].vals[idx[s->n_grid + z]];
            }
        if (excluded(s, &c))
            continue;
        for (size_t j = 0; j < s->n_seeds && !st; j++) {
            dm_spec *spec = NULL;
            char hash[65];
            line *L = &lines[nl];
            if ((st = load_combo(s, &c, s->seeds[j], &spec, err))) {
                char *ax = combo_json(&c);
                dm_err_prefix(err, "%s: the combination %s", s->name, ax ? ax : "?");
                dm_free(ax);
                break;
            }
            const dm_root_opts *root = dm_spec_opts(spec, "");
            L->seed = root->seed;
            st = prerequisites(spec, L, err);
            if (!st && !(st = dm_run_id(spec, L->run_id, sizeof L->run_id, hash, err)) &&
                !(st = dm_spec_canonical(spec, 0, &L->spec, err)) && !(L->axes_json = combo_json(&c)))
                st = dm_err(err, DM_E_NOMEM, "out of memory");
            dm_spec_free(spec);
            nl++;
        }
    }
    /* Two combinations that make the same run are one run under two labels: an axis does not
     * change what it seems to (e.g. a value equal to the base's, or keys that override each
     * other). Refused, naming both. */
    for (size_t i = 0; i < nl && !st; i++)
        for (size_t j = 0; j < i && !st; j++)
            if (strcmp(lines[i].run_id, lines[j].run_id) == 0)
                st = dm_err(err, DM_E_INPUT, "%s: the combinations %s and %s make the same run %s: an axis does not "
                            "change the spec there", s->name, lines[j].axes_json ? lines[j].axes_json : "?",
                            lines[i].axes_json ? lines[i].axes_json : "?", lines[i].run_id);
    for (size_t e = 0; e < s->n_excl && !st; e++)
        if (!s->excl[e].matched)
            st = at(s->excl[e].where, err, DM_E_INPUT, "this exclude matches no combination of the axes", NULL, NULL);
    dm_free(idx);
    *out = lines;
    *n_out = nl;
    return st;
}

static void free_lines(line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dm_free(lines[i].axes_json);
        dm_free(lines[i].spec);
    }
    dm_free(lines);
}

/* ---- writing ---- */

static dm_status write_text(const char *path, const char *text, size_t n, char *err)
{
    return dm_write_file_atomic(path, text, n, err);
}

static char *manifest_text(const line *lines, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "{\"line\":%zu,\"run_id\":", i);
        put_json_str(f, lines[i].run_id);
        fprintf(f, ",\"seed\":%lld,\"axes\":%s,\"spec\":", (long long)lines[i].seed, lines[i].axes_json);
        put_json_str(f, lines[i].spec);
        fputs("}\n", f);
    }
    if (fclose(f) != 0)
        return NULL;
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

static char *fragment_text(const char *name, const line *lines, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f,
            "# Generated by `difflab sweep` for sweep %s (%zu runs): included by Makefile.runs with SWEEP=%s.\n"
            "# Each line's marker appears when its run is done (finished or diverged).\n"
            "SWEEP_DIR := $(RESULTS)/sweeps/%s\n"
            "SWEEP_LINES :=",
            name, n, name, name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%zu", i % 20 == 0 ? " \\\n  " : " ", i);
    fprintf(f,
            "\n"
            "SWEEP_DONE := $(SWEEP_LINES:%%=$(SWEEP_DIR)/done/%%)\n"
            "\n"
            ".PHONY: sweep\n"
            "sweep: $(SWEEP_DONE)\n"
            "\n"
            "$(SWEEP_DIR)/done/%%: $(DIFFLAB)\n"
            "\t$(DIFFLAB) --results $(RESULTS) sweep run %s $* run.threads=$(THREADS) run.progress=lines\n",
            name);
    /* Teachers and classifiers named by spec + seed run first (once each; the run itself is a
     * no-op when done). */
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < 2; p++) {
            const struct prereq *P = &lines[i].pre[p];
            if (!P->id[0])
                continue;
            fprintf(f, "$(SWEEP_DIR)/done/%zu: $(SWEEP_DIR)/teachers/%s\n", i, P->id);
            int seen = 0;
            for (size_t j = 0; j <= i && !seen; j++)
                for (int q = 0; q < 2 && !seen; q++)
                    seen = (j < i || q < p) && strcmp(lines[j].pre[q].id, P->id) == 0;
            if (seen)
                continue;
            fprintf(f,
                    "$(SWEEP_DIR)/teachers/%s: $(DIFFLAB)\n"
                    "\t$(DIFFLAB) --results $(RESULTS) run '%s' seed=%lld run.threads=$(THREADS) run.progress=lines\n"
                    "\t@mkdir -p $(dir $@) && touch $@\n",
                    P->id, P->spec, (long long)P->seed);
        }
    if (fclose(f) != 0)
        return NULL;
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

static dm_status index_sweep(const char *results, const char *name, const line *lines, size_t n, char *err)
{
    char ipath[DM_PATH_SIZE];
    dm_index *ix = NULL;
    dm_status st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", results);
    if (!st)
        st = dm_index_open(ipath, 0, &ix, err);
    if (st)
        return st;
    sqlite3 *db = dm_index_db(ix);
    sqlite3_stmt *ins = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO sweep_runs (sweep, run_id) VALUES (?, ?)", -1, &ins, NULL);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, lines[i].run_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = dm_err(err, DM_E_IO, "%s: cannot record sweep %s: %s", ipath, name, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    dm_index_close(ix);
    return st;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

dm_status dm_sweep_expand(const char *results, const char *path, int quick, char *name_out, size_t name_n, FILE *out,
                          char *err)
{
    sweep s = { 0 };
    line *lines = NULL;
    size_t nl = 0;
    char *manifest = NULL, *frag = NULL, *old = NULL;
    size_t old_len = 0;
    char dir[DM_PATH_SIZE], tmp[DM_PATH_SIZE], p[DM_PATH_SIZE];
    dm_status st = parse_sweep(path, &s, quick, err);
    if (!st)
        st = expand(&s, &lines, &nl, err);
    if (st)
        goto out;
    if (name_out)
        snprintf(name_out, name_n, "%s", s.name);
    if (!(manifest = manifest_text(lines, nl)) || !(frag = fragment_text(s.name, lines, nl))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory");
        goto out;
    }
    if ((st = dm_path_fmt(dir, sizeof dir, err, "%s/sweeps/%s", results, s.name)) ||
        (st = dm_path_fmt(p, sizeof p, err, "%s/manifest.jsonl", dir)))
        goto out;
    /* Frozen: an existing manifest must be this one. */
    if (is_dir(dir)) {
        if ((st = read_file(p, &old, &old_len, err)))
            goto out;
        if (old_len != strlen(manifest) || memcmp(old, manifest, old_len) != 0) {
            st = dm_err(err, DM_E_INPUT,
                        "%s: sweep '%s' was expanded before to another manifest (%s): a launched sweep is frozen; "
                        "give the new one another name, or delete %s", path, s.name, p, dir);
            goto out;
        }
        fprintf(out, "sweep %s: %zu runs, unchanged (%s)\n", s.name, nl, dir);
        st = index_sweep(results, s.name, lines, nl, err);
        goto out;
    }
    /* Build in a temporary folder, then rename it into place. */
    if ((st = dm_path_fmt(tmp, sizeof tmp, err, "%s/sweeps/.%s.tmp.%ld", results, s.name, (long)getpid())) ||
        (st = dm_mkdir_p(tmp, err)))
        goto out;
    char q[DM_PATH_SIZE];
    if ((st = dm_path_fmt(q, sizeof q, err, "%s/specs", tmp)) || (st = dm_mkdir_p(q, err)) ||
        (st = dm_path_fmt(q, sizeof q, err, "%s/done", tmp)) || (st = dm_mkdir_p(q, err)))
        goto out_tmp;
    for (size_t i = 0; i < nl && !st; i++)
        if (!(st = dm_path_fmt(q, sizeof q, err, "%s/specs/%zu.yaml", tmp, i)))
            st = write_text(q, lines[i].spec, strlen(lines[i].spec), err);
    if (st || (st = dm_path_fmt(q, sizeof q, err, "%s/manifest.jsonl", tmp)) ||
        (st = write_text(q, manifest, strlen(manifest), err)) ||
        (st = dm_path_fmt(q, sizeof q, err, "%s/sweep.mk", tmp)) || (st = write_text(q, frag, strlen(frag), err)) ||
        (st = dm_path_fmt(q, sizeof q, err, "%s/sweep.yaml", tmp)) || (st = write_text(q, s.text, s.text_len, err)))
        goto out_tmp;
    if (rename(tmp, dir) != 0)
        st = dm_err(err, DM_E_IO, "cannot move %s to %s: %s", tmp, dir, strerror(errno));
out_tmp:
    if (st) {
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        goto out;
    }
    if ((st = index_sweep(results, s.name, lines, nl, err)))
        goto out;
    fprintf(out, "sweep %s: %zu runs in %s\n  make -f Makefile.runs SWEEP=%s RESULTS=%s -j 2\n", s.name, nl, dir, s.name,
            results);
out:
    dm_free(old);
    dm_free(manifest);
    dm_free(frag);
    free_lines(lines, nl);
    sweep_free(&s);
    return st;
}

/* ---- running and status ---- */

/* The run id of manifest line `line`, and the number of lines. */
static dm_status manifest_line(const char *results, const char *name, long want, char *run_id, size_t n, long *count,
                               char *err)
{
    char p[DM_PATH_SIZE];
    char *text = NULL;
    size_t len = 0;
    dm_status st = dm_path_fmt(p, sizeof p, err, "%s/sweeps/%s/manifest.jsonl", results, name);
    if (!st && (st = read_file(p, &text, &len, err)) == DM_E_NOTFOUND)
        dm_err(err, DM_E_NOTFOUND, "no sweep '%s' in %s (expand it first: difflab sweep SWEEP.yaml)", name, results);
    if (st)
        return st;
    long k = 0;
    int found = 0;
    for (char *l = text; *l; k++) {
        char *nl = strchr(l, '\n');
        if (k == want) {
            const char *r = strstr(l, "\"run_id\":\"");
            if (r && (!nl || r < nl)) {
                r += 10;
                size_t m = strcspn(r, "\"");
                if (m < n) {
                    memcpy(run_id, r, m);
                    run_id[m] = 0;
                    found = 1;
                }
            }
        }
        if (!nl)
            break;
        l = nl + 1;
    }
    dm_free(text);
    if (count)
        *count = k;
    if (want >= 0 && !found)
        return dm_err(err, DM_E_INPUT, "sweep %s has %ld lines; no line %ld", name, k, want);
    return DM_OK;
}

dm_status dm_sweep_n_lines(const char *results, const char *name, long *n, char *err)
{
    char id[8];
    return manifest_line(results, name, -1, id, sizeof id, n, err);
}

/* The run's status from its files ("" if it has none), and its error message; keep (may be NULL)
 * gets the record when it was read (the caller frees it), else stays empty. */
static void run_status(const char *results, const char *id, char *status, size_t n, char *msg, size_t nmsg,
                       dm_runrec *keep)
{
    char h5[DM_PATH_SIZE], e[DM_ERR_SIZE];
    dm_runrec rec;
    status[0] = 0;
    if (msg)
        msg[0] = 0;
    if (dm_path_fmt(h5, sizeof h5, e, "%s/runs/%s/run.h5", results, id) || access(h5, F_OK) != 0)
        return;
    dm_runrec_init(&rec);
    if (dm_runlog_read(h5, &rec, e) == DM_OK) {
        const char *s = dm_runrec_attr(&rec, "status"), *m = dm_runrec_attr(&rec, "error");
        snprintf(status, n, "%s", s ? s : "unknown");
        if (msg && m)
            snprintf(msg, nmsg, "%s", m);
        if (keep) {
            *keep = rec;
            return;
        }
    } else {
        snprintf(status, n, "unreadable");
        if (msg)
            snprintf(msg, nmsg, "%s", e);
    }
    dm_runrec_free(&rec);
}

static dm_status mark_done(const char *results, const char *name, long line, char *err)
{
    char p[DM_PATH_SIZE];
    dm_status st = dm_path_fmt(p, sizeof p, err, "%s/sweeps/%s/done/%ld", results, name, line);
    return st ? st : dm_write_file_atomic(p, "", 0, err);
}

dm_status dm_sweep_run_line(const char *results, const char *name, long line, int n_over, const char *const *over,
                            FILE *out, char *err)
{
    char id[256], status[32], msg[DM_ERR_SIZE], spec[DM_PATH_SIZE];
    dm_status st = manifest_line(results, name, line, id, sizeof id, NULL, err);
    if (st)
        return st;
    for (int i = 0; i < n_over; i++)
        if (strncmp(over[i], "run.", 4) != 0)
            return dm_err(err, DM_E_INPUT, "override '%s': a sweep line takes only run.* keys (the rest is frozen in "
                          "its manifest)", over[i]);
    run_status(results, id, status, sizeof status, msg, sizeof msg, NULL);
    if (strcmp(status, "finished") == 0 || strcmp(status, "diverged") == 0) {
        fprintf(out, "sweep %s line %ld: run %s is %s\n", name, line, id, status);
        return mark_done(results, name, line, err);
    }
    const char *retry = getenv("RETRY");
    if (strcmp(status, "failed") == 0 && !(retry && strcmp(retry, "1") == 0))
        return dm_err(err, DM_E_STATE, "sweep %s line %ld: run %s failed before (%s); RETRY=1 retries it", name, line, id,
                      msg[0] ? msg : "no message");
    if ((st = dm_path_fmt(spec, sizeof spec, err, "%s/sweeps/%s/specs/%ld.yaml", results, name, line)))
        return st;
    dm_run_cfg rc = { .results = results, .new_repeat = 0, .out = out };
    st = dm_run_spec_file(&rc, spec, n_over, over, err);
    if (st == DM_E_NUMERIC) {   /* diverged: recorded, and done as far as the sweep goes */
        fprintf(out, "sweep %s line %ld: run %s diverged: %s\n", name, line, id, err);
        st = DM_OK;
    }
    return st ? st : mark_done(results, name, line, err);
}

/* Bring the index's row of run `id` (line of sweep `name`) up to date from its record, unless the
 * row already has the record's status, heartbeat and wall time. The runs may have been written on
 * other hosts (Slurm) that never touch the index. *n_synced counts the rows written. */
static dm_status sync_run(dm_index *ix, sqlite3_stmt *get, const char *results, const char *name, const char *id,
                          const dm_runrec *rec, long *n_synced, char *err)
{
    const char *status = dm_runrec_attr(rec, "status"), *beat = dm_runrec_attr(rec, "heartbeat"),
               *wall = dm_runrec_attr(rec, "wall_s");
    int same = 0;
    sqlite3_bind_text(get, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(get) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(get, 0), *b = (const char *)sqlite3_column_text(get, 1);
        same = s && b && status && beat && strcmp(s, status) == 0 && strcmp(b, beat) == 0 &&
               (!wall || (sqlite3_column_type(get, 2) == SQLITE_FLOAT && sqlite3_column_double(get, 2) == strtod(wall, NULL)));
    }
    sqlite3_reset(get);
    if (same)
        return DM_OK;
    char origin[DM_PATH_SIZE], dir[DM_PATH_SIZE], abs[PATH_MAX];
    dm_spec *spec = NULL;
    dm_status st;
    if ((st = dm_path_fmt(dir, sizeof dir, err, "%s/runs/%s", results, id)) ||
        (st = dm_path_fmt(origin, sizeof origin, err, "%s/run.h5/config", dir)))
        return st;
    /* As `difflab sample` does: the params come from the spec recorded in the run. */
    if (rec->config_yaml &&
        (st = dm_spec_load_text(&dm_spec_schema, rec->config_yaml, origin, 0, NULL, &spec, err)))
        return st;
    st = dm_index_upsert_run(ix, rec, spec, realpath(dir, abs) ? abs : dir, err);
    dm_spec_free(spec);
    if (!st) {
        char *sql = sqlite3_mprintf("INSERT OR IGNORE INTO sweep_runs (sweep, run_id) VALUES (%Q, %Q)", name, id);
        if (!sql || sqlite3_exec(dm_index_db(ix), sql, NULL, NULL, NULL) != SQLITE_OK)
            st = dm_err(err, DM_E_IO, "cannot record run %s in sweep %s of the index", id, name);
        sqlite3_free(sql);
    }
    *n_synced += !st;
    return st;
}

dm_status dm_sweep_status(const char *results, const char *name, FILE *out, char *err)
{
    long n = 0, n_synced = 0;
    dm_status st = dm_sweep_n_lines(results, name, &n, err);
    if (st)
        return st;
    char ipath[DM_PATH_SIZE];
    dm_index *ix = NULL;
    sqlite3_stmt *get = NULL;
    if ((st = dm_path_fmt(ipath, sizeof ipath, err, "%s/index.sqlite", results)) ||
        (st = dm_index_open(ipath, 0, &ix, err)))
        return st;
    if (sqlite3_prepare_v2(dm_index_db(ix), "SELECT status, heartbeat, wall_s FROM runs WHERE run_id = ?1", -1, &get,
                           NULL) != SQLITE_OK) {
        st = dm_err(err, DM_E_IO, "%s: %s", ipath, sqlite3_errmsg(dm_index_db(ix)));
        dm_index_close(ix);
        return st;
    }
    static const char *const states[] = { "queued", "running", "finished", "failed", "diverged", "interrupted", NULL };
    long count[6] = { 0 };
    char id[256], status[32], msg[DM_ERR_SIZE];
    char **failed = dm_calloc((size_t)n + 1, sizeof *failed);
    if (!failed)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    long nf = 0;
    for (long i = 0; i < n && !st; i++) {
        if ((st = manifest_line(results, name, i, id, sizeof id, NULL, err)))
            break;
        dm_runrec rec;
        dm_runrec_init(&rec);
        run_status(results, id, status, sizeof status, msg, sizeof msg, &rec);
        if (dm_runrec_attr(&rec, "run_id"))
            st = sync_run(ix, get, results, name, id, &rec, &n_synced, err);
        dm_runrec_free(&rec);
        int k = 0;
        if (!status[0])
            k = 0;
        else if (strcmp(status, "running") == 0)
            k = dm_runstore_is_live(results, id) ? 1 : 5;   /* no live process holds it: it died */
        else if (strcmp(status, "finished") == 0)
            k = 2;
        else if (strcmp(status, "failed") == 0 || strcmp(status, "unreadable") == 0)
            k = 3;
        else if (strcmp(status, "diverged") == 0)
            k = 4;
        else
            k = 5;
        count[k]++;
        if (k == 3 || k == 4) {
            if (asprintf(&failed[nf++], "  line %ld %s (%s): %s", i, id, status, msg[0] ? msg : "no message") < 0)
                failed[--nf] = NULL;
        }
    }
    if (!st) {
        fprintf(out, "sweep %s: %ld runs:", name, n);
        for (int k = 0; states[k]; k++)
            fprintf(out, " %ld %s%s", count[k], states[k], states[k + 1] ? "," : "\n");
        for (long i = 0; i < nf; i++)
            fprintf(out, "%s\n", failed[i]);
        if (n_synced)
            fprintf(out, "index: %ld run%s brought up to date from the run files\n", n_synced, n_synced == 1 ? "" : "s");
    }
    sqlite3_finalize(get);
    dm_index_close(ix);
    for (long i = 0; i < nf; i++)
        free(failed[i]);
    dm_free(failed);
    return st;
}

dm_status dm_sweep_unfinished(const char *results, const char *name, long **lines, long *n_lines, long *n_total,
                              long *n_failed, char *err)
{
    long n = 0;
    *lines = NULL;
    *n_lines = *n_failed = 0;
    dm_status st = dm_sweep_n_lines(results, name, &n, err);
    if (st)
        return st;
    *n_total = n;
    long *l = dm_calloc((size_t)n + 1, sizeof *l);
    if (!l)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    const char *retry = getenv("RETRY");
    const int retry_failed = retry && strcmp(retry, "1") == 0;
    char id[256], status[32], p[DM_PATH_SIZE];
    for (long i = 0; i < n && !st; i++) {
        if ((st = dm_path_fmt(p, sizeof p, err, "%s/sweeps/%s/done/%ld", results, name, i)))
            break;
        if (access(p, F_OK) == 0)
            continue;
        if ((st = manifest_line(results, name, i, id, sizeof id, NULL, err)))
            break;
        run_status(results, id, status, sizeof status, NULL, 0, NULL);
        if (strcmp(status, "finished") == 0 || strcmp(status, "diverged") == 0)
            continue;
        if (strcmp(status, "failed") == 0 && !retry_failed) {   /* as `sweep run`: only with RETRY=1 */
            ++*n_failed;
            continue;
        }
        l[(*n_lines)++] = i;
    }
    if (st) {
        dm_free(l);
        *n_lines = 0;
        return st;
    }
    *lines = l;
    return DM_OK;
}
