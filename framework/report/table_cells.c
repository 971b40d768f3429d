/* table_cells.c — the pivot: the rows of the two queries grouped into cells by their key values,
 * then filled in C: mean and the two-pass sample standard deviation, as the group views do; the
 * failed runs counted per cell; the best of each column marked. */
#include "report/table_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* ----------------------------------------------------------------------- values ---- */

/* A key value: NULL, a number (int or real; text is its display) or text; WILD matches any
 * (an eval field of a failed run). */
enum { KV_NULL, KV_NUM, KV_TEXT, KV_WILD };
typedef struct kv {
    int kind;
    double d;
    char *s; /* display text (owned); NULL for KV_NULL and KV_WILD */
} kv;

static int kv_read(kv *k, sqlite3_stmt *s, int c)
{
    char buf[48];
    k->s = NULL;
    k->d = 0;
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: k->kind = KV_NULL; return 0;
    case SQLITE_INTEGER:
        k->kind = KV_NUM;
        k->d = (double)sqlite3_column_int64(s, c);
        snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(s, c));
        break;
    case SQLITE_FLOAT:
        k->kind = KV_NUM;
        k->d = sqlite3_column_double(s, c);
        dm_table_format_real(buf, sizeof buf, k->d);
        break;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, c);
        k->kind = KV_TEXT;
        return (k->s = dm_strdup(t ? t : "")) ? 0 : -1;
    }
    }
    return (k->s = dm_strdup(buf)) ? 0 : -1;
}

/* Order: NULL, numbers (by value), text (bytewise). */
static int kv_cmp(const kv *a, const kv *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind == KV_NUM) {
        if (a->d != b->d)
            return a->d < b->d ? -1 : 1;
        return strcmp(a->s, b->s);
    }
    if (a->kind == KV_TEXT)
        return strcmp(a->s, b->s);
    return 0;
}

static int kv_match(const kv *cell, const kv *run)
{
    return run->kind == KV_WILD || kv_cmp(cell, run) == 0;
}

/* An axis: distinct tuples of `width` values. */
typedef struct axis {
    size_t width, n, cap;
    kv *v; /* n * width */
} axis;

static void axis_free(axis *a)
{
    for (size_t i = 0; i < a->n * a->width; ++i)
        dm_free(a->v[i].s);
    dm_free(a->v);
}

static int tuple_cmp(const kv *a, const kv *b, size_t w)
{
    for (size_t i = 0; i < w; ++i) {
        int c = kv_cmp(&a[i], &b[i]);
        if (c)
            return c;
    }
    return 0;
}

/* The index of tuple t in a (added if new; the axis copies the text). -1 when out of memory. */
static long axis_find_add(axis *a, const kv *t)
{
    for (size_t i = 0; i < a->n; ++i)
        if (!tuple_cmp(&a->v[i * a->width], t, a->width))
            return (long)i;
    if (a->n == a->cap) {
        size_t nc = a->cap ? 2 * a->cap : 16;
        kv *p = dm_realloc(a->v, nc * (a->width ? a->width : 1) * sizeof *p);
        if (!p)
            return -1;
        a->v = p;
        a->cap = nc;
    }
    kv *dst = &a->v[a->n * a->width];
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

/* Sorted order of the axis: order[k] = the index of the k-th smallest tuple (insertion sort:
 * axes are short). */
static size_t *axis_order(const axis *a)
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

/* One value of a finished run in one cell. */
typedef struct rec {
    size_t row, col;
    double v;
} rec;

/* ------------------------------------------------------------------------ build ---- */

void dm_table_free(dm_table *t)
{
    if (!t)
        return;
    dm_free(t->metric);
    for (size_t i = 0; i < t->n_row_keys; ++i)
        dm_free(t->row_keys ? t->row_keys[i] : NULL);
    dm_free(t->row_keys);
    dm_free(t->col_key);
    if (t->row_labels)
        for (size_t i = 0; i < t->n_rows * t->n_row_keys; ++i)
            dm_free(t->row_labels[i]);
    dm_free(t->row_labels);
    if (t->col_labels)
        for (size_t i = 0; i < t->n_cols; ++i)
            dm_free(t->col_labels[i]);
    dm_free(t->col_labels);
    dm_free(t->cells);
    dm_free(t);
}

static char *label_of(const kv *k)
{
    return dm_strdup(k->kind == KV_NULL ? "(none)" : k->s ? k->s : "");
}

/* 1 if a is better than b. */
static int better(double a, double b, int lower)
{
    return lower ? a < b : a > b;
}

static void mark_best(dm_table *t)
{
    if (t->lower_is_better < 0)   /* a descriptive metric: no best */
        return;
    for (size_t c = 0; c < t->n_cols; ++c) {
        dm_table_cell *best = NULL, *second = NULL;
        for (size_t r = 0; r < t->n_rows; ++r) {
            dm_table_cell *x = &t->cells[r * t->n_cols + c];
            if (x->n == 0)
                continue;
            if (!best || better(x->mean, best->mean, t->lower_is_better)) {
                second = best;
                best = x;
            } else if (!second || better(x->mean, second->mean, t->lower_is_better)) {
                second = x;
            }
        }
        if (best && second && best->n >= 2 && second->n >= 2 &&
            fabs(best->mean - second->mean) > fmax(best->err, second->err))
            best->best = 1;
    }
}

dm_status dm_table_build(dm_index *ix, const dm_table_def *d, dm_table **out, char *err)
{
    sqlite3 *db = dm_index_db(ix);
    const char *keys[DM_TABLE_MAX_KEYS + 1];
    size_t nr = (size_t)d->n_rows, nk = 0;
    int training = 0, rc;
    dm_status st;
    sqlite3_stmt *s = NULL;
    char *sql = NULL;
    axis rows = {.width = nr}, cols = {.width = d->col ? 1 : 0};
    rec *recs = NULL;
    size_t n_recs = 0, cap_recs = 0, n_multi = 0;
    kv *fails = NULL; /* n_fails * nk */
    size_t n_fails = 0, cap_fails = 0;
    size_t *ro = NULL, *co = NULL, *rrank = NULL, *crank = NULL;
    kv tuple[DM_TABLE_MAX_KEYS + 1];
    dm_table *t = NULL;
    *out = NULL;

    for (int i = 0; i < d->n_rows; ++i)
        keys[nk++] = d->rows[i];
    if (d->col)
        keys[nk++] = d->col;
    if ((st = dm_table_check_def(db, d, keys, nk, &training, err)))
        return st;

    /* Finished runs: one value per (run, cell). */
    if ((st = dm_table_prep(db, sql = dm_table_finished_sql(d, keys, nk, training), &s, err)))
        goto out;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int bad = 0;
        for (size_t i = 0; i < nk; ++i)
            bad |= kv_read(&tuple[i], s, (int)i + 1);
        long ri = bad ? -1 : axis_find_add(&rows, tuple);
        long ci = ri < 0 ? -1 : axis_find_add(&cols, tuple + nr);
        for (size_t i = 0; i < nk; ++i)
            dm_free(tuple[i].s);
        if (ci < 0)
            goto nomem;
        if (n_recs == cap_recs) {
            size_t nc = cap_recs ? 2 * cap_recs : 64;
            rec *p = dm_realloc(recs, nc * sizeof *p);
            if (!p)
                goto nomem;
            recs = p;
            cap_recs = nc;
        }
        if (sqlite3_column_int64(s, (int)nk + 1) > 1)
            n_multi++;
        recs[n_recs++] = (rec){(size_t)ri, (size_t)ci, sqlite3_column_double(s, (int)nk + 2)};
    }
    if (rc != SQLITE_DONE)
        goto sqlfail;
    sqlite3_finalize(s);
    s = NULL;
    sqlite3_free(sql);

    /* Failed and diverged runs: their param keys (eval fields match anything). A row or column
     * of theirs alone is added when every key of it is known. */
    if ((st = dm_table_prep(db, sql = dm_table_failed_sql(d, keys, nk), &s, err)))
        goto out;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n_fails == cap_fails) {
            size_t nc = cap_fails ? 2 * cap_fails : 16;
            kv *p = dm_realloc(fails, nc * (nk ? nk : 1) * sizeof *p);
            if (!p)
                goto nomem;
            fails = p;
            cap_fails = nc;
        }
        kv *f = &fails[n_fails * nk];
        int bad = 0, wild_r = 0, wild_c = 0;
        for (size_t i = 0; i < nk; ++i) {
            bad |= kv_read(&f[i], s, (int)i + 1);
            if (dm_table_is_eval_field(keys[i]) && strcmp(keys[i], "sampler") != 0) {
                f[i].kind = KV_WILD;
                *(i < nr ? &wild_r : &wild_c) = 1;
            }
        }
        ++n_fails;
        if (bad || (!wild_r && axis_find_add(&rows, f) < 0) ||
            (!wild_c && axis_find_add(&cols, f + nr) < 0))
            goto nomem;
    }
    if (rc != SQLITE_DONE)
        goto sqlfail;
    sqlite3_finalize(s);
    s = NULL;
    sqlite3_free(sql);
    sql = NULL;

    if (rows.n == 0 || cols.n == 0) {
        st = dm_err(err, DM_E_NOTFOUND, "table: no finished run%s has a value of '%s'%s (%zu "
                    "failed or diverged)", d->sweep ? " of the sweep" : "", d->metric,
                    d->where || d->n_samplers || d->n_nfes || d->settings
                        ? " that passes the filters" : "", n_fails);
        goto out;
    }

    /* The table, in sorted order. */
    if (!(ro = axis_order(&rows)) || !(co = axis_order(&cols)) ||
        !(rrank = dm_malloc(rows.n * sizeof *rrank)) || !(crank = dm_malloc(cols.n * sizeof *crank)) ||
        !(t = dm_calloc(1, sizeof *t)))
        goto nomem;
    for (size_t k = 0; k < rows.n; ++k)
        rrank[ro[k]] = k;
    for (size_t k = 0; k < cols.n; ++k)
        crank[co[k]] = k;
    t->training = training;
    t->n_multi = training ? 0 : n_multi;
    t->agg = d->agg;
    t->errbar = d->errbar;
    t->n_rows = rows.n;
    t->n_cols = cols.n;
    t->n_row_keys = nr;
    if (!(t->metric = dm_strdup(d->metric)) || !(t->row_keys = dm_calloc(nr, sizeof *t->row_keys)) ||
        (d->col && !(t->col_key = dm_strdup(d->col))) ||
        !(t->row_labels = dm_calloc(rows.n * nr, sizeof *t->row_labels)) ||
        !(t->col_labels = dm_calloc(cols.n, sizeof *t->col_labels)) ||
        !(t->cells = dm_calloc(rows.n * cols.n, sizeof *t->cells)))
        goto nomem;
    for (size_t i = 0; i < nr; ++i)
        if (!(t->row_keys[i] = dm_strdup(d->rows[i])))
            goto nomem;
    for (size_t k = 0; k < rows.n; ++k)
        for (size_t i = 0; i < nr; ++i)
            if (!(t->row_labels[k * nr + i] = label_of(&rows.v[ro[k] * nr + i])))
                goto nomem;
    for (size_t k = 0; k < cols.n; ++k)
        if (!(t->col_labels[k] = d->col ? label_of(&cols.v[co[k]]) : dm_strdup(d->metric)))
            goto nomem;

    /* Mean, then the sum of squared deviations (two passes). */
    for (size_t i = 0; i < n_recs; ++i) {
        dm_table_cell *x = &t->cells[rrank[recs[i].row] * t->n_cols + crank[recs[i].col]];
        x->n++;
        x->mean += recs[i].v;
    }
    for (size_t k = 0; k < rows.n * cols.n; ++k) {
        dm_table_cell *x = &t->cells[k];
        x->mean = x->n ? x->mean / (double)x->n : NAN;
        x->std = 0;
    }
    for (size_t i = 0; i < n_recs; ++i) {
        dm_table_cell *x = &t->cells[rrank[recs[i].row] * t->n_cols + crank[recs[i].col]];
        x->std += (recs[i].v - x->mean) * (recs[i].v - x->mean);
    }
    for (size_t k = 0; k < rows.n * cols.n; ++k) {
        dm_table_cell *x = &t->cells[k];
        x->std = x->n >= 2 ? sqrt(x->std / (double)(x->n - 1)) : NAN;
        x->err = d->errbar == DM_TABLE_SEM ? x->std / sqrt((double)x->n) : x->std;
    }
    for (size_t f = 0; f < n_fails; ++f) {
        const kv *fk = &fails[f * nk];
        for (size_t r = 0; r < rows.n; ++r) {
            int m = 1;
            for (size_t i = 0; i < nr && m; ++i)
                m = kv_match(&rows.v[r * nr + i], &fk[i]);
            if (!m)
                continue;
            for (size_t c = 0; c < cols.n; ++c)
                if (!d->col || kv_match(&cols.v[c], &fk[nr]))
                    t->cells[rrank[r] * t->n_cols + crank[c]].failed++;
        }
    }

    /* The metric's direction: lower is better unless metric_info says otherwise. */
    t->lower_is_better = 1;
    if ((st = dm_table_prep(db, sql = sqlite3_mprintf("SELECT lower_is_better FROM metric_info "
                                                      "WHERE name = %Q", d->metric), &s, err)))
        goto out;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        t->lower_is_better = sqlite3_column_int(s, 0) < 0 ? -1 : sqlite3_column_int(s, 0) != 0;
    else if (rc != SQLITE_DONE)
        goto sqlfail;
    mark_best(t);
    *out = t;
    t = NULL;
    goto out;
sqlfail:
    st = sqlite3_errcode(db) == SQLITE_NOMEM
             ? dm_err(err, DM_E_NOMEM, "out of memory running the table's query")
             : dm_err(err, DM_E_IO, "table query: %s", sqlite3_errmsg(db));
    goto out;
nomem:
    st = dm_err(err, DM_E_NOMEM, "out of memory building the table");
out:
    sqlite3_finalize(s);
    sqlite3_free(sql);
    axis_free(&rows);
    axis_free(&cols);
    for (size_t i = 0; i < n_fails * nk; ++i)
        dm_free(fails[i].s);
    dm_free(fails);
    dm_free(recs);
    dm_free(ro);
    dm_free(co);
    dm_free(rrank);
    dm_free(crank);
    dm_table_free(t);
    return st;
}
