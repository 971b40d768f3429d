/* spec.c — loading a spec: YAML tree, overrides applied to the tree, validation against the
 * schema's option tables into one options struct per section. Output is in spec_emit.c. */
#include "io/spec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/yaml_tree.h"

#define KEY_MAX 256               /* a schema's dotted keys fit (checked) */
#define SPEC_FILE_MAX (64u << 20) /* a spec is a page of text; refuse to slurp a huge file */
#define MAX_HINTS 3
#define MAX_CANDIDATES 256

typedef struct spec_loc {
    char *key;   /* dotted key given explicitly */
    char *where; /* "file:line:col" or "override 'k=v'" */
} spec_loc;

struct dm_spec {
    const dm_schema *schema;
    const dm_plugin **plugin; /* per schema section; NULL for a pure container */
    void **opts;              /* per schema section: the plug-in's options struct */
    spec_loc *locs;           /* where each explicitly given key came from */
    size_t n_locs, cap_locs;
    char *origin;             /* the file (or text origin) the spec was loaded from */
};

/* Remember where `key` was given (for errors found after loading). */
static dm_status add_loc(dm_spec *spec, const char *key, const dm_ynode *at, char *err)
{
    char where[512];
    dm_ytree_where(at, where, sizeof where);
    if (spec->n_locs == spec->cap_locs) {
        size_t cap = spec->cap_locs ? 2 * spec->cap_locs : 16;
        spec_loc *nl = dm_realloc(spec->locs, cap * sizeof *nl);
        if (!nl)
            return dm_err(err, DM_E_NOMEM, "out of memory for the spec");
        spec->locs = nl;
        spec->cap_locs = cap;
    }
    spec_loc *l = &spec->locs[spec->n_locs];
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

typedef struct loader {
    const dm_schema *schema;
    dm_spec *spec;
    const char *origin;
    char *err;
} loader;

/* ---- small helpers ---------------------------------------------------------------------- */

static dm_status bad(char *err, const dm_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static dm_status bad(char *err, const dm_ynode *at, const char *fmt, ...)
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
static bool join(char *buf, const char *path, const char *name)
{
    int w = snprintf(buf, KEY_MAX, "%s%s%s", path, path[0] ? "." : "", name);
    return w >= 0 && w < KEY_MAX;
}

/* What a node is, for "expected X, got Y". */
static const char *got(const dm_ynode *n, char *buf, size_t size)
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

/* Shortest text that reads back to x, for messages; whole numbers without an exponent. */
static void fmt_num(double x, char buf[40])
{
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, 40, "%.0f", x);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 40, "%.*g", p, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static long find_section(const dm_schema *s, const char *path)
{
    for (size_t i = 0; i < s->n_sections; i++)
        if (strcmp(s->sections[i].path, path) == 0)
            return (long)i;
    return -1;
}

static bool is_plugin_section(const dm_schema *s, const char *path)
{
    long i = find_section(s, path);
    return i >= 0 && s->sections[i].registry;
}

/* Is `name` a component under `path` that leads to a section ("diffusion" at the top)? */
static bool is_child(const dm_schema *s, const char *path, const char *name)
{
    char full[KEY_MAX];
    if (!name[0] || strchr(name, '.') || !join(full, path, name))
        return false;
    size_t n = strlen(full);
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *p = s->sections[i].path;
        if (strncmp(p, full, n) == 0 && (p[n] == '\0' || p[n] == '.'))
            return true;
    }
    return false;
}

static const dm_param_desc *find_param(const dm_plugin *pl, const char *name)
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

/* ---- scalar values ---------------------------------------------------------------------- */

/* YAML 1.2 core schema: an int is [-+]?[0-9]+ (we take decimal only). */
static bool int_syntax(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* YAML 1.2 core float without the .inf / .nan words: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)
 * ([eE][-+]?[0-9]+)? — checked before strtod, which would also take hex, "infinity", ... */
static bool real_syntax(const char *s)
{
    int digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool inf_nan_word(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '.')
        s++;
    return strcasecmp(s, "inf") == 0 || strcasecmp(s, "nan") == 0 || strcasecmp(s, "infinity") == 0;
}

static bool has_bounds(const dm_param_desc *p)
{
    return !(p->min == 0 && p->max == 0);
}

static dm_status check_range(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, double x)
{
    if (!has_bounds(p) || (x >= p->min && x <= p->max))
        return DM_OK;
    char lo[40], hi[40];
    fmt_num(p->min, lo);
    fmt_num(p->max, hi);
    return bad(err, v, "%s: %s is out of range [%s, %s]", key, v->text, lo, hi);
}

static dm_status get_real(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, double *out)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR || v->quoted || dm_ytree_is_null(v))
        return bad(err, v, "%s: expected a real number, got %s", key, got(v, g, sizeof g));
    if (inf_nan_word(v->text))
        return bad(err, v, "%s: expected a finite real number, got '%s'", key, v->text);
    if (!real_syntax(v->text))
        return bad(err, v, "%s: expected a real number, got %s", key, got(v, g, sizeof g));
    double x = strtod(v->text, NULL);
    if (!isfinite(x))
        return bad(err, v, "%s: %s is too large for a real number", key, v->text);
    *out = x;
    return check_range(err, v, key, p, x);
}

static dm_status get_int(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, int64_t *out)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR || v->quoted || !int_syntax(v->text))
        return bad(err, v, "%s: expected an integer, got %s", key, got(v, g, sizeof g));
    errno = 0;
    long long x = strtoll(v->text, NULL, 10);
    if (errno == ERANGE)
        return bad(err, v, "%s: %s is too large for an integer", key, v->text);
    *out = x;
    return check_range(err, v, key, p, (double)x);
}

static dm_status get_bool(char *err, const dm_ynode *v, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
    char g[96];
    for (int i = 0; v->kind == DM_Y_SCALAR && !v->quoted && i < 3; i++) {
        if (strcmp(v->text, yes[i]) == 0 || strcmp(v->text, no[i]) == 0) {
            *out = strcmp(v->text, yes[i]) == 0;
            return DM_OK;
        }
    }
    return bad(err, v, "%s: expected true or false, got %s", key, got(v, g, sizeof g));
}

static dm_status get_choice(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, int *out)
{
    char g[96], valid[512];
    size_t used = 0;
    valid[0] = '\0';
    if (!p->choices)
        return dm_err(err, DM_E_INTERNAL, "option table: %s is a choice without choices", key);
    for (int i = 0; p->choices[i]; i++) {
        if (v->kind == DM_Y_SCALAR && strcmp(v->text, p->choices[i]) == 0) {
            *out = i;
            return DM_OK;
        }
        int w = snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", p->choices[i]);
        used += w > 0 && (size_t)w < sizeof valid - used ? (size_t)w : 0;
    }
    if (v->kind != DM_Y_SCALAR)
        return bad(err, v, "%s: expected one of %s, got %s", key, valid, got(v, g, sizeof g));
    return bad(err, v, "%s: unknown choice %s; valid: %s", key, got(v, g, sizeof g), valid);
}

static dm_status get_str(char *err, const dm_ynode *v, const char *key, char *dst)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR)
        return bad(err, v, "%s: expected a string, got %s", key, got(v, g, sizeof g));
    if (v->len >= DM_OPT_STR_MAX)
        return bad(err, v, "%s: string is longer than %d bytes", key, DM_OPT_STR_MAX - 1);
    if (memchr(v->text, '\0', v->len))
        return bad(err, v, "%s: string contains a NUL character", key);
    memset(dst, 0, DM_OPT_STR_MAX);
    memcpy(dst, v->text, v->len);
    return DM_OK;
}

/* A sequence of numbers, or of equal-length sequences of numbers (rows, flattened row-major). */
static dm_status get_reals(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p,
                           dm_reals *out)
{
    char g[96], ek[KEY_MAX + 48];
    dm_status st = DM_OK;
    double *a = NULL;
    size_t rows = 0, cols = v->n, n = v->n;
    if (v->kind != DM_Y_SEQ)
        return bad(err, v, "%s: expected a sequence of numbers, got %s", key, got(v, g, sizeof g));
    if (v->n && v->item[0]->kind == DM_Y_SEQ) {
        rows = v->n;
        cols = v->item[0]->n;
        for (size_t r = 0; r < rows; r++) {
            const dm_ynode *row = v->item[r];
            if (row->kind != DM_Y_SEQ)
                return bad(err, row, "%s[%zu]: expected a sequence of numbers (a row), got %s", key, r,
                           got(row, g, sizeof g));
            if (row->n == 0)
                return bad(err, row, "%s[%zu]: a row may not be empty", key, r);
            if (row->n != cols)
                return bad(err, row, "%s: rows of different lengths (%zu and %zu)", key, cols, row->n);
        }
        n = rows * cols;
    }
    if (n && !(a = dm_malloc(n * sizeof *a)))
        return dm_err(err, DM_E_NOMEM, "out of memory reading %s", key);
    for (size_t k = 0; k < n; k++) {
        const dm_ynode *e = rows ? v->item[k / cols]->item[k % cols] : v->item[k];
        if (rows)
            snprintf(ek, sizeof ek, "%s[%zu][%zu]", key, k / cols, k % cols);
        else
            snprintf(ek, sizeof ek, "%s[%zu]", key, k);
        if (e->kind != DM_Y_SCALAR) {
            st = bad(err, e, "%s: expected a number, got %s", ek, got(e, g, sizeof g));
            goto out;
        }
        if ((st = get_real(err, e, ek, p, &a[k])) != DM_OK)
            goto out;
    }
    *out = (dm_reals){a, n, rows};
    a = NULL;
out:
    dm_free(a);
    return st;
}

/* Parses v into the options struct; frees a REALS array it replaces. */
static dm_status set_param(char *err, const char *key, const dm_param_desc *p, const dm_ynode *v, void *opts)
{
    char *dst = (char *)opts + p->offset;
    dm_status st = DM_OK;
    switch (p->type) {
    case DM_OPT_INT: {
        int64_t x = 0;
        if ((st = get_int(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_REAL: {
        double x = 0;
        if ((st = get_real(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_BOOL: {
        bool x = false;
        if ((st = get_bool(err, v, key, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_STR:
        st = get_str(err, v, key, dst);
        break;
    case DM_OPT_CHOICE: {
        int x = 0;
        if ((st = get_choice(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_REALS: {
        dm_reals x = {0}, old;
        if ((st = get_reals(err, v, key, p, &x)) == DM_OK) {
            memcpy(&old, dst, sizeof old);
            dm_free(old.v);
            memcpy(dst, &x, sizeof x);
        }
        break;
    }
    default:
        st = dm_err(err, DM_E_INTERNAL, "option table: %s has an unknown type", key);
    }
    return st;
}

/* A value's text as YAML (an override's value, a table default); empty text is a null scalar. */
static dm_status parse_value(const char *text, const char *label, dm_ynode **out, char *err)
{
    dm_status st = dm_ytree_parse(text, strlen(text), label, false, out, err);
    if (st == DM_OK && !*out && !(*out = dm_ytree_new_scalar(label, 0, 0, "", false)))
        st = dm_err(err, DM_E_NOMEM, "out of memory reading %s", label);
    return st;
}

/* The default text is parsed like user input, so the table and the spec cannot disagree; a
 * default that does not parse is a bug in the table, not the user's fault. */
static dm_status set_default(char *err, const char *key, const dm_param_desc *p, void *opts)
{
    const char *def = p->def ? p->def : p->type == DM_OPT_STR ? "" : p->type == DM_OPT_REALS ? "[]" : NULL;
    dm_ynode *v = NULL;
    dm_status st = DM_OK;
    if (!def) {
        st = dm_err(err, DM_E_INTERNAL, "option table: %s has no default", key);
        goto out;
    }
    if ((st = parse_value(def, "default", &v, err)) == DM_OK)
        st = set_param(err, key, p, v, opts);
    if (st == DM_E_INPUT) {
        char msg[DM_ERR_SIZE];
        snprintf(msg, sizeof msg, "%s", err ? err : "");
        st = dm_err(err, DM_E_INTERNAL, "option table: bad default '%s' of %s (%s)", def, key, msg);
    }
out:
    dm_ytree_free(v);
    return st;
}

/* ---- validation -------------------------------------------------------------------------- */

/* Optimal string alignment distance (edits, with adjacent transpositions as one); case is
 * ignored, since "t" for "T" is the same slip as a missing letter. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), d[3][65];
    if (na > 64 || nb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return d[na % 3][nb];
}

typedef struct hint {
    const char *name;
    size_t len; /* a child component is not NUL-terminated at its end */
    size_t dist;
} hint;

static void add_candidate(hint *h, size_t *n, const char *typed, const char *name, size_t len)
{
    char cand[KEY_MAX];
    if (*n == MAX_CANDIDATES || len >= KEY_MAX)
        return;
    memcpy(cand, name, len);
    cand[len] = '\0';
    for (size_t i = 0; i < *n; i++)
        if (h[i].len == len && strncmp(h[i].name, name, len) == 0)
            return;
    size_t d = edit_distance(typed, cand), lt = strlen(typed), most = lt > len ? lt : len;
    bool sub = (lt >= 3 && strstr(cand, typed)) || (len >= 3 && strstr(typed, cand));
    if (d <= most / 3 + 1 || sub)
        h[(*n)++] = (hint){name, len, d};
}

static int hint_cmp(const void *pa, const void *pb)
{
    const hint *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = strncmp(a->name, b->name, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* "; did you mean: train.lr, train.lr_min?" from the section's params, `type`, child names. */
static void closest_keys(const dm_schema *s, const char *path, const dm_plugin *pl, bool plug,
                         const char *typed, char *buf, size_t size)
{
    hint h[MAX_CANDIDATES];
    size_t n = 0, used = 0, plen = strlen(path);
    buf[0] = '\0';
    for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++)
        add_candidate(h, &n, typed, p->name, strlen(p->name));
    if (plug)
        add_candidate(h, &n, typed, "type", 4);
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *p = s->sections[i].path;
        if (!p[0] || (plen && (strncmp(p, path, plen) != 0 || p[plen] != '.')))
            continue;
        const char *c = plen ? p + plen + 1 : p;
        add_candidate(h, &n, typed, c, strcspn(c, "."));
    }
    qsort(h, n, sizeof *h, hint_cmp);
    for (size_t i = 0; i < n && i < MAX_HINTS && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s%s%.*s", i ? ", " : "; did you mean: ", path,
                         plen ? "." : "", (int)h[i].len, h[i].name);
        used += w > 0 ? (size_t)w : 0;
    }
    if (n && used < size)
        snprintf(buf + used, size - used, "?");
}

static dm_status unknown_key(loader *L, const char *path, const dm_section_desc *d, const dm_plugin *pl,
                             const dm_ynode *key, const dm_ynode *type_node)
{
    char hints[512] = "", other[256] = "", via[300] = "";
    const char *k = key->text, *sep = path[0] ? "." : "";
    if (strcmp(k, "<<") == 0)
        return bad(L->err, key, "%s%s<<: merge keys are not supported; write the keys out", path, sep);
    if (strchr(k, '.'))
        return bad(L->err, key, "unknown key '%s%s%s': write nested mappings, not dotted keys", path, sep, k);
    closest_keys(L->schema, path, pl, d && d->registry, k, hints, sizeof hints);
    if (d && d->registry) {
        /* The key belongs to another plug-in: say so, and whether an override switched type. */
        size_t used = 0;
        for (size_t i = 0; d->registry[i] && used < sizeof other; i++) {
            if (d->registry[i] == pl || !find_param(d->registry[i], k))
                continue;
            int w = snprintf(other + used, sizeof other - used, "%s%s",
                             used ? ", " : " (a key of: ", d->registry[i]->name);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used && used < sizeof other)
            snprintf(other + used, sizeof other - used, ")");
        if (type_node && type_node->line == 0 && type_node->origin != key->origin)
            snprintf(via, sizeof via, ", chosen by %s", type_node->origin);
        return bad(L->err, key, "unknown key '%s%s%s' for %s '%s'%s%s%s", path, sep, k,
                   d->kind ? d->kind : "plug-in", pl->name, via, other, other[0] ? "" : hints);
    }
    return bad(L->err, key, "unknown key '%s%s%s'%s", path, sep, k, hints);
}

static dm_status resolve_plugin(loader *L, const dm_section_desc *d, const dm_ynode *type_node,
                                const dm_ynode *at, const dm_plugin **out)
{
    char key[KEY_MAX], valid[512], g[96];
    const char *kind = d->kind ? d->kind : "plug-in";
    if (!join(key, d->path, "type"))
        return dm_err(L->err, DM_E_INTERNAL, "option table: section path too long");
    list_plugins(d->registry, valid, sizeof valid);
    if (type_node) {
        if (type_node->kind != DM_Y_SCALAR || dm_ytree_is_null(type_node))
            return bad(L->err, type_node, "%s: expected a %s name, got %s; valid: %s", key, kind,
                       got(type_node, g, sizeof g), valid);
        if (!(*out = dm_registry_find(d->registry, type_node->text)))
            return bad(L->err, type_node, "%s: unknown %s '%s'; valid: %s", key, kind, type_node->text,
                       valid);
        return DM_OK;
    }
    if (d->default_type) {
        if (!(*out = dm_registry_find(d->registry, d->default_type)))
            return dm_err(L->err, DM_E_INTERNAL, "option table: default %s '%s' of %s is not registered",
                          kind, d->default_type, d->path);
        return DM_OK;
    }
    if (at)
        return bad(L->err, at, "%s is required; valid: %s", key, valid);
    return dm_err(L->err, DM_E_INPUT, "%s: %s is required; valid: %s", L->origin, key, valid);
}

/* Allocates the section's options struct and fills every param: given in `map`, or default. */
static dm_status section_fill(loader *L, long si, const dm_plugin *pl, const dm_ynode *map)
{
    const char *path = L->schema->sections[si].path;
    char key[KEY_MAX];
    if (L->spec->opts[si])
        return dm_err(L->err, DM_E_INTERNAL, "section '%s' filled twice", path);
    L->spec->plugin[si] = pl;
    if (!(L->spec->opts[si] = dm_calloc(1, pl->opts_size)))
        return dm_err(L->err, DM_E_NOMEM, "out of memory for the options of '%s'", path);
    for (const dm_param_desc *p = pl->params; p && p->name; p++) {
        if (!join(key, path, p->name))
            return dm_err(L->err, DM_E_INTERNAL, "option table: key %s.%s too long", path, p->name);
        long k = map ? dm_ytree_map_find(map, p->name) : -1;
        dm_status st = k >= 0 ? set_param(L->err, key, p, map->item[k + 1], L->spec->opts[si])
                              : set_default(L->err, key, p, L->spec->opts[si]);
        if (st == DM_OK && k >= 0)
            st = add_loc(L->spec, key, map->item[k + 1], L->err);
        if (st != DM_OK)
            return st;
    }
    return DM_OK;
}

/* Validates the node at `path` (the top level, a section, or a container) and its children. */
static dm_status check_node(loader *L, const char *path, const dm_ynode *node)
{
    long si = find_section(L->schema, path);
    const dm_section_desc *d = si >= 0 ? &L->schema->sections[si] : NULL;
    bool plug = d && d->registry;
    const dm_ynode *map = NULL, *type_node = NULL;
    const dm_plugin *pl = d ? d->fixed : NULL;
    char g[96], child[KEY_MAX];
    dm_status st = DM_OK;
    if (node->kind == DM_Y_MAP)
        map = node;
    else if (plug && node->kind == DM_Y_SCALAR && !dm_ytree_is_null(node))
        type_node = node; /* `sampler: ddim` is {type: ddim} */
    else if (!dm_ytree_is_null(node))
        return bad(L->err, node, "%s: expected a mapping, got %s", path, got(node, g, sizeof g));
    long tk = map && plug ? dm_ytree_map_find(map, "type") : -1;
    if (tk >= 0)
        type_node = map->item[tk + 1];
    if (plug && (st = resolve_plugin(L, d, type_node, node, &pl)) != DM_OK)
        return st;
    if (plug && type_node) {
        if (!join(child, path, "type"))
            return dm_err(L->err, DM_E_INTERNAL, "section path too long");
        if ((st = add_loc(L->spec, child, type_node, L->err)) != DM_OK)
            return st;
    }
    for (size_t i = 0; map && i < map->n; i += 2) {
        const dm_ynode *k = map->item[i];
        bool known = (long)i == tk;
        if (!known && strlen(k->text) == k->len) /* a key with a NUL in it matches nothing */
            known = find_param(pl, k->text) || is_child(L->schema, path, k->text);
        if (!known)
            return unknown_key(L, path, d, pl, k, type_node);
    }
    if (pl && (st = section_fill(L, si, pl, map)) != DM_OK)
        return st;
    for (size_t i = 0; map && i < map->n; i += 2) {
        const char *k = map->item[i]->text;
        if ((long)i == tk || find_param(pl, k))
            continue;
        if (!join(child, path, k))
            return dm_err(L->err, DM_E_INTERNAL, "section path too long");
        if ((st = check_node(L, child, map->item[i + 1])) != DM_OK)
            return st;
    }
    return DM_OK;
}

/* Sections the text did not mention: defaults (a plug-in section needs a default type). */
static dm_status fill_missing(loader *L)
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

/* ---- overrides ---------------------------------------------------------------------------- */

/* Makes the value at item[k+1] of `map` a mapping to descend into: a null becomes {}, a plug-in
 * shorthand `sampler: ddim` becomes {type: ddim}. */
static dm_status descend(loader *L, dm_ynode *map, long k, const char *path, const char *label,
                         dm_ynode **out)
{
    dm_ynode *v = map->item[k + 1], *m = NULL, *t = NULL;
    if (v->kind == DM_Y_MAP) {
        *out = v;
        return DM_OK;
    }
    if (dm_ytree_is_null(v)) {
        v->kind = DM_Y_MAP; /* a null scalar has no items: only its text goes */
        dm_free(v->text);
        v->text = NULL;
        v->len = 0;
        *out = v;
        return DM_OK;
    }
    if (v->kind != DM_Y_SCALAR || !is_plugin_section(L->schema, path))
        return dm_err(L->err, DM_E_INPUT, "%s: cannot set a key under '%s': it is not a mapping", label,
                      path);
    if (!(m = dm_ytree_new_map(v->origin, v->line, v->col)) ||
        !(t = dm_ytree_new_scalar(v->origin, v->line, v->col, "type", false)) ||
        dm_ytree_map_add(m, t, v, NULL) != DM_OK) {
        dm_ytree_free(m);
        dm_ytree_free(t);
        return dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
    }
    map->item[k + 1] = m;
    *out = m;
    return DM_OK;
}

static dm_status apply_override(loader *L, dm_ynode *root, const char *ov, const char *label)
{
    const char *eq = strchr(ov, '=');
    char *key = NULL, path[KEY_MAX] = "";
    dm_ynode *val = NULL, *kn = NULL, *cur = root;
    dm_status st = DM_OK;
    if (!eq) {
        st = dm_err(L->err, DM_E_INPUT, "%s: expected KEY=VALUE", label);
        goto out;
    }
    if (!(key = dm_malloc((size_t)(eq - ov) + 1))) {
        st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
        goto out;
    }
    memcpy(key, ov, (size_t)(eq - ov));
    key[eq - ov] = '\0';
    if ((st = parse_value(eq + 1, label, &val, L->err)) != DM_OK)
        goto out;
    for (char *c = key, *dot;; c = dot + 1) {
        dot = strchr(c, '.');
        if (dot)
            *dot = '\0';
        if (!c[0]) {
            st = dm_err(L->err, DM_E_INPUT, "%s: empty component in key '%.*s'", label, (int)(eq - ov), ov);
            goto out;
        }
        char sub[KEY_MAX];
        bool fits = join(sub, path, c);
        long k = dm_ytree_map_find(cur, c);
        if (!dot) { /* the last component: set or replace */
            if (!(kn = dm_ytree_new_scalar(label, 0, 0, c, false))) {
                st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
                goto out;
            }
            if (k >= 0) {
                dm_ytree_free(cur->item[k]);
                dm_ytree_free(cur->item[k + 1]);
                cur->item[k] = kn;
                cur->item[k + 1] = val;
            } else if ((st = dm_ytree_map_add(cur, kn, val, L->err)) != DM_OK) {
                goto out;
            }
            kn = val = NULL;
            break;
        }
        if (!fits) { /* no schema key is this long: name what exists */
            st = dm_err(L->err, DM_E_INPUT, "%s: unknown key '%.*s'", label, (int)(eq - ov), ov);
            goto out;
        }
        if (k < 0) {
            dm_ynode *m = dm_ytree_new_map(label, 0, 0);
            if (!m || !(kn = dm_ytree_new_scalar(label, 0, 0, c, false)) ||
                dm_ytree_map_add(cur, kn, m, NULL) != DM_OK) {
                dm_ytree_free(m);
                st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
                goto out;
            }
            kn = NULL;
            cur = m;
        } else if ((st = descend(L, cur, k, sub, label, &cur)) != DM_OK) {
            goto out;
        }
        memcpy(path, sub, sizeof path);
    }
out:
    dm_ytree_free(kn);
    dm_ytree_free(val);
    dm_free(key);
    return st;
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

static dm_status load(const dm_schema *schema, const char *text, size_t len, const char *origin, int n_over,
                      const char *const *overrides, dm_spec **out, char *err)
{
    dm_ynode *root = NULL;
    char **labels = NULL;
    dm_spec *spec = NULL;
    loader L = {schema, NULL, origin, err};
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
        st = bad(err, root, "expected a mapping of keys at the top level, got %s", got(root, g, sizeof g));
        goto out;
    }
    if (n_over > 0 && !(labels = dm_calloc((size_t)n_over, sizeof *labels))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory applying overrides");
        goto out;
    }
    for (int i = 0; i < n_over; i++) {
        /* nodes point at their label, so labels live until the tree is gone */
        size_t n = strlen(overrides[i]) + sizeof "override ''";
        if (!(labels[i] = dm_malloc(n))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory applying overrides");
            goto out;
        }
        snprintf(labels[i], n, "override '%s'", overrides[i]);
        if ((st = apply_override(&L, root, overrides[i], labels[i])) != DM_OK)
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
    for (int i = 0; labels && i < n_over; i++)
        dm_free(labels[i]);
    dm_free(labels);
    return st;
}

dm_status dm_spec_load_text(const dm_schema *schema, const char *text, const char *origin, int n_over,
                            const char *const *overrides, dm_spec **out, char *err)
{
    return load(schema, text, strlen(text), origin, n_over, overrides, out, err);
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
    st = load(schema, buf, len, path, n_over, overrides, out, err);
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
    long i = find_section(spec->schema, section_path);
    return i >= 0 ? spec->plugin[i] : NULL;
}

const void *dm_spec_opts(const dm_spec *spec, const char *section_path)
{
    long i = find_section(spec->schema, section_path);
    return i >= 0 ? spec->opts[i] : NULL;
}
