/* table_floor.c — the floor row (--floor): what perfect samples score. The pseudo-sampler
 * 'exact' draws its samples from the data distribution with the eval's n and streams, so its
 * evals of a metric are the floor of every sampler evaluated on the same data and eval settings.
 *
 * The floor of a column: the 'exact' evals of the table's finished runs (--sweep, --where) whose
 * data/eval signature (every data.* and eval.* param) is the one of the column's values; one
 * value per seed (the mean of its repeats), then mean ± error over the seeds like any cell. A
 * column whose values come from several data/eval configs, or whose 'exact' evals differ in
 * their settings or sample count, has no floor (a note says why); so does one without 'exact'
 * evals. The floor is never marked best and never a runner-up. */
#include "report/table_internal.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

/* Column labels for a note: up to six, then "...". */
static void cols_text(const dm_table *t, const int *flag, int want, char *buf, size_t n)
{
    size_t used = 0, k = 0;
    buf[0] = '\0';
    for (size_t c = 0; c < t->n_cols; ++c) {
        if (flag[c] != want)
            continue;
        int w = k < 6 ? snprintf(buf + used, n - used, "%s%s", k ? ", " : "", t->col_labels[c])
                      : k == 6 ? snprintf(buf + used, n - used, ", ...") : 0;
        used = w < 0 || (size_t)w >= n - used ? n - 1 : used + (size_t)w;
        ++k;
    }
}

enum { FLOOR_OK, FLOOR_NONE, FLOOR_MIXED, FLOOR_SETTINGS };

dm_status dm_table_floor_cells(dm_tctx *c, dm_table *t, const size_t *crank, dm_table_cell *cells,
                               char *err)
{
    const size_t nc = t->n_cols;
    long *sig = dm_malloc((nc ? nc : 1) * sizeof *sig);
    int *why = dm_calloc(nc ? nc : 1, sizeof *why);
    dm_tval *v = dm_malloc((c->n_floor ? c->n_floor : 1) * sizeof *v);
    dm_tseed *seeds = dm_malloc((c->n_floor ? c->n_floor : 1) * sizeof *seeds);
    size_t *off = dm_malloc((nc + 1) * sizeof *off), *rep = dm_malloc((nc ? nc : 1) * sizeof *rep);
    long *ident = dm_malloc((nc ? nc : 1) * sizeof *ident);
    dm_status st = DM_OK;
    if (!sig || !why || !v || !seeds || !off || !rep || !ident) {
        st = dm_err(err, DM_E_NOMEM, "out of memory computing the floor");
        goto out;
    }
    /* each column's data/eval signature: -1 none yet, -2 several */
    for (size_t k = 0; k < nc; ++k) {
        sig[k] = -1;
        ident[k] = -1;
    }
    for (size_t i = 0; i < c->n_recs; ++i) {
        const size_t k = crank[c->recs[i].col];
        const long s = c->runs[c->recs[i].run].sig;
        sig[k] = sig[k] == -1 || sig[k] == s ? s : -2;
    }
    /* why a column has a floor or not: the 'exact' evals of its signature, one identity */
    for (size_t k = 0; k < nc; ++k) {
        why[k] = sig[k] == -2 ? FLOOR_MIXED : FLOOR_NONE;
        for (size_t i = 0; i < c->n_floor && sig[k] >= 0; ++i) {
            const dm_trec *f = &c->floor[i];
            if (c->runs[f->run].sig != sig[k])
                continue;
            if (ident[k] >= 0 && ident[k] != f->ident)
                why[k] = FLOOR_SETTINGS;
            else if (why[k] != FLOOR_SETTINGS)
                why[k] = FLOOR_OK;
            ident[k] = f->ident;
        }
    }
    /* the floor cells: one value per seed of the fitting evals */
    for (size_t k = 0; k < nc; ++k) {
        dm_table_cell *x = &cells[k];
        *x = (dm_table_cell){.mean = NAN, .std = NAN, .err = NAN, .p = NAN};
        if (why[k] != FLOOR_OK)
            continue;
        size_t m = 0;
        for (size_t i = 0; i < c->n_floor; ++i)
            if (c->runs[c->floor[i].run].sig == sig[k])
                v[m++] = (dm_tval){0, c->runs[c->floor[i].run].seed, c->floor[i].run, c->floor[i].v};
        dm_tval_sort(v, m);
        dm_table_seeds(v, m, 1, seeds, off, rep);
        dm_table_fill_cell(x, seeds, off[1], t->errbar);
        x->repeats = rep[0];
    }
    static const char *const reason[] = {
        "", "no 'exact' evals of '%s' from runs of the same data and eval config in column%s %s",
        "the values of column%s %s come from several data or eval configs: no single floor",
        "the 'exact' evals of column%s %s differ in their settings or sample count: no floor"};
    for (int r = FLOOR_NONE; r <= FLOOR_SETTINGS; ++r) {
        char cols[512];
        size_t count = 0;
        for (size_t k = 0; k < nc; ++k)
            count += why[k] == r;
        if (!count)
            continue;
        cols_text(t, why, r, cols, sizeof cols);
        int bad = r == FLOOR_NONE
                      ? dm_table_add_note(&c->notes, &c->n_notes, reason[r], t->metric,
                                          count == 1 ? "" : "s", cols)
                      : dm_table_add_note(&c->notes, &c->n_notes, reason[r], count == 1 ? "" : "s",
                                          cols);
        if (bad) {
            st = dm_err(err, DM_E_NOMEM, "out of memory computing the floor");
            goto out;
        }
    }
out:
    dm_free(sig);
    dm_free(why);
    dm_free(v);
    dm_free(seeds);
    dm_free(off);
    dm_free(rep);
    dm_free(ident);
    return st;
}
