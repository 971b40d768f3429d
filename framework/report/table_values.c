/* table_values.c — the small containers of a table's build: key values and their order, axes of
 * distinct tuples, descriptors (sorted key = value entries compared by their canonical text) and
 * pools of distinct descriptors, notes. */
#include "report/table_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ----------------------------------------------------------------------- values ---- */

void dm_tkv_text(sqlite3_stmt *s, int c, char *buf, size_t n)
{
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: buf[0] = '\0'; break;
    case SQLITE_INTEGER: snprintf(buf, n, "%lld", (long long)sqlite3_column_int64(s, c)); break;
    case SQLITE_FLOAT: dm_table_format_real(buf, n, sqlite3_column_double(s, c)); break;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, c);
        snprintf(buf, n, "%s", t ? t : "");
    }
    }
}

int dm_tkv_read(dm_tkv *k, sqlite3_stmt *s, int c)
{
    char buf[48];
    k->s = NULL;
    k->d = 0;
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: k->kind = DM_TKV_NULL; return 0;
    case SQLITE_INTEGER: k->kind = DM_TKV_NUM; k->d = (double)sqlite3_column_int64(s, c); break;
    case SQLITE_FLOAT: k->kind = DM_TKV_NUM; k->d = sqlite3_column_double(s, c); break;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, c);
        k->kind = DM_TKV_TEXT;
        return (k->s = dm_strdup(t ? t : "")) ? 0 : -1;
    }
    }
    dm_tkv_text(s, c, buf, sizeof buf);
    return (k->s = dm_strdup(buf)) ? 0 : -1;
}

int dm_tkv_cmp(const dm_tkv *a, const dm_tkv *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind == DM_TKV_NUM) {
        if (a->d != b->d)
            return a->d < b->d ? -1 : 1;
        return strcmp(a->s, b->s);
    }
    if (a->kind == DM_TKV_TEXT)
        return strcmp(a->s, b->s);
    return 0;
}

int dm_tkv_match(const dm_tkv *cell, const dm_tkv *run)
{
    return run->kind == DM_TKV_WILD || dm_tkv_cmp(cell, run) == 0;
}

/* ------------------------------------------------------------------------- axes ---- */

void dm_taxis_free(dm_taxis *a)
{
    for (size_t i = 0; i < a->n * a->width; ++i)
        dm_free(a->v[i].s);
    dm_free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static int tuple_cmp(const dm_tkv *a, const dm_tkv *b, size_t w)
{
    for (size_t i = 0; i < w; ++i) {
        int c = dm_tkv_cmp(&a[i], &b[i]);
        if (c)
            return c;
    }
    return 0;
}

long dm_taxis_add(dm_taxis *a, const dm_tkv *t)
{
    for (size_t i = 0; i < a->n; ++i)
        if (!tuple_cmp(&a->v[i * a->width], t, a->width))
            return (long)i;
    if (a->n == a->cap) {
        size_t nc = a->cap ? 2 * a->cap : 16;
        dm_tkv *p = dm_realloc(a->v, nc * (a->width ? a->width : 1) * sizeof *p);
        if (!p)
            return -1;
        a->v = p;
        a->cap = nc;
    }
    dm_tkv *dst = &a->v[a->n * a->width];
    for (size_t i = 0; i < a->width; ++i) {
        dst[i] = t[i];
        if (t[i].s && !(dst[i].s = dm_strdup(t[i].s))) {
            for (size_t j = 0; j < i; ++j)
                dm_free(dst[j].s);
            return -1;
        }
    }
    return (long)a->n++;
}

/* Insertion sort: axes are short. */
size_t *dm_taxis_order(const dm_taxis *a)
{
    size_t *o = dm_malloc((a->n ? a->n : 1) * sizeof *o);
    if (!o)
        return NULL;
    for (size_t i = 0; i < a->n; ++i) {
        size_t j = i;
        while (j > 0 && tuple_cmp(&a->v[o[j - 1] * a->width], &a->v[i * a->width], a->width) > 0) {
            o[j] = o[j - 1];
            --j;
        }
        o[j] = i;
    }
    return o;
}

/* ------------------------------------------------------------------ descriptors ---- */

int dm_tdesc_push(dm_tdesc *d, const char *key, const char *val)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 16;
        char **k = dm_realloc(d->key, nc * sizeof *k);
        if (!k)
            return -1;
        d->key = k;
        char **v = dm_realloc(d->val, nc * sizeof *v);
        if (!v)
            return -1;
        d->val = v;
        d->cap = nc;
    }
    char *k = dm_strdup(key), *v = dm_strdup(val);
    if (!k || !v) {
        dm_free(k);
        dm_free(v);
        return -1;
    }
    d->key[d->n] = k;
    d->val[d->n++] = v;
    return 0;
}

int dm_tdesc_seal(dm_tdesc *d)
{
    /* insertion sort by key (the params query gives them sorted already) */
    for (size_t i = 1; i < d->n; ++i) {
        char *k = d->key[i], *v = d->val[i];
        size_t j = i;
        while (j > 0 && strcmp(d->key[j - 1], k) > 0) {
            d->key[j] = d->key[j - 1];
            d->val[j] = d->val[j - 1];
            --j;
        }
        d->key[j] = k;
        d->val[j] = v;
    }
    size_t len = 1;
    for (size_t i = 0; i < d->n; ++i)
        len += strlen(d->key[i]) + strlen(d->val[i]) + 2;
    dm_free(d->canon);
    if (!(d->canon = dm_malloc(len)))
        return -1;
    char *p = d->canon;
    for (size_t i = 0; i < d->n; ++i)
        p += sprintf(p, "%s\x1e%s\x1f", d->key[i], d->val[i]);
    *p = '\0';
    return 0;
}

const char *dm_tdesc_get(const dm_tdesc *d, const char *key)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->key[mid], key);
        if (!c)
            return d->val[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void dm_tdesc_free(dm_tdesc *d)
{
    for (size_t i = 0; i < d->n; ++i) {
        dm_free(d->key[i]);
        dm_free(d->val[i]);
    }
    dm_free(d->key);
    dm_free(d->val);
    dm_free(d->canon);
    memset(d, 0, sizeof *d);
}

long dm_tpool_add(dm_tpool *p, dm_tdesc *d)
{
    for (size_t i = 0; i < p->n; ++i)
        if (!strcmp(p->d[i].canon, d->canon)) {
            dm_tdesc_free(d);
            return (long)i;
        }
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 16;
        dm_tdesc *q = dm_realloc(p->d, nc * sizeof *q);
        if (!q) {
            dm_tdesc_free(d);
            return -1;
        }
        p->d = q;
        p->cap = nc;
    }
    p->d[p->n] = *d;
    memset(d, 0, sizeof *d);
    return (long)p->n++;
}

void dm_tpool_free(dm_tpool *p)
{
    for (size_t i = 0; i < p->n; ++i)
        dm_tdesc_free(&p->d[i]);
    dm_free(p->d);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------------ notes ---- */

int dm_table_add_note(char ***v, size_t *n, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **p = dm_realloc(*v, (*n + 1) * sizeof *p);
    if (!p)
        return -1;
    *v = p;
    if (!(p[*n] = dm_strdup(buf)))
        return -1;
    ++*n;
    return 0;
}
