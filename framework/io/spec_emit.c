/* spec_emit.c — output of a resolved spec (canonical YAML, config hash, typed key walk) and the
 * key reference of a schema. Uses only the public spec API. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "io/spec.h"
#include "io/spec_internal.h"

#define MAX_LEVELS 32

/* ---- growable text; an allocation failure is remembered and reported once at the end ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s2 = dm_realloc(b->s, cap);
        if (!s2) {
            b->oom = true;
            return;
        }
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

/* ---- values ------------------------------------------------------------------------------ */

/* Shortest "%.{p}g" that strtod reads back bit for bit, always marked as a real: "1.0",
 * "1.0e-05". The '.' before an exponent also makes YAML 1.1 readers (PyYAML) see a float. */
static void fmt_real(double x, char buf[48])
{
    if (isnan(x)) {
        strcpy(buf, ".nan");
        return;
    }
    if (isinf(x)) {
        strcpy(buf, x > 0 ? ".inf" : "-.inf");
        return;
    }
    char t[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, x);
        double y = strtod(t, NULL);
        if (memcmp(&x, &y, sizeof x) == 0)
            break;
    }
    char *e = strchr(t, 'e');
    if (strchr(t, '.'))
        snprintf(buf, 48, "%s", t);
    else if (e)
        snprintf(buf, 48, "%.*s.0%s", (int)(e - t), t, e);
    else
        snprintf(buf, 48, "%s.0", t);
}

/* A double-quoted YAML string; escapes what a YAML reader would reject or change. */
static void put_quoted(sbuf *b, const char *s)
{
    char esc[16];
    sb_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p;
        size_t n = 1;
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
        } else if (c == '\n' || c == '\t' || c == '\r') {
            snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
        } else if (c < 0x80) {
            sb_putn(b, (const char *)p++, 1);
            continue;
        } else {
            /* UTF-8: pass printable code points through; escape C1 controls, BOM, U+FFFE/F */
            n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            unsigned cp = n == 4 ? c & 7 : n == 3 ? c & 15 : c & 31;
            bool ok = n > 1;
            for (size_t i = 1; i < n && ok; i++) {
                ok = (p[i] & 0xc0) == 0x80;
                cp = cp << 6 | (p[i] & 0x3f);
            }
            if (!ok) {
                n = 1; /* not UTF-8: the best a YAML string can say is the code point */
                snprintf(esc, sizeof esc, "\\x%02x", c);
            } else if (cp <= 0x9f || cp == 0xfeff || cp == 0xfffe || cp == 0xffff) {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            } else {
                sb_putn(b, (const char *)p, n);
                p += n;
                continue;
            }
        }
        sb_puts(b, esc);
        p += n;
    }
    sb_putn(b, "\"", 1);
}

static void put_str(sbuf *b, const char *s, bool quoted)
{
    if (quoted)
        put_quoted(b, s);
    else
        sb_puts(b, s);
}

/* One resolved key: its section path, and its param (NULL for a plug-in's `type`). */
typedef struct ent {
    char *key;
    const char *section;
    const dm_param_desc *p;
} ent;

static void put_value(sbuf *b, const dm_spec *spec, const ent *e, bool quoted)
{
    const char *o = dm_spec_opts(spec, e->section);
    char t[48];
    if (!e->p) {
        put_str(b, dm_spec_plugin(spec, e->section)->name, quoted);
        return;
    }
    o += e->p->offset;
    switch (e->p->type) {
    case DM_OPT_INT: {
        int64_t x;
        memcpy(&x, o, sizeof x);
        snprintf(t, sizeof t, "%" PRId64, x);
        sb_puts(b, t);
        break;
    }
    case DM_OPT_REAL: {
        double x;
        memcpy(&x, o, sizeof x);
        fmt_real(x, t);
        sb_puts(b, t);
        break;
    }
    case DM_OPT_BOOL: {
        bool x;
        memcpy(&x, o, sizeof x);
        sb_puts(b, x ? "true" : "false");
        break;
    }
    case DM_OPT_STR:
        put_str(b, o, quoted);
        break;
    case DM_OPT_CHOICE: {
        int x;
        memcpy(&x, o, sizeof x);
        put_str(b, e->p->choices[x], quoted);
        break;
    }
    case DM_OPT_REALS: {
        dm_reals r;
        memcpy(&r, o, sizeof r);
        size_t cols = r.rows ? r.n / r.rows : r.n;
        sb_puts(b, r.rows ? "[[" : "[");
        for (size_t i = 0; i < r.n; i++) {
            if (i)
                sb_puts(b, i % cols ? ", " : "], [");
            fmt_real(r.v[i], t);
            sb_puts(b, t);
        }
        sb_puts(b, r.rows ? "]]" : "]");
        break;
    }
    }
}

/* ---- the sorted list of resolved keys ------------------------------------------------------ */

/* Sorting by component at every level is strcmp with '.' ranked below every other byte. */
static int key_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned ca = *a == '.' ? 1u : (unsigned char)*a, cb = *b == '.' ? 1u : (unsigned char)*b;
        if (ca != cb)
            return ca < cb ? -1 : 1;
        if (!ca)
            return 0;
    }
}

static int ent_cmp(const void *a, const void *b)
{
    return key_cmp(((const ent *)a)->key, ((const ent *)b)->key);
}

static void ents_free(ent *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        dm_free(e[i].key);
    dm_free(e);
}

static dm_status ent_add(ent *e, size_t *n, const char *section, const char *name, const dm_param_desc *p,
                         char *err)
{
    size_t len = strlen(section) + strlen(name) + 2;
    if (!(e[*n].key = dm_malloc(len)))
        return dm_err(err, DM_E_NOMEM, "out of memory listing the spec's keys");
    snprintf(e[*n].key, len, "%s%s%s", section, section[0] ? "." : "", name);
    e[*n].section = section;
    e[(*n)++].p = p;
    return DM_OK;
}

static dm_status collect(const dm_spec *spec, ent **out, size_t *n_out, char *err)
{
    const dm_schema *s = dm_spec_get_schema(spec);
    size_t cap = 0, n = 0;
    ent *e = NULL;
    dm_status st = DM_OK;
    for (size_t i = 0; i < s->n_sections; i++) {
        const dm_plugin *pl = dm_spec_plugin(spec, s->sections[i].path);
        cap += pl && s->sections[i].registry;
        for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++)
            cap++;
    }
    if (!(e = dm_calloc(cap, sizeof *e))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory listing the spec's keys");
        goto out;
    }
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *path = s->sections[i].path;
        const dm_plugin *pl = dm_spec_plugin(spec, path);
        if (pl && s->sections[i].registry && (st = ent_add(e, &n, path, "type", NULL, err)) != DM_OK)
            goto out;
        for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++)
            if ((st = ent_add(e, &n, path, p->name, p, err)) != DM_OK)
                goto out;
    }
    qsort(e, n, sizeof *e, ent_cmp);
    *out = e;
    *n_out = n;
    e = NULL;
out:
    ents_free(e, n);
    return st;
}

static bool hidden(const ent *e, int for_hash)
{
    return for_hash && e->p && (e->p->flags & (DM_OPT_NOHASH | DM_OPT_SEED));
}

/* ---- canonical YAML ----------------------------------------------------------------------- */

typedef struct comp {
    const char *s;
    size_t n;
} comp;

static size_t split(const char *key, comp c[MAX_LEVELS])
{
    size_t m = 0;
    for (const char *p = key; m < MAX_LEVELS; p++) {
        size_t n = strcspn(p, ".");
        c[m++] = (comp){p, n};
        p += n;
        if (!*p)
            break;
    }
    return m;
}

/* The mapping headers `key` opens beyond those `prev` already opened, then "  leaf: ". */
static void put_key(sbuf *b, const char *prev, const char *key)
{
    comp c[MAX_LEVELS], q[MAX_LEVELS];
    size_t m = split(key, c), r = prev ? split(prev, q) : 0, k = 0;
    while (k + 1 < m && k + 1 < r && c[k].n == q[k].n && memcmp(c[k].s, q[k].s, c[k].n) == 0)
        k++;
    for (size_t j = 0; j < m; j++) {
        if (j < k)
            continue;
        for (size_t i = 0; i < j; i++)
            sb_puts(b, "  ");
        sb_putn(b, c[j].s, c[j].n);
        sb_puts(b, j + 1 < m ? ":\n" : ": ");
    }
}

dm_status dm_spec_canonical(const dm_spec *spec, int for_hash, char **text, char *err)
{
    ent *e = NULL;
    size_t n = 0;
    sbuf b = {0};
    const char *prev = NULL;
    dm_status st;
    *text = NULL;
    if ((st = collect(spec, &e, &n, err)) != DM_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (hidden(&e[i], for_hash))
            continue;
        put_key(&b, prev, e[i].key);
        put_value(&b, spec, &e[i], true);
        sb_puts(&b, "\n");
        prev = e[i].key;
    }
    if (!prev)
        sb_puts(&b, "{}\n");
    if (b.oom) {
        st = dm_err(err, DM_E_NOMEM, "out of memory writing the canonical spec");
        goto out;
    }
    *text = b.s;
    b.s = NULL;
out:
    dm_free(b.s);
    ents_free(e, n);
    return st;
}

dm_status dm_spec_config_hash(const dm_spec *spec, char hex[65], char *err)
{
    char *text = NULL;
    dm_status st = dm_spec_canonical(spec, 1, &text, err);
    if (st == DM_OK)
        dm_sha256_hex(text, strlen(text), hex);
    dm_free(text);
    return st;
}

dm_status dm_spec_foreach(const dm_spec *spec, dm_spec_kv_fn fn, void *ctx, char *err)
{
    ent *e = NULL;
    size_t n = 0;
    sbuf b = {0};
    dm_status st;
    if ((st = collect(spec, &e, &n, err)) != DM_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const dm_param_desc *p = e[i].p;
        const char *o = (const char *)dm_spec_opts(spec, e[i].section) + (p ? p->offset : 0);
        dm_spec_kv kv = {.key = e[i].key, .type = p ? p->type : DM_OPT_STR, .flags = p ? p->flags : 0};
        if (p && p->type == DM_OPT_INT)
            memcpy(&kv.i, o, sizeof kv.i);
        else if (p && p->type == DM_OPT_REAL)
            memcpy(&kv.r, o, sizeof kv.r);
        else if (p && p->type == DM_OPT_BOOL)
            kv.i = *(const bool *)o;
        else if (p && p->type == DM_OPT_CHOICE)
            kv.i = *(const int *)o;
        b.len = 0;
        put_value(&b, spec, &e[i], false);
        sb_puts(&b, ""); /* a value may be empty: make sure the buffer exists */
        if (b.oom) {
            st = dm_err(err, DM_E_NOMEM, "out of memory listing the spec's keys");
            goto out;
        }
        kv.text = b.s;
        if ((st = fn(ctx, &kv, err)) != DM_OK)
            goto out;
    }
out:
    dm_free(b.s);
    ents_free(e, n);
    return st;
}

/* ---- `difflab keys`: the key reference of a schema ------------------------------------------ */

/* Two passes over the same rows: the first measures the columns, the second prints. */
typedef struct keys_out {
    FILE *f;
    int pass;
    size_t w[4];
    size_t rows;
} keys_out;

static void row(keys_out *o, const char *const col[4], const char *label, const char *doc)
{
    char line[2048];
    o->rows++;
    if (o->pass == 0) {
        for (int i = 0; i < 4; i++)
            if (strlen(col[i]) > o->w[i])
                o->w[i] = strlen(col[i]);
        return;
    }
    int n = snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %-*s  %s%s%s%s", (int)o->w[0], col[0],
                     (int)o->w[1], col[1], (int)o->w[2], col[2], (int)o->w[3], col[3], label ? "(" : "",
                     label ? label : "", label ? ") " : "", doc ? doc : "");
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    while (len && line[len - 1] == ' ')
        len--;
    line[len] = '\0';
    fprintf(o->f, "%s\n", line);
}

static const char *type_word(dm_opt_type t)
{
    static const char *const w[] = {"int", "real", "bool", "string", "choice", "reals"};
    return (unsigned)t < sizeof w / sizeof *w ? w[t] : "?";
}

static void list_words(const char *const *w, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; w && w[i] && used + 1 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "{", w[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used && used + 1 < size)
        snprintf(buf + used, size - used, "}");
}

static void param_rows(keys_out *o, const char *path, const dm_plugin *pl, const char *label)
{
    char key[512], range[512], def[256];
    for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++) {
        snprintf(key, sizeof key, "%s%s%s", path, path[0] ? "." : "", p->name);
        range[0] = '\0';
        if (p->type == DM_OPT_CHOICE) {
            list_words(p->choices, range, sizeof range);
        } else if ((p->type == DM_OPT_INT || p->type == DM_OPT_REAL || p->type == DM_OPT_REALS) &&
                   !(p->min == 0 && p->max == 0)) {
            char lo[40], hi[40];
            dm_spec_fmt_num(p->min, lo);
            dm_spec_fmt_num(p->max, hi);
            snprintf(range, sizeof range, "[%s, %s]", lo, hi);
        }
        const char *d = p->def ? p->def : p->type == DM_OPT_REALS ? "[]" : "";
        snprintf(def, sizeof def, "%s", d[0] || p->type != DM_OPT_STR ? d : "\"\"");
        row(o, (const char *const[4]){key, type_word(p->type), def, range}, label, p->doc);
    }
}

static void type_row(keys_out *o, const dm_section_desc *d)
{
    char key[512], names[512];
    size_t used = 0;
    snprintf(key, sizeof key, "%s%stype", d->path, d->path[0] ? "." : "");
    names[0] = '\0';
    for (size_t i = 0; d->registry[i] && used + 1 < sizeof names; i++) {
        int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "{", d->registry[i]->name);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used && used + 1 < sizeof names)
        snprintf(names + used, sizeof names - used, "}");
    row(o, (const char *const[4]){key, "choice", d->default_type ? d->default_type : "(required)", names},
        NULL, d->doc);
}

/* A section matches its own path and the paths of containers above it ("diffusion"). */
static bool section_matches(const char *path, const char *filter)
{
    size_t n = strlen(filter);
    return strcmp(path, filter) == 0 || (n && strncmp(path, filter, n) == 0 && path[n] == '.');
}

static void all_rows(keys_out *o, const dm_schema *s, const char *filter)
{
    for (size_t i = 0; i < s->n_sections; i++) {
        const dm_section_desc *d = &s->sections[i];
        bool all = !filter || section_matches(d->path, filter);
        if (d->fixed && (all || strcmp(d->fixed->name, filter) == 0))
            param_rows(o, d->path, d->fixed, NULL);
        if (d->registry && all)
            type_row(o, d);
        for (size_t j = 0; d->registry && d->registry[j]; j++)
            if (all || strcmp(d->registry[j]->name, filter) == 0)
                param_rows(o, d->path, d->registry[j], d->registry[j]->name);
    }
}

dm_status dm_spec_print_keys(const dm_schema *schema, const char *filter, FILE *out, char *err)
{
    keys_out o = {.f = out};
    all_rows(&o, schema, filter);
    if (filter && o.rows == 0) {
        char valid[DM_ERR_SIZE / 2];
        size_t used = 0;
        valid[0] = '\0';
        for (size_t i = 0; i < schema->n_sections && used + 1 < sizeof valid; i++) {
            const dm_section_desc *d = &schema->sections[i];
            int n = 0;
            if (d->fixed || d->registry)
                n = snprintf(valid + used, sizeof valid - used, "%s%s", used ? ", " : "",
                             d->path[0] ? d->path : "\"\"");
            used += n > 0 ? (size_t)n : 0;
            for (size_t j = 0; d->registry && d->registry[j] && used + 1 < sizeof valid; j++) {
                n = snprintf(valid + used, sizeof valid - used, ", %s", d->registry[j]->name);
                used += n > 0 ? (size_t)n : 0;
            }
        }
        return dm_err(err, DM_E_INPUT, "no section or plug-in named '%s'; valid: %s", filter, valid);
    }
    o.pass = 1;
    all_rows(&o, schema, filter);
    return DM_OK;
}
