/* table_read.c — a table's values read from the index: one per (finished run, cell) with the
 * run's seed and the identity of the evals it came from; the failed and diverged runs; the
 * 'exact' evals of --floor; and every run's config descriptor and data/eval signature from its
 * params.
 *
 * What is set aside from a run's descriptor (its params), so that it holds exactly what runs
 * sharing a cell must have equal:
 *   - the keys outside config_hash (flagged DM_OPT_NOHASH or DM_OPT_SEED in the spec schema:
 *     name, seed, run.*), as config_hash does;
 *   - the sampler and guidance sections: they say how the run's own final samples were drawn;
 *     an eval carries its own sampler and settings (its identity, below), and training never
 *     reads them, so a run sampled again by another sampler is the same model;
 *   - the row and column keys and the --merge keys.
 * An eval's identity: its sampler, the fields of its settings JSON and its sample count, less
 * what the keys and --merge keys already name (sampler, settings, settings.FIELD; merging
 * eval.n_samples sets the sample count aside). When --agg reduces several evals of one run in one
 * cell, the identity is the eval's that gave the value (last, min, max) or, for mean, every
 * field's distinct values joined by " | ".
 * The data/eval signature (whose floor applies to a cell) is the data.* and eval.* params. */
#include "report/table_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "train/schema.h"

/* ------------------------------------------------------------- feature networks ---- */

/* Note the feature network an eval's settings name ("features":"<run id>", train/features.h):
 * the first one seen, and a second (a table never mixes feature spaces). -1 out of memory. */
static int note_features(dm_tctx *c, const char *settings)
{
    static const char tag[] = "\"features\":\"";
    const char *p = settings ? strstr(settings, tag) : NULL;
    if (!p || c->features[1])
        return 0;
    p += sizeof tag - 1;
    const size_t n = strcspn(p, "\"");
    if (c->features[0] && strlen(c->features[0]) == n && !strncmp(c->features[0], p, n))
        return 0;
    char *id = dm_malloc(n + 1);
    if (!id)
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    c->features[c->features[0] ? 1 : 0] = id;
    return 0;
}

/* ------------------------------------------------------------------------- runs ---- */

/* The run's index (added if new); -1 when out of memory. Rows come grouped by run. */
static long run_index(dm_tctx *c, const char *id, long long seed)
{
    if (c->n_runs && !strcmp(c->runs[c->last_run].id, id))
        return (long)c->last_run;
    for (size_t i = 0; i < c->n_runs; ++i)
        if (!strcmp(c->runs[i].id, id))
            return (long)(c->last_run = i);
    if (c->n_runs == c->cap_runs) {
        size_t nc = c->cap_runs ? 2 * c->cap_runs : 32;
        dm_trun *p = dm_realloc(c->runs, nc * sizeof *p);
        if (!p)
            return -1;
        c->runs = p;
        c->cap_runs = nc;
    }
    if (!(c->runs[c->n_runs].id = dm_strdup(id)))
        return -1;
    c->runs[c->n_runs].seed = seed;
    c->runs[c->n_runs].desc = c->runs[c->n_runs].sig = -1;
    return (long)(c->last_run = c->n_runs++);
}

static long find_run(const dm_tctx *c, const char *id)
{
    for (size_t i = 0; i < c->n_runs; ++i)
        if (!strcmp(c->runs[i].id, id))
            return (long)i;
    return -1;
}

/* ------------------------------------------------------------- what is set aside ---- */

/* A key that config_hash leaves out (name, seed, run.*): flagged in the spec schema. */
static int hashed_out(const char *key)
{
    for (size_t i = 0; i < dm_spec_schema.n_sections; ++i) {
        const dm_section_desc *sec = &dm_spec_schema.sections[i];
        const size_t pl = strlen(sec->path);
        const char *name = key;
        if (pl) {
            if (strncmp(key, sec->path, pl) != 0 || key[pl] != '.')
                continue;
            name = key + pl + 1;
        }
        const dm_plugin *const one[] = {sec->fixed, NULL};
        for (const dm_plugin *const *pp = sec->fixed ? one : sec->registry; pp && *pp; ++pp)
            for (const dm_param_desc *p = (*pp)->params; p && p->name; ++p)
                if (!strcmp(p->name, name) && (p->flags & (DM_OPT_NOHASH | DM_OPT_SEED)))
                    return 1;
    }
    return 0;
}

static int has_prefix(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(key, prefix, n) == 0 && (key[n] == '.' || key[n] == '\0');
}

/* A key of the definition (row, column or --merge) of this kind naming `key` or `field`. */
static int named(const dm_tctx *c, dm_tkey_kind kind, const char *key, const char *field)
{
    for (size_t i = 0; i < c->nk + (size_t)c->d->n_merges; ++i) {
        const char *k = i < c->nk ? c->keys[i] : c->d->merges[i - c->nk];
        const dm_tkey_kind kk = dm_table_key_kind(k, c->training);
        if (kk != kind)
            continue;
        if (kind == DM_TKEY_FIELD ? !strcmp(dm_table_key_field(k), field)
                                  : kind != DM_TKEY_PARAM || !strcmp(k, key))
            return 1;
    }
    return 0;
}

static int in_desc(const dm_tctx *c, const char *key)
{
    return !hashed_out(key) && !has_prefix(key, "sampler") && !has_prefix(key, "guidance") &&
           !named(c, DM_TKEY_PARAM, key, NULL);
}

/* ------------------------------------------------------------ eval identities ---- */

/* The identity of one eval as a descriptor (unsealed); floor: nothing set aside. */
static int ident_of(dm_tctx *c, sqlite3_stmt *js, const char *sampler, const char *settings,
                    const char *n, int floor, dm_tdesc *out)
{
    if ((floor || !named(c, DM_TKEY_SAMPLER, NULL, NULL)) &&
        dm_tdesc_push(out, "sampler", sampler ? sampler : "(none)"))
        return -1;
    if ((floor || !named(c, DM_TKEY_PARAM, "eval.n_samples", NULL)) &&
        dm_tdesc_push(out, "n_samples", n))
        return -1;
    if (!floor && named(c, DM_TKEY_SETTINGS, NULL, NULL))
        return 0;
    sqlite3_reset(js);
    sqlite3_bind_text(js, 1, settings ? settings : "{}", -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(js)) == SQLITE_ROW) {
        char key[256], val[512];
        const char *k = (const char *)sqlite3_column_text(js, 0), *type =
            (const char *)sqlite3_column_text(js, 2);
        if (!k || (!floor && named(c, DM_TKEY_FIELD, NULL, k)))
            continue;
        snprintf(key, sizeof key, "settings.%s", k);
        if (type && (!strcmp(type, "true") || !strcmp(type, "false")))
            snprintf(val, sizeof val, "%s", type);
        else
            dm_tkv_text(js, 1, val, sizeof val);
        if (dm_tdesc_push(out, key, val))
            return -1;
    }
    sqlite3_reset(js);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Identities of several evals as one: each key's distinct values joined by " | " ("(none)"
 * where an eval lacks the key). */
static int ident_union(dm_tdesc *all, size_t n, dm_tdesc *out)
{
    for (size_t i = 0; i < n; ++i)
        for (size_t e = 0; e < all[i].n; ++e) {
            const char *key = all[i].key[e];
            if (dm_tdesc_get(out, key))
                continue;
            /* the distinct values of key, in the order of the evals */
            char val[1024] = "";
            size_t used = 0;
            for (size_t j = 0; j < n; ++j) {
                const char *v = dm_tdesc_get(&all[j], key);
                v = v ? v : "(none)";
                int seen = 0;
                for (size_t q = 0; q < j && !seen; ++q) {
                    const char *w = dm_tdesc_get(&all[q], key);
                    seen = !strcmp(w ? w : "(none)", v);
                }
                if (!seen && used + 4 < sizeof val) {
                    int w = snprintf(val + used, sizeof val - used, "%s%s", used ? " | " : "", v);
                    used = w < 0 || (size_t)w >= sizeof val - used ? sizeof val - 1 : used + (size_t)w;
                }
            }
            if (dm_tdesc_push(out, key, val) || dm_tdesc_seal(out))
                return -1;
        }
    return 0;
}

/* ---------------------------------------------------------------- finished runs ---- */

/* One eval of a (run, cell) group being reduced. */
typedef struct ev {
    char *sampler, *settings, *n;
    double v;
} ev;

static void evs_clear(ev *e, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        dm_free(e[i].sampler);
        dm_free(e[i].settings);
        dm_free(e[i].n);
    }
}

static int push_rec(dm_tctx *c, dm_trec r)
{
    if (c->n_recs == c->cap_recs) {
        size_t nc = c->cap_recs ? 2 * c->cap_recs : 64;
        dm_trec *p = dm_realloc(c->recs, nc * sizeof *p);
        if (!p)
            return -1;
        c->recs = p;
        c->cap_recs = nc;
    }
    c->recs[c->n_recs++] = r;
    return 0;
}

/* The record of a group of n >= 1 evals of one run in one cell (reduced by --agg). */
static int flush_group(dm_tctx *c, sqlite3_stmt *js, size_t run, size_t row, size_t col, ev *e,
                       size_t n)
{
    size_t pick = n - 1; /* last: the one recorded last */
    double v = e[pick].v;
    if (c->d->agg == DM_TABLE_MIN || c->d->agg == DM_TABLE_MAX) {
        pick = 0;
        for (size_t i = 1; i < n; ++i)
            if (c->d->agg == DM_TABLE_MIN ? e[i].v < e[pick].v : e[i].v > e[pick].v)
                pick = i;
        v = e[pick].v;
    } else if (c->d->agg == DM_TABLE_MEAN) {
        double s = 0;
        for (size_t i = 0; i < n; ++i)
            s += e[i].v;
        v = s / (double)n;
    }
    const int all = c->d->agg == DM_TABLE_MEAN && n > 1;
    dm_tdesc one[16], id = {0};
    const size_t m = all ? (n < 16 ? n : 16) : 1;
    memset(one, 0, sizeof one);
    int bad = 0;
    for (size_t i = 0; i < m && !bad; ++i) {
        const ev *x = &e[all ? i : pick];
        bad = ident_of(c, js, x->sampler, x->settings, x->n, 0, &one[i]) || dm_tdesc_seal(&one[i]);
    }
    if (!bad)
        bad = m == 1 ? (id = one[0], memset(&one[0], 0, sizeof one[0]), 0)
                     : ident_union(one, m, &id) || dm_tdesc_seal(&id);
    for (size_t i = 0; i < m; ++i)
        dm_tdesc_free(&one[i]);
    if (bad) {
        dm_tdesc_free(&id);
        return -1;
    }
    long ident = dm_tpool_add(&c->idents, &id);
    if (ident < 0)
        return -1;
    if (n > 1)
        c->n_multi++;
    return push_rec(c, (dm_trec){row, col, run, ident, -1, 0, v});
}

/* A training series: one row per (run, cell), already reduced. */
static int read_series_row(dm_tctx *c, sqlite3_stmt *s, const dm_tkv *tuple)
{
    long ri = dm_taxis_add(&c->rows, tuple), ci = ri < 0 ? -1 : dm_taxis_add(&c->cols, tuple + c->nr);
    long run = ci < 0 ? -1 : run_index(c, (const char *)sqlite3_column_text(s, 0),
                                       sqlite3_column_int64(s, 1));
    if (run < 0)
        return -1;
    if (sqlite3_column_int64(s, (int)c->nk + 2) > 1)
        c->n_multi++;
    return push_rec(c, (dm_trec){(size_t)ri, (size_t)ci, (size_t)run, -1, -1, 0,
                                 sqlite3_column_double(s, (int)c->nk + 3)});
}

static char *col_dup(sqlite3_stmt *s, int i, int *bad)
{
    char buf[48];
    const char *t = buf;
    if (sqlite3_column_type(s, i) == SQLITE_TEXT)
        t = (const char *)sqlite3_column_text(s, i);
    else
        dm_tkv_text(s, i, buf, sizeof buf);
    char *r = dm_strdup(t ? t : "");
    *bad |= !r;
    return r;
}

static dm_status read_finished(dm_tctx *c, sqlite3_stmt *js, char *err)
{
    sqlite3_stmt *s = NULL;
    char *sql = dm_table_finished_sql(c->d, c->keys, c->nk, c->training);
    dm_status st = dm_table_prep(c->db, sql, &s, err);
    sqlite3_free(sql);
    if (st)
        return st;
    dm_tkv cur[DM_TABLE_MAX_KEYS + 1], tuple[DM_TABLE_MAX_KEYS + 1];
    size_t ncur = 0, cap = 0, cur_row = 0, cur_col = 0;
    long cur_run = -1;
    ev *e = NULL;
    int rc, bad = 0;
    memset(cur, 0, sizeof cur);
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (size_t i = 0; i < c->nk; ++i)
            bad |= dm_tkv_read(&tuple[i], s, (int)i + 2);
        if (!bad && c->training) {
            bad = read_series_row(c, s, tuple);
        } else if (!bad) {
            const char *id = (const char *)sqlite3_column_text(s, 0);
            int same = ncur && cur_run >= 0 && !strcmp(c->runs[cur_run].id, id ? id : "");
            for (size_t i = 0; i < c->nk && same; ++i)
                same = !dm_tkv_cmp(&cur[i], &tuple[i]);
            if (!same && ncur) {
                bad = flush_group(c, js, (size_t)cur_run, cur_row, cur_col, e, ncur);
                evs_clear(e, ncur);
                ncur = 0;
            }
            if (!bad && !same) {
                long ri = dm_taxis_add(&c->rows, tuple);
                long ci = ri < 0 ? -1 : dm_taxis_add(&c->cols, tuple + c->nr);
                cur_run = ci < 0 ? -1 : run_index(c, id ? id : "", sqlite3_column_int64(s, 1));
                bad = cur_run < 0;
                cur_row = (size_t)ri;
                cur_col = (size_t)ci;
                for (size_t i = 0; i < c->nk; ++i) {
                    dm_free(cur[i].s);
                    cur[i] = tuple[i];
                    tuple[i].s = NULL;
                }
            }
            if (!bad && ncur == cap) {
                size_t nc = cap ? 2 * cap : 8;
                ev *p = dm_realloc(e, nc * sizeof *p);
                bad = !p;
                if (p) {
                    e = p;
                    cap = nc;
                }
            }
            if (!bad) {
                ev *x = &e[ncur++];
                *x = (ev){NULL, NULL, NULL, sqlite3_column_double(s, (int)c->nk + 5)};
                x->sampler = col_dup(s, (int)c->nk + 2, &bad);
                x->settings = col_dup(s, (int)c->nk + 3, &bad);
                bad = bad || note_features(c, x->settings);
                x->n = col_dup(s, (int)c->nk + 4, &bad);
            }
        }
        for (size_t i = 0; i < c->nk; ++i) {
            dm_free(tuple[i].s);
            tuple[i].s = NULL;
        }
    }
    if (!bad && ncur)
        bad = flush_group(c, js, (size_t)cur_run, cur_row, cur_col, e, ncur);
    if (bad)
        st = dm_err(err, DM_E_NOMEM, "out of memory reading the table's values");
    else if (rc != SQLITE_DONE)
        st = dm_err(err, sqlite3_errcode(c->db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_IO,
                    "table query: %s", sqlite3_errmsg(c->db));
    evs_clear(e, ncur);
    dm_free(e);
    for (size_t i = 0; i < c->nk; ++i)
        dm_free(cur[i].s);
    sqlite3_finalize(s);
    return st;
}

/* ------------------------------------------------------------------ failed runs ---- */

/* Their keys (eval fields they cannot know match anything). A row or column of theirs alone is
 * added when every key of it is known. */
static dm_status read_failed(dm_tctx *c, char *err)
{
    sqlite3_stmt *s = NULL;
    char *sql = dm_table_failed_sql(c->d, c->keys, c->nk, c->training);
    dm_status st = dm_table_prep(c->db, sql, &s, err);
    sqlite3_free(sql);
    if (st)
        return st;
    int rc, bad = 0;
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (c->n_fails == c->cap_fails) {
            size_t nc = c->cap_fails ? 2 * c->cap_fails : 16;
            dm_tkv *p = dm_realloc(c->fails, nc * (c->nk ? c->nk : 1) * sizeof *p);
            size_t *q = p ? dm_realloc(c->fail_run, nc * sizeof *q) : NULL;
            if (p)
                c->fails = p;
            if (!q) {
                bad = 1;
                break;
            }
            c->fail_run = q;
            c->cap_fails = nc;
        }
        dm_tkv *f = &c->fails[c->n_fails * c->nk];
        int wild_r = 0, wild_c = 0;
        for (size_t i = 0; i < c->nk; ++i) {
            bad |= dm_tkv_read(&f[i], s, (int)i + 2);
            if (dm_table_key_wild_for_failed(c->keys[i], c->training)) {
                f[i].kind = DM_TKV_WILD;
                *(i < c->nr ? &wild_r : &wild_c) = 1;
            }
        }
        long run = bad ? -1 : run_index(c, (const char *)sqlite3_column_text(s, 0),
                                        sqlite3_column_int64(s, 1));
        c->fail_run[c->n_fails++] = run < 0 ? 0 : (size_t)run;
        if (run < 0 || (!wild_r && dm_taxis_add(&c->rows, f) < 0) ||
            (!wild_c && dm_taxis_add(&c->cols, f + c->nr) < 0))
            bad = 1;
    }
    if (bad)
        st = dm_err(err, DM_E_NOMEM, "out of memory reading the table's failed runs");
    else if (rc != SQLITE_DONE)
        st = dm_err(err, sqlite3_errcode(c->db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_IO,
                    "table query: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return st;
}

/* ------------------------------------------------------------------------ floor ---- */

static dm_status read_floor(dm_tctx *c, sqlite3_stmt *js, char *err)
{
    sqlite3_stmt *s = NULL;
    char *sql = dm_table_floor_sql(c->d);
    dm_status st = dm_table_prep(c->db, sql, &s, err);
    sqlite3_free(sql);
    if (st)
        return st;
    int rc, bad = 0;
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char n[48];
        dm_tkv_text(s, 3, n, sizeof n);
        dm_tdesc id = {0};
        long run = run_index(c, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1));
        long ident = -1;
        if (run < 0 || note_features(c, (const char *)sqlite3_column_text(s, 2)) ||
            ident_of(c, js, "exact", (const char *)sqlite3_column_text(s, 2), n, 1, &id) ||
            dm_tdesc_seal(&id) || (ident = dm_tpool_add(&c->idents, &id)) < 0) {
            dm_tdesc_free(&id);
            bad = 1;
            break;
        }
        if (c->n_floor == c->cap_floor) {
            size_t nc = c->cap_floor ? 2 * c->cap_floor : 16;
            dm_trec *p = dm_realloc(c->floor, nc * sizeof *p);
            if (!p) {
                bad = 1;
                break;
            }
            c->floor = p;
            c->cap_floor = nc;
        }
        c->floor[c->n_floor++] = (dm_trec){0, 0, (size_t)run, ident, -1, 0, sqlite3_column_double(s, 4)};
    }
    if (bad)
        st = dm_err(err, DM_E_NOMEM, "out of memory reading the floor");
    else if (rc != SQLITE_DONE)
        st = dm_err(err, sqlite3_errcode(c->db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_IO,
                    "table query: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return st;
}

/* ----------------------------------------------------------------------- params ---- */

/* Seal and pool a run's descriptor and signature. */
static int close_run(dm_tctx *c, long run, dm_tdesc *desc, dm_tdesc *sig)
{
    if (run < 0)
        return 0;
    if (dm_tdesc_seal(desc) || (c->runs[run].desc = dm_tpool_add(&c->descs, desc)) < 0 ||
        dm_tdesc_seal(sig) || (c->runs[run].sig = dm_tpool_add(&c->sigs, sig)) < 0)
        return -1;
    return 0;
}

static dm_status read_params(dm_tctx *c, char *err)
{
    sqlite3_stmt *s = NULL;
    char *sql = dm_table_params_sql(c->d);
    dm_status st = dm_table_prep(c->db, sql, &s, err);
    sqlite3_free(sql);
    if (st)
        return st;
    dm_tdesc desc = {0}, sig = {0};
    long run = -1;
    int rc, bad = 0;
    char prev[512] = "";
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0), *key =
            (const char *)sqlite3_column_text(s, 1);
        if (!id || !key)
            continue;
        if (strcmp(id, prev) != 0) {
            bad = close_run(c, run, &desc, &sig);
            dm_tdesc_free(&desc);
            dm_tdesc_free(&sig);
            snprintf(prev, sizeof prev, "%s", id);
            run = find_run(c, id); /* a run without values, failures or floor: not needed */
            if (bad)
                break;
        }
        if (run < 0)
            continue;
        char val[512];
        int col = sqlite3_column_type(s, 2) != SQLITE_NULL ? 2
                  : sqlite3_column_type(s, 3) != SQLITE_NULL ? 3 : 4;
        dm_tkv_text(s, col, val, sizeof val);
        if (in_desc(c, key) && dm_tdesc_push(&desc, key, val))
            bad = 1;
        if ((has_prefix(key, "data") || has_prefix(key, "eval")) && dm_tdesc_push(&sig, key, val))
            bad = 1;
    }
    if (!bad)
        bad = close_run(c, run, &desc, &sig);
    dm_tdesc_free(&desc);
    dm_tdesc_free(&sig);
    /* runs without params (an index written by hand): empty descriptors */
    for (size_t i = 0; i < c->n_runs && !bad; ++i) {
        dm_tdesc a = {0}, b = {0};
        if (c->runs[i].desc < 0 && close_run(c, (long)i, &a, &b))
            bad = 1;
        dm_tdesc_free(&a);
        dm_tdesc_free(&b);
    }
    if (bad)
        st = dm_err(err, DM_E_NOMEM, "out of memory reading the runs' params");
    else if (rc != SQLITE_DONE)
        st = dm_err(err, sqlite3_errcode(c->db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_IO,
                    "table query: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return st;
}

/* ------------------------------------------------------------------------ read ---- */

dm_status dm_table_read(dm_tctx *c, char *err)
{
    sqlite3_stmt *js = NULL;
    dm_status st;
    /* value: an atom's SQL value, or the JSON text of an array or object (a list of times) */
    if ((st = dm_table_prep(c->db, "SELECT key, value, type FROM json_each(CASE WHEN json_valid(?1) "
                                   "THEN ?1 ELSE json_object('', ?1) END)", &js, err)))
        return st;
    if (!(st = read_finished(c, js, err)) && !(st = read_failed(c, err)) &&
        !(c->d->floor && (st = read_floor(c, js, err))))
        st = read_params(c, err);
    sqlite3_finalize(js);
    if (!st && c->features[1])
        st = dm_err(err, DM_E_INPUT, "table: its evals come from two feature networks (eval.features runs %s and %s): "
                    "values in different feature spaces are not comparable and never share a table; choose one with "
                    "--settings '\"features\":\"%s\"'", c->features[0], c->features[1], c->features[0]);
    return st;
}

void dm_table_read_free(dm_tctx *c)
{
    for (size_t i = 0; i < c->n_runs; ++i)
        dm_free(c->runs[i].id);
    dm_free(c->runs);
    dm_free(c->recs);
    for (size_t i = 0; i < c->n_fails * c->nk; ++i)
        dm_free(c->fails[i].s);
    dm_free(c->fails);
    dm_free(c->fail_run);
    dm_free(c->floor);
    dm_free(c->features[0]);
    dm_free(c->features[1]);
    dm_tpool_free(&c->descs);
    dm_tpool_free(&c->idents);
    dm_tpool_free(&c->sigs);
    dm_taxis_free(&c->rows);
    dm_taxis_free(&c->cols);
}
