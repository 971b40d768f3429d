/* table_groups.c — config groups: values share a cell only when they come from one group, i.e.
 * equal run descriptors (the params that must match, table_read.c) and equal eval identities.
 * A row any of whose cells holds several groups is split: its records go to one table row per
 * combination of values of the keys in which its cells' groups differ (its split keys), the row
 * labelled with them (`config`), and a note names the keys and the ways out (--rows, --where,
 * --merge). Rows are not merged across the table: each row splits only as much as its own cells
 * need. */
#include "report/table_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* Keys of an eval identity (the others are run params). */
static int ident_key(const char *k)
{
    return !strcmp(k, "sampler") || !strcmp(k, "n_samples") || !strncmp(k, "settings.", 9);
}

static long group_of(dm_tctx *c, long desc, long ident)
{
    for (size_t g = 0; g < c->n_groups; ++g)
        if (c->group_desc[g] == desc && c->group_ident[g] == ident)
            return (long)g;
    if (c->n_groups == c->cap_groups) {
        size_t nc = c->cap_groups ? 2 * c->cap_groups : 16;
        long *a = dm_realloc(c->group_desc, nc * sizeof *a);
        if (!a)
            return -1;
        c->group_desc = a;
        long *b = dm_realloc(c->group_ident, nc * sizeof *b);
        if (!b)
            return -1;
        c->group_ident = b;
        c->cap_groups = nc;
    }
    c->group_desc[c->n_groups] = desc;
    c->group_ident[c->n_groups] = ident;
    return (long)c->n_groups++;
}

/* Add key to the sorted NULL-terminated list *l (if absent). */
static int list_add(char ***l, const char *key)
{
    size_t n = 0;
    while (*l && (*l)[n]) {
        if (!strcmp((*l)[n], key))
            return 0;
        ++n;
    }
    char **p = dm_realloc(*l, (n + 2) * sizeof *p);
    if (!p)
        return -1;
    *l = p;
    char *k = dm_strdup(key);
    if (!k) {
        p[n] = NULL;
        return -1;
    }
    size_t i = n;
    while (i > 0 && strcmp(p[i - 1], k) > 0) {
        p[i] = p[i - 1];
        --i;
    }
    p[i] = k;
    p[n + 1] = NULL;
    return 0;
}

/* The keys in which two descriptors differ (one lacks it, or their values differ), into l. */
static int diff_keys(const dm_tdesc *a, const dm_tdesc *b, char ***l)
{
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int cmp = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->key[i], b->key[j]);
        if (cmp < 0) {
            if (list_add(l, a->key[i++]))
                return -1;
        } else if (cmp > 0) {
            if (list_add(l, b->key[j++]))
                return -1;
        } else {
            if (strcmp(a->val[i], b->val[j]) && list_add(l, a->key[i]))
                return -1;
            ++i;
            ++j;
        }
    }
    return 0;
}

/* The value of a split key for a run descriptor and an eval identity (-1: none, a failed run:
 * NULL, matches any); "(none)" when absent. */
static const char *value_of(const dm_tctx *c, const char *key, long desc, long ident)
{
    const char *v;
    if (ident_key(key)) {
        if (ident < 0)
            return NULL;
        v = dm_tdesc_get(&c->idents.d[ident], key);
    } else {
        v = dm_tdesc_get(&c->descs.d[desc], key);
    }
    return v ? v : "(none)";
}

/* "v1\x1fv2..." of the split keys (a NULL value as "*"), malloc'ed. */
static char *sub_of(const dm_tctx *c, char *const *keys, long desc, long ident)
{
    size_t len = 1;
    for (size_t i = 0; keys && keys[i]; ++i) {
        const char *v = value_of(c, keys[i], desc, ident);
        len += strlen(v ? v : "*") + 1;
    }
    char *s = dm_malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (size_t i = 0; keys && keys[i]; ++i) {
        const char *v = value_of(c, keys[i], desc, ident);
        p += sprintf(p, "%s%s", i ? "\x1f" : "", v ? v : "*");
    }
    return s;
}

/* A key naming a plug-in choice (`*.type`, `sampler`): shown first. */
static int plugin_key(const char *k)
{
    size_t n = strlen(k);
    return !strcmp(k, "sampler") || (n > 5 && !strcmp(k + n - 5, ".type"));
}

/* The label of a split row: its split keys' values, plug-in choices (`*.type`, `sampler`) first,
 * at most three, then how many more. */
static char *label_of(char *const *keys, const char *sub)
{
    enum { SHOW = 3 };
    char buf[1024];
    size_t n = 0, used = 0, shown = 0;
    const char *vals[64];
    const char *p = sub;
    for (; keys && keys[n] && n < 64; ++n) {
        vals[n] = p;
        const char *sep = strchr(p, '\x1f');
        p = sep ? sep + 1 : p + strlen(p);   /* past the last value: "" for any key left */
    }
    buf[0] = '\0';
    for (int pass = 0; pass < 2; ++pass)
        for (size_t i = 0; i < n; ++i) {
            if (plugin_key(keys[i]) != (pass == 0) || shown == SHOW)
                continue;
            size_t vl = strcspn(vals[i], "\x1f");
            int w = snprintf(buf + used, sizeof buf - used, "%s%s=%.*s", shown ? ", " : "",
                             keys[i], (int)vl, vals[i]);
            used = w < 0 || (size_t)w >= sizeof buf - used ? sizeof buf - 1 : used + (size_t)w;
            ++shown;
        }
    if (n > shown)
        snprintf(buf + used, sizeof buf - used, ", +%zu more", n - shown);
    return dm_strdup(buf);
}

/* The frow of (base, sub), added if new (label made then); -1 when out of memory. */
static long frow_of(dm_tctx *c, size_t base, char *sub)
{
    for (size_t i = 0; i < c->n_frows; ++i)
        if (c->frows[i].base == base && !strcmp(c->frows[i].sub, sub)) {
            dm_free(sub);
            return (long)i;
        }
    if (c->n_frows == c->cap_frows) {
        size_t nc = c->cap_frows ? 2 * c->cap_frows : 16;
        dm_tfrow *p = dm_realloc(c->frows, nc * sizeof *p);
        if (!p) {
            dm_free(sub);
            return -1;
        }
        c->frows = p;
        c->cap_frows = nc;
    }
    char *label = c->split[base] ? label_of(c->split[base], sub) : dm_strdup("");
    if (!label) {
        dm_free(sub);
        return -1;
    }
    c->frows[c->n_frows] = (dm_tfrow){base, sub, label};
    return (long)c->n_frows++;
}

/* Whether failed run f's values (its params; NULL for eval keys: any) fit frow k. */
static int fail_fits(const dm_tctx *c, size_t f, size_t k)
{
    const dm_tfrow *fr = &c->frows[k];
    char *const *keys = c->split[fr->base];
    const char *p = fr->sub;
    for (size_t i = 0; keys && keys[i]; ++i) {
        const size_t vl = strcspn(p, "\x1f");
        const char *v = value_of(c, keys[i], c->runs[c->fail_run[f]].desc, -1);
        if (v && (strlen(v) != vl || strncmp(v, p, vl) != 0))
            return 0;
        p += vl + (p[vl] ? 1 : 0);
    }
    return 1;
}

static int fail_in_row(const dm_tctx *c, size_t f, size_t base)
{
    const dm_tkv *fk = &c->fails[f * c->nk];
    for (size_t i = 0; i < c->nr; ++i)
        if (!dm_tkv_match(&c->rows.v[base * c->nr + i], &fk[i]))
            return 0;
    return 1;
}

long dm_table_failed_rows(dm_tctx *c, size_t f, size_t *out)
{
    long n = 0;
    for (size_t k = 0; k < c->n_frows; ++k)
        if (fail_in_row(c, f, c->frows[k].base) && fail_fits(c, f, k))
            out[n++] = k;
    return n;
}

/* A failed run of a split row that fits none of its rows gets one of its own. */
static int failed_rows_add(dm_tctx *c)
{
    for (size_t f = 0; f < c->n_fails; ++f)
        for (size_t base = 0; base < c->rows.n; ++base) {
            if (!c->split[base] || !fail_in_row(c, f, base))
                continue;
            int fits = 0;
            for (size_t k = 0; k < c->n_frows && !fits; ++k)
                fits = c->frows[k].base == base && fail_fits(c, f, k);
            if (fits)
                continue;
            char *sub = sub_of(c, c->split[base], c->runs[c->fail_run[f]].desc, -1);
            if (!sub || frow_of(c, base, sub) < 0)
                return -1;
        }
    return 0;
}

static int frow_cmp(const dm_tfrow *x, const dm_tfrow *y, const size_t *rrank)
{
    if (rrank[x->base] != rrank[y->base])
        return rrank[x->base] < rrank[y->base] ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* The rows in table order (base rows by their keys, split rows by their labels; insertion sort,
 * rows are few); the records follow their rows. */
static int sort_frows(dm_tctx *c, const size_t *rrank)
{
    const size_t n = c->n_frows;
    size_t *order = dm_malloc((n ? n : 1) * sizeof *order), *new_of = dm_malloc((n ? n : 1) * sizeof *new_of);
    dm_tfrow *sorted = dm_malloc((n ? n : 1) * sizeof *sorted);
    if (!order || !new_of || !sorted) {
        dm_free(order);
        dm_free(new_of);
        dm_free(sorted);
        return -1;
    }
    for (size_t i = 0; i < n; ++i) {
        size_t j = i;
        while (j > 0 && frow_cmp(&c->frows[order[j - 1]], &c->frows[i], rrank) > 0) {
            order[j] = order[j - 1];
            --j;
        }
        order[j] = i;
    }
    for (size_t k = 0; k < n; ++k) {
        sorted[k] = c->frows[order[k]];
        new_of[order[k]] = k;
    }
    memcpy(c->frows, sorted, n * sizeof *sorted);
    for (size_t i = 0; i < c->n_recs; ++i)
        c->recs[i].frow = new_of[c->recs[i].frow];
    dm_free(order);
    dm_free(new_of);
    dm_free(sorted);
    return 0;
}

/* One note per split row: its key values, how many configs, the keys that differ. */
static int note_split(dm_tctx *c, size_t base)
{
    char row[512], keys[1024];
    size_t used = 0, n = 0, nk = 0;
    for (size_t i = 0; i < c->nr; ++i) {
        const dm_tkv *v = &c->rows.v[base * c->nr + i];
        int w = snprintf(row + used, sizeof row - used, "%s%s=%s", i ? ", " : "", c->keys[i],
                         v->kind == DM_TKV_NULL ? "(none)" : v->s ? v->s : "");
        used = w < 0 || (size_t)w >= sizeof row - used ? sizeof row - 1 : used + (size_t)w;
    }
    for (size_t k = 0; k < c->n_frows; ++k)
        n += c->frows[k].base == base;
    /* plug-in choices first, as in the labels; at most 12 */
    used = 0;
    size_t shown = 0;
    for (int pass = 0; pass < 2; ++pass)
        for (size_t i = 0; c->split[base][i]; ++i) {
            if (plugin_key(c->split[base][i]) != (pass == 0) || shown == 12)
                continue;
            int w = snprintf(keys + used, sizeof keys - used, "%s%s", shown ? ", " : "",
                             c->split[base][i]);
            used = w < 0 || (size_t)w >= sizeof keys - used ? sizeof keys - 1 : used + (size_t)w;
            ++shown;
        }
    while (c->split[base][nk])
        ++nk;
    if (nk > shown)
        snprintf(keys + used, sizeof keys - used, " and %zu more", nk - shown);
    return dm_table_add_note(&c->notes, &c->n_notes, "row %s holds runs of %zu configs that differ "
                             "in %s (neither a row nor a column key): split into one row per "
                             "config (column config); add such a key to --rows, select with "
                             "--where, or pool them on purpose with --merge KEY", row, n, keys);
}

dm_status dm_table_groups(dm_tctx *c, const size_t *rrank, char *err)
{
    long *first = NULL, *base_frow = NULL;
    const size_t nc = c->cols.n;
    if (!(c->split = dm_calloc(c->rows.n ? c->rows.n : 1, sizeof *c->split)) ||
        !(first = dm_malloc((c->rows.n * nc + 1) * sizeof *first)) ||
        !(base_frow = dm_malloc((c->rows.n ? c->rows.n : 1) * sizeof *base_frow)))
        goto nomem;
    for (size_t k = 0; k < c->rows.n * nc; ++k)
        first[k] = -1;
    /* the groups, and the keys in which the groups of one cell differ */
    for (size_t i = 0; i < c->n_recs; ++i) {
        dm_trec *r = &c->recs[i];
        if ((r->group = group_of(c, c->runs[r->run].desc, r->ident)) < 0)
            goto nomem;
        long *f = &first[r->row * nc + r->col];
        if (*f < 0) {
            *f = r->group;
        } else if (*f != r->group) {
            const long d0 = c->group_desc[*f], i0 = c->group_ident[*f];
            if ((d0 != c->runs[r->run].desc &&
                 diff_keys(&c->descs.d[d0], &c->descs.d[c->runs[r->run].desc], &c->split[r->row])) ||
                (i0 != r->ident && i0 >= 0 && r->ident >= 0 &&
                 diff_keys(&c->idents.d[i0], &c->idents.d[r->ident], &c->split[r->row])))
                goto nomem;
        }
    }
    /* the table's rows: one per base row, or per combination of its split keys' values */
    for (size_t b = 0; b < c->rows.n; ++b)
        base_frow[b] = -1;
    for (size_t i = 0; i < c->n_recs; ++i) {
        dm_trec *r = &c->recs[i];
        if (!c->split[r->row] && base_frow[r->row] >= 0) {
            r->frow = (size_t)base_frow[r->row];
            continue;
        }
        char *sub = c->split[r->row] ? sub_of(c, c->split[r->row], c->runs[r->run].desc, r->ident)
                                     : dm_strdup("");
        long k = sub ? frow_of(c, r->row, sub) : -1;
        if (k < 0)
            goto nomem;
        r->frow = (size_t)k;
        if (!c->split[r->row])
            base_frow[r->row] = k;
    }
    for (size_t b = 0; b < c->rows.n; ++b) { /* rows of failed runs alone */
        int have = 0;
        for (size_t k = 0; k < c->n_frows && !have; ++k)
            have = c->frows[k].base == b;
        char *sub = have ? NULL : dm_strdup("");
        if (!have && (!sub || frow_of(c, b, sub) < 0))
            goto nomem;
    }
    if (failed_rows_add(c))
        goto nomem;
    if (sort_frows(c, rrank))
        goto nomem;
    for (size_t b = 0; b < c->rows.n; ++b)
        if (c->split[b] && note_split(c, b))
            goto nomem;
    dm_free(first);
    dm_free(base_frow);
    return DM_OK;
nomem:
    dm_free(first);
    dm_free(base_frow);
    return dm_err(err, DM_E_NOMEM, "out of memory grouping the table's runs by config");
}

void dm_table_groups_free(dm_tctx *c)
{
    for (size_t b = 0; c->split && b < c->rows.n; ++b) {
        for (size_t i = 0; c->split[b] && c->split[b][i]; ++i)
            dm_free(c->split[b][i]);
        dm_free(c->split[b]);
    }
    dm_free(c->split);
    for (size_t k = 0; k < c->n_frows; ++k) {
        dm_free(c->frows[k].sub);
        dm_free(c->frows[k].label);
    }
    dm_free(c->frows);
    dm_free(c->group_desc);
    dm_free(c->group_ident);
}
