/* table_cells.c — the pivot: the build in order (table_internal.h), and the cells: the values
 * of one cell grouped by seed, each seed's one value the mean of its repeats, then the mean and
 * the two-pass sample standard deviation over the seeds, as the group views do; the failed runs
 * counted per cell; the floor row; the best of each column (table_stats.c). */
#include "report/table_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ---------------------------------------------------------------------- seeds ---- */

static int val_cmp(const void *a, const void *b)
{
    const dm_tval *x = a, *y = b;
    if (x->cell != y->cell)
        return x->cell < y->cell ? -1 : 1;
    if (x->seed != y->seed)
        return x->seed < y->seed ? -1 : 1;
    if (x->run != y->run)
        return x->run < y->run ? -1 : 1;
    return 0;
}

void dm_tval_sort(dm_tval *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, val_cmp);
}

void dm_table_seeds(const dm_tval *v, size_t n, size_t n_cells, dm_tseed *seeds, size_t *off,
                    size_t *repeats)
{
    size_t m = 0, i = 0;
    for (size_t k = 0; k < n_cells; ++k) {
        off[k] = m;
        repeats[k] = 0;
        while (i < n && v[i].cell == k) {
            size_t j = i;
            double s = 0;
            while (j < n && v[j].cell == k && v[j].seed == v[i].seed)
                s += v[j++].v;
            seeds[m++] = (dm_tseed){v[i].seed, v[i].run, s / (double)(j - i)};
            repeats[k] += j - i - 1;
            i = j;
        }
    }
    off[n_cells] = m;
}

void dm_table_fill_cell(dm_table_cell *x, const dm_tseed *s, size_t n, dm_table_errbar eb)
{
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; ++i)
        mean += s[i].v;
    mean = n ? mean / (double)n : NAN;
    for (size_t i = 0; i < n; ++i)
        ss += (s[i].v - mean) * (s[i].v - mean);
    x->n = n;
    x->mean = mean;
    x->std = n >= 2 ? sqrt(ss / (double)(n - 1)) : NAN;
    x->err = eb == DM_TABLE_SEM ? x->std / sqrt((double)n) : x->std;
    x->p = NAN;
}

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
    if (t->row_config)
        for (size_t i = 0; i < t->n_rows; ++i)
            dm_free(t->row_config[i]);
    dm_free(t->row_config);
    if (t->col_labels)
        for (size_t i = 0; i < t->n_cols; ++i)
            dm_free(t->col_labels[i]);
    dm_free(t->col_labels);
    dm_free(t->cells);
    for (size_t i = 0; i < t->n_notes; ++i)
        dm_free(t->notes[i]);
    dm_free(t->notes);
    dm_free(t);
}

static char *label_of(const dm_tkv *k)
{
    return dm_strdup(k->kind == DM_TKV_NULL ? "(none)" : k->s ? k->s : "");
}

/* The table's frame: keys, labels, cells (zeroed), from the groups' rows. */
static dm_status frame(dm_tctx *c, const size_t *co, dm_table **out, char *err)
{
    const size_t nr = c->nr, rows = c->n_frows + (c->d->floor ? 1 : 0), cols = c->cols.n;
    dm_table *t = dm_calloc(1, sizeof *t);
    *out = t;
    if (!t)
        goto nomem;
    t->n_rows = rows;
    t->n_cols = cols;
    t->n_row_keys = nr;
    t->has_floor = c->d->floor;
    t->training = c->training;
    t->n_multi = c->training ? 0 : c->n_multi;
    t->agg = c->d->agg;
    t->errbar = c->d->errbar;
    if (!(t->metric = dm_strdup(c->d->metric)) || !(t->row_keys = dm_calloc(nr, sizeof *t->row_keys)) ||
        (c->d->col && !(t->col_key = dm_strdup(c->d->col))) ||
        !(t->row_labels = dm_calloc(rows * nr, sizeof *t->row_labels)) ||
        !(t->row_config = dm_calloc(rows, sizeof *t->row_config)) ||
        !(t->col_labels = dm_calloc(cols, sizeof *t->col_labels)) ||
        !(t->cells = dm_calloc(rows * cols, sizeof *t->cells)))
        goto nomem;
    for (size_t i = 0; i < nr; ++i)
        if (!(t->row_keys[i] = dm_strdup(c->d->rows[i])))
            goto nomem;
    for (size_t k = 0; k < c->n_frows; ++k) {
        for (size_t i = 0; i < nr; ++i)
            if (!(t->row_labels[k * nr + i] = label_of(&c->rows.v[c->frows[k].base * nr + i])))
                goto nomem;
        if (!(t->row_config[k] = dm_strdup(c->frows[k].label)))
            goto nomem;
        t->has_config |= c->frows[k].label[0] != '\0';
    }
    if (c->d->floor) {
        for (size_t i = 0; i < nr; ++i)
            if (!(t->row_labels[(rows - 1) * nr + i] = dm_strdup(i ? "" : "exact (floor)")))
                goto nomem;
        if (!(t->row_config[rows - 1] = dm_strdup("floor")))
            goto nomem;
    }
    for (size_t k = 0; k < cols; ++k)
        if (!(t->col_labels[k] = c->d->col ? label_of(&c->cols.v[co[k]]) : dm_strdup(c->d->metric)))
            goto nomem;
    for (size_t k = 0; k < rows * cols; ++k)
        t->cells[k] = (dm_table_cell){.mean = NAN, .std = NAN, .err = NAN, .p = NAN};
    return DM_OK;
nomem:
    return dm_err(err, DM_E_NOMEM, "out of memory building the table");
}

/* Cells of the finished runs (one value per seed), marked best; the failed counts. */
static dm_status fill(dm_tctx *c, dm_table *t, const size_t *crank, char *err)
{
    const size_t nc = t->n_cols, n_cells = c->n_frows * nc;
    dm_tval *v = dm_malloc((c->n_recs ? c->n_recs : 1) * sizeof *v);
    dm_tseed *seeds = dm_malloc((c->n_recs ? c->n_recs : 1) * sizeof *seeds);
    size_t *off = dm_malloc((t->n_rows * nc + 1) * sizeof *off);
    size_t *rep = dm_malloc((n_cells ? n_cells : 1) * sizeof *rep);
    size_t *frows = dm_malloc((c->n_frows ? c->n_frows : 1) * sizeof *frows);
    dm_status st = DM_OK;
    if (!v || !seeds || !off || !rep || !frows) {
        st = dm_err(err, DM_E_NOMEM, "out of memory building the table");
        goto out;
    }
    for (size_t i = 0; i < c->n_recs; ++i) {
        const dm_trec *r = &c->recs[i];
        v[i] = (dm_tval){r->frow * nc + crank[r->col], c->runs[r->run].seed, r->run, r->v};
    }
    dm_tval_sort(v, c->n_recs);
    dm_table_seeds(v, c->n_recs, n_cells, seeds, off, rep);
    for (size_t k = n_cells; k < t->n_rows * nc; ++k) /* the floor row holds no seeds here */
        off[k + 1] = off[n_cells];
    for (size_t k = 0; k < n_cells; ++k) {
        dm_table_fill_cell(&t->cells[k], seeds + off[k], off[k + 1] - off[k], c->d->errbar);
        t->cells[k].repeats = rep[k];
    }
    for (size_t f = 0; f < c->n_fails; ++f) {
        const dm_tkv *fk = &c->fails[f * c->nk];
        long n = dm_table_failed_rows(c, f, frows);
        for (long j = 0; j < n; ++j)
            for (size_t col = 0; col < c->cols.n; ++col)
                if (!c->d->col || dm_tkv_match(&c->cols.v[col], &fk[c->nr]))
                    t->cells[frows[j] * nc + crank[col]].failed++;
    }
    if (c->d->floor &&
        (st = dm_table_floor_cells(c, t, crank, &t->cells[(t->n_rows - 1) * nc], err)))
        goto out;
    dm_table_mark_best(t, seeds, off);
out:
    dm_free(v);
    dm_free(seeds);
    dm_free(off);
    dm_free(rep);
    dm_free(frows);
    return st;
}

dm_status dm_table_build(dm_index *ix, const dm_table_def *d, dm_table **out, char *err)
{
    dm_tctx c;
    dm_status st;
    sqlite3_stmt *s = NULL;
    char *sql = NULL;
    size_t *ro = NULL, *co = NULL, *rrank = NULL, *crank = NULL;
    dm_table *t = NULL;
    int rc;
    memset(&c, 0, sizeof c);
    *out = NULL;
    c.db = dm_index_db(ix);
    c.d = d;
    for (int i = 0; i < d->n_rows; ++i)
        c.keys[c.nk++] = d->rows[i];
    c.nr = c.nk;
    if (d->col)
        c.keys[c.nk++] = d->col;
    c.rows.width = c.nr;
    c.cols.width = d->col ? 1 : 0;
    if ((st = dm_table_check_def(c.db, d, c.keys, c.nk, &c.training, err)))
        return st;
    for (size_t i = 0; i < c.nk; ++i)
        c.kinds[i] = dm_table_key_kind(c.keys[i], c.training);
    if ((st = dm_table_read(&c, err)))
        goto out;
    if (c.rows.n == 0 || c.cols.n == 0) {
        st = dm_err(err, DM_E_NOTFOUND, "table: no finished run%s has a value of '%s'%s (%zu "
                    "failed or diverged)", d->sweep ? " of the sweep" : "", d->metric,
                    d->where || d->n_samplers || d->n_nfes || d->settings
                        ? " that passes the filters" : "", c.n_fails);
        goto out;
    }
    if (!(ro = dm_taxis_order(&c.rows)) || !(co = dm_taxis_order(&c.cols)) ||
        !(rrank = dm_malloc(c.rows.n * sizeof *rrank)) || !(crank = dm_malloc(c.cols.n * sizeof *crank))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory building the table");
        goto out;
    }
    for (size_t k = 0; k < c.rows.n; ++k)
        rrank[ro[k]] = k;
    for (size_t k = 0; k < c.cols.n; ++k)
        crank[co[k]] = k;
    if ((st = dm_table_groups(&c, rrank, err)) || (st = frame(&c, co, &t, err)))
        goto out;
    /* The metric's direction: lower is better unless metric_info says otherwise. */
    t->lower_is_better = 1;
    if ((st = dm_table_prep(c.db, sql = sqlite3_mprintf("SELECT lower_is_better FROM metric_info "
                                                        "WHERE name = %Q", d->metric), &s, err)))
        goto out;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        t->lower_is_better = sqlite3_column_int(s, 0) < 0 ? -1 : sqlite3_column_int(s, 0) != 0;
    else if (rc != SQLITE_DONE) {
        st = sqlite3_errcode(c.db) == SQLITE_NOMEM
                 ? dm_err(err, DM_E_NOMEM, "out of memory running the table's query")
                 : dm_err(err, DM_E_IO, "table query: %s", sqlite3_errmsg(c.db));
        goto out;
    }
    if ((st = fill(&c, t, crank, err)))
        goto out;
    t->notes = c.notes;
    t->n_notes = c.n_notes;
    c.notes = NULL;
    c.n_notes = 0;
    *out = t;
    t = NULL;
out:
    sqlite3_finalize(s);
    sqlite3_free(sql);
    dm_table_groups_free(&c);
    dm_table_read_free(&c);
    for (size_t i = 0; i < c.n_notes; ++i)
        dm_free(c.notes[i]);
    dm_free(c.notes);
    dm_free(ro);
    dm_free(co);
    dm_free(rrank);
    dm_free(crank);
    dm_table_free(t);
    return st;
}
