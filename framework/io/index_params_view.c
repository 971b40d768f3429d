/* index_params_view.c — the wide view run_params: one row per run, one typed column per param
 * key, so that `pd.read_sql("SELECT * FROM run_params", con)` and `SELECT "train.lr" FROM
 * run_params` need no pivot of params' three value columns.
 *
 * Its columns come from the spec's schema, the key registry `difflab keys` lists (every
 * plug-in section's `type`, then the options of every plug-in, in schema order, each key once),
 * not from the keys found in params: every index a difflab writes has the same columns, each
 * typed by its declaration: int and bool keys from int_value, real keys from real_value, the
 * others (strings, choices, plug-in names, lists) from text_value. A key two plug-ins declare
 * with two types (none today) takes the coalesce of the value columns (as REAL when they are int
 * and real). A key in params but not in the schema (one an older difflab wrote) has no column; a
 * run without a key (another plug-in's option) has NULL there. The first columns name the run
 * (PV_IDENTITY, from runs); the keys `name` and `seed` are those columns.
 *
 * Each column is a lookup on params' primary key (run_id, key): a row costs one index probe per
 * column, and a WHERE on run_id reads that run's rows only (a pivot with max(CASE ...) would
 * evaluate every column's CASE for every params row of the index).
 *
 * The schema lives above io/ (train/schema.c), so it is handed in: by dm_index_upsert_run (its
 * spec's schema), reindex and the CLI on opening the index. The view's SQL carries a mark with
 * a hash of its column list (PV_MARK); a view of another list, an older difflab's or none, is
 * replaced on a writable connection and shadowed by a TEMP view on a read-only one, as
 * index_schema.c does for the other views. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "io/index.h"
#include "io/index_internal.h"

#define PV_MARK "difflab run_params 1"
#define PV_IDENTITY "run_id", "name", "seed", "status", "config_hash", "group_hash", "created"

static const char *const identity[] = {PV_IDENTITY};
enum { N_IDENTITY = sizeof identity / sizeof identity[0] };

/* A column's value: int_value, real_value, text_value, numbers of both kinds, or anything. */
typedef enum pv_kind { PV_INT, PV_REAL, PV_TEXT, PV_NUM, PV_ANY } pv_kind;

typedef struct pv_col {
    char key[256];
    pv_kind kind;
} pv_col;

typedef struct pv_cols {
    pv_col *c;
    size_t n;
} pv_cols;

static pv_kind kind_of(dm_opt_type t)
{
    return t == DM_OPT_INT || t == DM_OPT_BOOL ? PV_INT : t == DM_OPT_REAL ? PV_REAL : PV_TEXT;
}

/* Two declarations of one key: int and real are numbers; any other mix is anything. */
static pv_kind merge(pv_kind a, pv_kind b)
{
    if (a == b)
        return a;
    const int num_a = a == PV_INT || a == PV_REAL || a == PV_NUM, num_b = b == PV_INT || b == PV_REAL || b == PV_NUM;
    return num_a && num_b ? PV_NUM : PV_ANY;
}

static void add_col(pv_cols *l, const char *path, const char *name, pv_kind kind)
{
    char key[256];
    int n = snprintf(key, sizeof key, "%s%s%s", path, path[0] ? "." : "", name);
    if (n < 0 || (size_t)n >= sizeof key)
        return; /* no key is that long; such a key would only lack a column */
    for (size_t i = 0; i < N_IDENTITY; ++i)
        if (sqlite3_stricmp(key, identity[i]) == 0)
            return;
    for (size_t i = 0; i < l->n; ++i)
        if (strcmp(l->c[i].key, key) == 0) {
            l->c[i].kind = merge(l->c[i].kind, kind);
            return;
        }
    memcpy(l->c[l->n].key, key, (size_t)n + 1);
    l->c[l->n++].kind = kind;
}

/* The schema's keys in order, each once; l->c is dm_malloc'ed. */
static dm_status list_cols(const dm_schema *s, pv_cols *l, char *err)
{
    size_t cap = 0;
    for (size_t i = 0; i < s->n_sections; ++i) {
        const dm_section_desc *d = &s->sections[i];
        for (const dm_param_desc *p = d->fixed ? d->fixed->params : NULL; p && p->name; ++p)
            ++cap;
        for (size_t j = 0; d->registry && d->registry[j]; ++j)
            for (const dm_param_desc *p = d->registry[j]->params; p && p->name; ++p)
                ++cap;
        cap += d->registry != NULL;
    }
    l->n = 0;
    if (!(l->c = dm_malloc((cap ? cap : 1) * sizeof *l->c)))
        return dm_err(err, DM_E_NOMEM, "out of memory listing the param keys");
    for (size_t i = 0; i < s->n_sections; ++i) {
        const dm_section_desc *d = &s->sections[i];
        for (const dm_param_desc *p = d->fixed ? d->fixed->params : NULL; p && p->name; ++p)
            add_col(l, d->path, p->name, kind_of(p->type));
        if (d->registry)
            add_col(l, d->path, "type", PV_TEXT);
        for (size_t j = 0; d->registry && d->registry[j]; ++j)
            for (const dm_param_desc *p = d->registry[j]->params; p && p->name; ++p)
                add_col(l, d->path, p->name, kind_of(p->type));
    }
    return DM_OK;
}

/* The mark: PV_MARK, 16 hex of SHA-256 of the identity columns and every key with its kind, and
 * the comment's end (so that a longer mark never matches a prefix). */
static dm_status make_mark(const pv_cols *l, char mark[64], char *err)
{
    sqlite3_str *h = sqlite3_str_new(NULL);
    for (size_t i = 0; i < N_IDENTITY; ++i)
        sqlite3_str_appendf(h, "%s\n", identity[i]);
    for (size_t i = 0; i < l->n; ++i)
        sqlite3_str_appendf(h, "%s\t%d\n", l->c[i].key, (int)l->c[i].kind);
    const int failed = sqlite3_str_errcode(h) != SQLITE_OK, len = sqlite3_str_length(h);
    char *text = sqlite3_str_finish(h);
    if (failed || !text) {
        sqlite3_free(text);
        return dm_err(err, DM_E_NOMEM, "out of memory making the run_params view");
    }
    char hex[65];
    dm_sha256_hex(text, (size_t)len, hex);
    sqlite3_free(text);
    snprintf(mark, 64, PV_MARK " %.16s */", hex);
    return DM_OK;
}

static const char *const value_sql[] = {
    [PV_INT] = "int_value",
    [PV_REAL] = "real_value",
    [PV_TEXT] = "text_value",
    [PV_NUM] = "CAST(coalesce(real_value, int_value) AS REAL)",
    [PV_ANY] = "coalesce(int_value, real_value, text_value)",
};

/* "DROP VIEW IF EXISTS main|temp.run_params; CREATE [TEMP ]VIEW run_params AS ..."; NULL when out
 * of memory; the caller frees it with sqlite3_free. */
static char *view_sql(const pv_cols *l, const char *mark, int temp)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendf(s, "DROP VIEW IF EXISTS %s.run_params;\nCREATE %sVIEW run_params AS /* %s\n  SELECT ",
                        temp ? "temp" : "main", temp ? "TEMP " : "", mark);
    for (size_t i = 0; i < N_IDENTITY; ++i)
        sqlite3_str_appendf(s, "%sr.%s AS %s", i ? ", " : "", identity[i], identity[i]);
    for (size_t i = 0; i < l->n; ++i)
        sqlite3_str_appendf(s, ",\n    (SELECT %s FROM params p WHERE p.run_id = r.run_id AND p.key = %Q) AS \"%w\"",
                            value_sql[l->c[i].kind], l->c[i].key, l->c[i].key);
    sqlite3_str_appendf(s, "\n  FROM runs r;\n");
    const int failed = sqlite3_str_errcode(s) != SQLITE_OK;
    char *sql = sqlite3_str_finish(s);
    if (failed) {
        sqlite3_free(sql);
        return NULL;
    }
    return sql;
}

/* *current: 1 when schema sch ("main", "temp") has run_params with mark. */
static dm_status is_current(dm_index *ix, const char *sch, const char *mark, int *current, char *err)
{
    sqlite3_int64 n = 0;
    char *sql = sqlite3_mprintf("SELECT count(*) FROM %s.sqlite_master WHERE type = 'view' AND "
                                "name = 'run_params' AND instr(sql, %Q) > 0", sch, mark);
    if (!sql)
        return dm_err(err, DM_E_NOMEM, "out of memory looking for the run_params view");
    dm_status st = dm_ix_query_int(ix, sql, &n, "looking for the run_params view", err);
    sqlite3_free(sql);
    *current = n > 0;
    return st;
}

/* The view of schema made current in the connection: with temp, as a TEMP view (unless main's
 * is current); without, in main (the caller holds a write transaction). */
static dm_status ensure(dm_index *ix, const dm_schema *schema, int temp, char *err)
{
    pv_cols l = {NULL, 0};
    char mark[64], *sql = NULL;
    int current = 0;
    dm_status st = list_cols(schema, &l, err);
    if (st || (st = make_mark(&l, mark, err)) || (st = is_current(ix, "main", mark, &current, err)) || current ||
        (temp && ((st = is_current(ix, "temp", mark, &current, err)) || current)))
        goto out;
    if (!(sql = view_sql(&l, mark, temp))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory making the run_params view");
        goto out;
    }
    st = dm_ix_exec(ix, sql, "adding the run_params view", err);
out:
    sqlite3_free(sql);
    dm_free(l.c);
    return st;
}

dm_status dm_ix_params_view_tx(dm_index *ix, const dm_schema *schema, char *err)
{
    return ensure(ix, schema, 0, err);
}

typedef struct pv_ctx {
    const dm_schema *schema;
    int current; /* check_op's answer */
} pv_ctx;

/* dm_ix_op: whether main's run_params is the view of the schema (a read: no lock taken). */
static dm_status check_op(dm_index *ix, void *ctx, char *err)
{
    pv_ctx *c = ctx;
    pv_cols l = {NULL, 0};
    char mark[64];
    dm_status st = list_cols(c->schema, &l, err);
    if (!st && !(st = make_mark(&l, mark, err)))
        st = is_current(ix, "main", mark, &c->current, err);
    dm_free(l.c);
    return st;
}

/* dm_ix_op of a read-only connection: a TEMP view unless main's is current. */
static dm_status temp_op(dm_index *ix, void *ctx, char *err)
{
    const pv_ctx *c = ctx;
    return ensure(ix, c->schema, 1, err);
}

/* dm_ix_op: main's view replaced in a write transaction (unless another process did it). */
static dm_status replace_op(dm_index *ix, void *ctx, char *err)
{
    const pv_ctx *c = ctx;
    dm_status st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting the run_params transaction", err);
    if (st)
        return st;
    if ((st = ensure(ix, c->schema, 0, err)) || (st = dm_ix_exec(ix, "COMMIT", "committing the run_params view", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_params_view(dm_index *ix, const dm_schema *schema, char *err)
{
    pv_ctx c = {schema, 0};
    if (ix->readonly)
        return dm_ix_with_retry(ix, temp_op, &c, err);
    /* A read first: the write lock only when the view must change. */
    dm_status st = dm_ix_with_retry(ix, check_op, &c, err);
    if (st || c.current)
        return st;
    return dm_ix_write_op(ix, replace_op, &c, err);
}
