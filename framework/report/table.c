/* table.c — `difflab table`: definitions (options and YAML files), the pivot from the index, and
 * its Markdown, LaTeX and CSV output. See table.h for the semantics.
 *
 * Two queries: one row per (finished run, cell) with the run's value already reduced by --agg
 * (GROUP BY run and keys), and one row per failed or diverged run with its param keys. The cells
 * are then filled in C: mean and the two-pass sample standard deviation, as the group views do. */
#include "report/table.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/yaml_tree.h"

static const char *const opt_names[DM_TOPT_COUNT] = {
    "sweep", "rows", "cols", "metric", "where", "agg", "err", "format", "sampler", "nfe", "settings",
};
static const char *const agg_names[] = {"last", "mean", "min", "max"};
static const char *const eval_fields[] = {"sampler", "nfe", "settings"};

#define DEF_FILE_MAX (1u << 20)

/* ------------------------------------------------------------------ definitions ---- */

void dm_table_def_init(dm_table_def *d)
{
    memset(d, 0, sizeof *d);
    d->agg = DM_TABLE_LAST;
    d->errbar = DM_TABLE_STD;
    d->fmt = DM_TABLE_MD;
}

static void clear_list(char **v, int *n)
{
    for (int i = 0; i < *n; ++i) {
        dm_free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void dm_table_def_free(dm_table_def *d)
{
    if (!d)
        return;
    dm_free(d->sweep);
    dm_free(d->col);
    dm_free(d->metric);
    dm_free(d->where);
    dm_free(d->settings);
    clear_list(d->rows, &d->n_rows);
    clear_list(d->samplers, &d->n_samplers);
    for (int i = 0; i < DM_TOPT_COUNT; ++i)
        dm_free(d->origin[i]);
    dm_table_def_init(d);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The comma-separated items of `value`, trimmed, into v (owned); an empty item is an error. */
static dm_status split_list(const char *value, char **v, int *n, int max, const char *origin,
                            char *err)
{
    const char *p = value;
    *n = 0;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_blank(*a))
            ++a;
        while (b > a && is_blank(b[-1]))
            --b;
        if (a == b)
            return dm_err(err, DM_E_INPUT, "%s: empty item in the list '%s'", origin, value);
        if (*n == max)
            return dm_err(err, DM_E_INPUT, "%s: more than %d items in '%s'", origin, max, value);
        char *s = dm_malloc((size_t)(b - a) + 1);
        if (!s)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        memcpy(s, a, (size_t)(b - a));
        s[b - a] = '\0';
        v[(*n)++] = s;
        if (!*end)
            return DM_OK;
        p = end + 1;
    }
}

static int all_blank(const char *s)
{
    while (*s && is_blank(*s))
        ++s;
    return *s == '\0';
}

/* A copy of s without its surrounding blanks (NULL if only blanks; *nomem on failure). */
static char *trimmed(const char *s, int *nomem)
{
    while (is_blank(*s))
        ++s;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        --n;
    *nomem = 0;
    if (!n)
        return NULL;
    char *t = dm_malloc(n + 1);
    if (!t) {
        *nomem = 1;
        return NULL;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    return t;
}

static int choice(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; ++i)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

/* A list option: replaced by the comma-separated value (cleared by a blank one). */
static dm_status set_list(const char *value, char **v, int *n, int max, const char *origin, char *err)
{
    clear_list(v, n);
    if (all_blank(value))
        return DM_OK;
    const dm_status st = split_list(value, v, n, max, origin, err);
    if (st)
        clear_list(v, n);
    return st;
}

dm_status dm_table_def_set(dm_table_def *d, const char *name, const char *value,
                           const char *origin, char *err)
{
    int opt = -1;
    for (int i = 0; i < DM_TOPT_COUNT; ++i)
        if (!strcmp(name, opt_names[i]))
            opt = i;
    if (opt < 0)
        return dm_err(err, DM_E_INPUT, "%s: unknown table option '%s' (valid: sweep, rows, cols, "
                      "metric, where, agg, err, format, sampler, nfe, settings)", origin, name);
    if (!value)
        value = "";
    char *o = dm_strdup(origin);
    if (!o)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    dm_free(d->origin[opt]);
    d->origin[opt] = o;
    int nomem = 0;
    char *text = NULL;
    dm_status st = DM_OK;
    switch (opt) {
    case DM_TOPT_SWEEP:
    case DM_TOPT_METRIC:
    case DM_TOPT_COLS:
    case DM_TOPT_SETTINGS: {
        char **dst = opt == DM_TOPT_SWEEP ? &d->sweep : opt == DM_TOPT_METRIC ? &d->metric
                     : opt == DM_TOPT_COLS ? &d->col : &d->settings;
        /* settings is a substring: kept as given (blanks may matter inside JSON) */
        if (opt == DM_TOPT_SETTINGS) {
            text = *value ? dm_strdup(value) : NULL;
            nomem = *value && !text;
        } else {
            text = trimmed(value, &nomem);
        }
        if (nomem)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        if (opt == DM_TOPT_COLS && text && strchr(text, ',')) {
            dm_free(text);
            return dm_err(err, DM_E_INPUT, "%s: one column key only, got '%s' (row keys go to "
                          "rows)", origin, value);
        }
        dm_free(*dst);
        *dst = text;
        return DM_OK;
    }
    case DM_TOPT_WHERE:
        text = all_blank(value) ? NULL : dm_strdup(value);
        if (!all_blank(value) && !text)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        dm_free(d->where);
        d->where = text;
        return DM_OK;
    case DM_TOPT_ROWS:
        return set_list(value, d->rows, &d->n_rows, DM_TABLE_MAX_KEYS, origin, err);
    case DM_TOPT_SAMPLER:
        return set_list(value, d->samplers, &d->n_samplers, DM_TABLE_MAX_LIST, origin, err);
    case DM_TOPT_NFE: {
        char *items[DM_TABLE_MAX_LIST];
        int n = 0;
        d->n_nfes = 0;
        if (all_blank(value))
            return DM_OK;
        if ((st = split_list(value, items, &n, DM_TABLE_MAX_LIST, origin, err)))
            goto nfe_out;
        for (int i = 0; i < n; ++i) {
            char *end;
            errno = 0;
            long long x = strtoll(items[i], &end, 10);
            if (*end || errno || x < 0) {
                st = dm_err(err, DM_E_INPUT, "%s: '%s' is not a number of function evaluations "
                            "(a non-negative integer)", origin, items[i]);
                d->n_nfes = 0;
                goto nfe_out;
            }
            d->nfes[d->n_nfes++] = x;
        }
    nfe_out:
        clear_list(items, &n);
        return st;
    }
    case DM_TOPT_AGG: {
        int k = choice(value, agg_names, 4);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of last, mean, min, max", origin,
                          value);
        d->agg = (dm_table_agg)k;
        return DM_OK;
    }
    case DM_TOPT_ERR: {
        int k = choice(value, (const char *const[]){"std", "sem"}, 2);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of std, sem", origin, value);
        d->errbar = (dm_table_errbar)k;
        return DM_OK;
    }
    default: { /* DM_TOPT_FORMAT */
        int k = choice(value, (const char *const[]){"md", "markdown", "latex", "tex", "csv"}, 5);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of md, latex, csv", origin, value);
        d->fmt = k < 2 ? DM_TABLE_MD : k < 4 ? DM_TABLE_LATEX : DM_TABLE_CSV;
        return DM_OK;
    }
    }
}

/* A definition file: a missing or unreadable one is bad input (exit 2), as a bad option is. */
static dm_status read_text(const char *path, char **out, size_t *len_out, char *err)
{
    dm_status st = dm_read_file(path, DEF_FILE_MAX, out, len_out, err);
    if (st && st != DM_E_NOMEM) {
        dm_err_prefix(err, "--def");
        st = DM_E_INPUT;
    }
    return st;
}

dm_status dm_table_def_load(dm_table_def *d, const char *path, char *err)
{
    char *text = NULL, *joined = NULL;
    size_t len = 0;
    dm_ynode *root = NULL;
    dm_status st;
    if ((st = read_text(path, &text, &len, err)) ||
        (st = dm_ytree_parse(text, len, path, true, &root, err)))
        goto out;
    if (!root || root->kind != DM_Y_MAP) {
        st = dm_err(err, DM_E_INPUT, "%s: a table definition is a mapping of options (rows, cols, "
                    "metric, ...)", path);
        goto out;
    }
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const dm_ynode *k = root->item[i], *v = root->item[i + 1];
        char where[512], origin[700];
        dm_ytree_where(v, where, sizeof where);
        snprintf(origin, sizeof origin, "%s: %s", where, k->kind == DM_Y_SCALAR ? k->text : "?");
        if (k->kind != DM_Y_SCALAR) {
            st = dm_err(err, DM_E_INPUT, "%s: a key must be a plain name", where);
            goto out;
        }
        if (v->kind == DM_Y_MAP) {
            st = dm_err(err, DM_E_INPUT, "%s: expected a value or a list, got a mapping", origin);
            goto out;
        }
        const char *value;
        if (v->kind == DM_Y_SCALAR) {
            value = dm_ytree_is_null(v) ? "" : v->text;
        } else {
            size_t n = 1;
            for (size_t j = 0; j < v->n; ++j) {
                if (v->item[j]->kind != DM_Y_SCALAR) {
                    st = dm_err(err, DM_E_INPUT, "%s: a list of plain values is expected", origin);
                    goto out;
                }
                n += v->item[j]->len + 1;
            }
            dm_free(joined);
            if (!(joined = dm_malloc(n))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
                goto out;
            }
            joined[0] = '\0';
            for (size_t j = 0; j < v->n; ++j) {
                if (j)
                    strcat(joined, ",");
                strcat(joined, v->item[j]->text);
            }
            value = joined;
        }
        if ((st = dm_table_def_set(d, k->text, value, origin, err)))
            goto out;
    }
out:
    dm_ytree_free(root);
    dm_free(text);
    dm_free(joined);
    return st;
}

/* ----------------------------------------------------------------------- values ---- */

/* A key value: NULL, a number (int or real; text is its display) or text; WILD matches any
 * (an eval field of a failed run). */
enum { KV_NULL, KV_NUM, KV_TEXT, KV_WILD };
typedef struct kv {
    int kind;
    double d;
    char *s; /* display text (owned); NULL for KV_NULL and KV_WILD */
} kv;

/* Shortest "%.*g" that reads back to the same double. */
static void fmt_real_exact(char *buf, size_t n, double v)
{
    for (int p = 15; p <= 17; ++p) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

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
        fmt_real_exact(buf, sizeof buf, k->d);
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

/* ---------------------------------------------------------------------- queries ---- */

/* One field of the settings JSON: "settings.scale" is json_extract(settings, '$.scale'). */
static const char *settings_field(const char *key)
{
    return strncmp(key, "settings.", 9) == 0 && key[9] ? key + 9 : NULL;
}

static int is_eval_field(const char *key)
{
    for (size_t i = 0; i < sizeof eval_fields / sizeof *eval_fields; ++i)
        if (!strcmp(key, eval_fields[i]))
            return 1;
    return settings_field(key) != NULL;
}

static const char *origin_of(const dm_table_def *d, int opt, char *buf, size_t n)
{
    if (d->origin[opt])
        return d->origin[opt];
    snprintf(buf, n, "--%s", opt_names[opt]);
    return buf;
}

static dm_status prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err)
{
    if (!sql)
        return dm_err(err, DM_E_NOMEM, "out of memory building the table's query");
    if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK) {
        if (sqlite3_errcode(db) == SQLITE_NOMEM)
            return dm_err(err, DM_E_NOMEM, "out of memory preparing the table's query");
        return dm_err(err, DM_E_IO, "table query: %s", sqlite3_errmsg(db));
    }
    return DM_OK;
}

/* 1 if `sql` returns a row, 0 if not, -1 on error (message in err). */
static int exists(sqlite3 *db, const char *sql, char *err)
{
    sqlite3_stmt *s = NULL;
    if (prep(db, sql, &s, err))
        return -1;
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    dm_err(err, DM_E_IO, "table query: %s", sqlite3_errmsg(db));
    return -1;
}

/* Up to `max` distinct values of a one-column query, comma-separated, into buf. */
static void list_of(sqlite3 *db, const char *sql, char *buf, size_t n)
{
    sqlite3_stmt *s = NULL;
    size_t used = 0;
    buf[0] = '\0';
    if (!sql || sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(s) == SQLITE_ROW && used + 4 < n) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", t ? t : "");
        used = w < 0 || (size_t)w >= n - used ? n - 1 : used + (size_t)w;
    }
    sqlite3_finalize(s);
}

/* The SELECT of the runs the table looks at, as a CTE body over runs r. */
static void append_sel(sqlite3_str *q, const dm_table_def *d, const char *status_cond)
{
    sqlite3_str_appendf(q, "WITH sel AS (SELECT r.* FROM runs r WHERE %s", status_cond);
    if (d->sweep)
        sqlite3_str_appendf(q, " AND r.run_id IN (SELECT run_id FROM sweep_runs WHERE sweep = %Q)",
                            d->sweep);
    if (d->where)
        sqlite3_str_appendf(q, " AND (%s\n)", d->where);
    sqlite3_str_appendall(q, ")\n");
}

/* Checks of the definition against the index: sweep, where, metric, keys. */
static dm_status check_def(sqlite3 *db, const dm_table_def *d, const char *const *keys, size_t nk,
                           int *training, char *err)
{
    char ob[32], known[600];
    int e;
    char *sql = NULL;
    if (!d->metric)
        return dm_err(err, DM_E_INPUT, "table: --metric is required (an eval metric such as swd or "
                      "mmd2, or a training series such as loss)");
    if (d->n_rows == 0)
        return dm_err(err, DM_E_INPUT, "table: --rows is required (one or more keys, "
                      "comma-separated: spec params such as sampler.type, or sampler, nfe, settings, settings.FIELD of its JSON)");
    if (d->sweep) {
        sql = sqlite3_mprintf("SELECT 1 FROM sweep_runs WHERE sweep = %Q", d->sweep);
        if ((e = exists(db, sql, err)) < 0)
            goto fail;
        sqlite3_free(sql);
        sql = NULL;
        if (!e) {
            list_of(db, "SELECT DISTINCT sweep FROM sweep_runs ORDER BY 1 LIMIT 20", known,
                    sizeof known);
            return dm_err(err, DM_E_INPUT, "%s: no sweep '%s' in the index (%s%s)",
                          origin_of(d, DM_TOPT_SWEEP, ob, sizeof ob), d->sweep,
                          *known ? "sweeps: " : "no sweeps yet", known);
        }
    }
    if (d->where) {
        /* One expression on runs r: prepared alone first so that its errors name --where. */
        sqlite3_stmt *s = NULL;
        const char *tail = NULL;
        sql = sqlite3_mprintf("SELECT 1 FROM runs r WHERE (%s\n)", d->where);
        if (!sql)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        int rc = sqlite3_prepare_v2(db, sql, -1, &s, &tail);
        int rest = tail && !all_blank(tail);
        sqlite3_finalize(s);
        if (rc != SQLITE_OK || rest) {
            dm_err(err, DM_E_INPUT, "%s: %s%s (an SQL condition on the runs table r, e.g. "
                   "\"r.seed < 3\")", origin_of(d, DM_TOPT_WHERE, ob, sizeof ob),
                   rc != SQLITE_OK ? "SQL error: " : "not one SQL expression",
                   rc != SQLITE_OK ? sqlite3_errmsg(db) : "");
            sqlite3_free(sql);
            return sqlite3_errcode(db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_INPUT;
        }
        sqlite3_free(sql);
        sql = NULL;
    }
    sql = sqlite3_mprintf("SELECT 1 FROM evals WHERE metric = %Q", d->metric);
    if ((e = exists(db, sql, err)) < 0)
        goto fail;
    sqlite3_free(sql);
    sql = NULL;
    *training = 0;
    if (!e) {
        sql = sqlite3_mprintf("SELECT 1 FROM metrics WHERE key = %Q", d->metric);
        if ((e = exists(db, sql, err)) < 0)
            goto fail;
        sqlite3_free(sql);
        sql = NULL;
        if (!e) {
            list_of(db, "SELECT name FROM (SELECT DISTINCT metric AS name FROM evals UNION "
                        "SELECT DISTINCT key FROM metrics) ORDER BY 1 LIMIT 30", known, sizeof known);
            return dm_err(err, DM_E_INPUT, "%s: no eval metric or training series '%s' in the "
                          "index (%s%s)", origin_of(d, DM_TOPT_METRIC, ob, sizeof ob), d->metric,
                          *known ? "known: " : "the index has no runs with metrics", known);
        }
        *training = 1;
    }
    for (size_t i = 0; i < nk; ++i) {
        int opt = i + 1 == nk && d->col ? DM_TOPT_COLS : DM_TOPT_ROWS;
        for (size_t j = 0; j < i; ++j)
            if (!strcmp(keys[i], keys[j]))
                return dm_err(err, DM_E_INPUT, "%s: the key '%s' is given twice (rows and cols "
                              "must differ)", origin_of(d, opt, ob, sizeof ob), keys[i]);
        if (is_eval_field(keys[i])) {
            if (*training)
                return dm_err(err, DM_E_INPUT, "%s: '%s' is a field of evals, but '%s' is a "
                              "training series, which has none", origin_of(d, opt, ob, sizeof ob),
                              keys[i], d->metric);
            continue;
        }
        sql = sqlite3_mprintf("SELECT 1 FROM params WHERE key = %Q", keys[i]);
        if ((e = exists(db, sql, err)) < 0)
            goto fail;
        sqlite3_free(sql);
        sql = NULL;
        if (!e) {
            /* Suggest the keys that contain what was typed (steps -> sampler.steps, train.steps). */
            char *like = sqlite3_mprintf("SELECT DISTINCT key FROM params WHERE instr(key, %Q) > 0 "
                                         "ORDER BY 1 LIMIT 8", keys[i]);
            list_of(db, like, known, sizeof known);
            sqlite3_free(like);
            return dm_err(err, DM_E_INPUT, "%s: unknown key '%s': neither a param key of a run in "
                          "the index nor one of sampler, nfe, settings, settings.FIELD%s%s%s",
                          origin_of(d, opt, ob, sizeof ob), keys[i],
                          *known ? " (did you mean: " : "", known, *known ? ")" : "");
        }
    }
    if (*training && (d->n_samplers || d->n_nfes || d->settings)) {
        int opt = d->n_samplers ? DM_TOPT_SAMPLER : d->n_nfes ? DM_TOPT_NFE : DM_TOPT_SETTINGS;
        return dm_err(err, DM_E_INPUT, "%s: filters evals, but '%s' is a training series",
                      origin_of(d, opt, ob, sizeof ob), d->metric);
    }
    return DM_OK;
fail:
    sqlite3_free(sql);
    return sqlite3_errcode(db) == SQLITE_NOMEM ? DM_E_NOMEM : DM_E_IO;
}

/* The text of a builder, "" when empty; NULL (and *oom set) when an allocation failed. */
static char *finish_str(sqlite3_str *b, int *oom)
{
    if (sqlite3_str_errcode(b)) {
        *oom = 1;
        sqlite3_free(sqlite3_str_finish(b));
        return NULL;
    }
    char *t = sqlite3_str_finish(b);
    return t ? t : sqlite3_mprintf("%s", "");
}

/* The key expressions and their joins. A failed run has no evals: its sampler is the one of its
 * spec (sampler.type), its nfe and settings NULL placeholders, read back as wildcards. */
static void append_keys(sqlite3_str *cols, sqlite3_str *joins, const char *const *keys, size_t nk,
                        int failed)
{
    for (size_t i = 0; i < nk; ++i) {
        if (is_eval_field(keys[i])) {
            if (!failed && settings_field(keys[i])) {
                char *path = sqlite3_mprintf("$.%s", settings_field(keys[i]));
                sqlite3_str_appendf(cols, ", json_extract(e.settings, %Q)", path ? path : "$");
                sqlite3_free(path);
            } else if (!failed)
                sqlite3_str_appendf(cols, ", e.%s", keys[i]);
            else if (!strcmp(keys[i], "sampler"))
                sqlite3_str_appendall(cols, ", (SELECT text_value FROM params WHERE run_id = "
                                      "r.run_id AND key = 'sampler.type')");
            else
                sqlite3_str_appendall(cols, ", NULL");
        } else {
            /* (SQLite's printf has no %zu) */
            int k = (int)i;
            sqlite3_str_appendf(cols, ", coalesce(p%d.int_value, p%d.real_value, p%d.text_value)",
                                k, k, k);
            sqlite3_str_appendf(joins, " LEFT JOIN params p%d ON p%d.run_id = r.run_id AND "
                                "p%d.key = %Q", k, k, k, keys[i]);
        }
    }
}

static char *finished_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training)
{
    sqlite3_str *q = sqlite3_str_new(NULL), *cols = sqlite3_str_new(NULL),
                *joins = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status = 'finished'");
    append_keys(cols, joins, keys, nk, 0);
    char *c = finish_str(cols, &oom), *j = finish_str(joins, &oom);
    /* "last": SQLite takes the bare column from the row that holds the max(). */
    static const char *const agg_sql[] = {"%s.value, max(%s)", "avg(%s.value)", "min(%s.value)",
                                          "max(%s.value)"};
    const char *t = training ? "m" : "e";
    const char *order = training ? "m.step" : "e.rowid";
    sqlite3_str_appendf(q, "SELECT r.run_id%s, count(*), ", c);
    if (d->agg == DM_TABLE_LAST)
        sqlite3_str_appendf(q, agg_sql[0], t, order);
    else
        sqlite3_str_appendf(q, agg_sql[d->agg], t);
    if (training) {
        sqlite3_str_appendf(q, "\nFROM sel r JOIN metrics m ON m.run_id = r.run_id AND m.key = %Q "
                            "AND m.value IS NOT NULL", d->metric);
    } else {
        sqlite3_str_appendf(q, "\nFROM sel r JOIN evals e ON e.run_id = r.run_id AND e.metric = %Q "
                            "AND e.value IS NOT NULL", d->metric);
        if (d->n_samplers) {
            sqlite3_str_appendall(q, " AND e.sampler IN (");
            for (int i = 0; i < d->n_samplers; ++i)
                sqlite3_str_appendf(q, "%s%Q", i ? ", " : "", d->samplers[i]);
            sqlite3_str_appendall(q, ")");
        } else {
            sqlite3_str_appendall(q, " AND e.sampler IS NOT 'noise'");
        }
        if (d->n_nfes) {
            sqlite3_str_appendall(q, " AND e.nfe IN (");
            for (int i = 0; i < d->n_nfes; ++i)
                sqlite3_str_appendf(q, "%s%lld", i ? ", " : "", d->nfes[i]);
            sqlite3_str_appendall(q, ")");
        }
        if (d->settings)
            sqlite3_str_appendf(q, " AND instr(e.settings, %Q) > 0", d->settings);
    }
    sqlite3_str_appendf(q, "%s\nGROUP BY 1", j);
    for (size_t i = 0; i < nk; ++i)
        sqlite3_str_appendf(q, ", %d", (int)i + 2);
    sqlite3_free(c);
    sqlite3_free(j);
    char *sql = finish_str(q, &oom);
    if (oom || !c || !j) {
        sqlite3_free(sql);
        return NULL;
    }
    return sql;
}

static char *failed_sql(const dm_table_def *d, const char *const *keys, size_t nk)
{
    sqlite3_str *q = sqlite3_str_new(NULL), *cols = sqlite3_str_new(NULL),
                *joins = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status IN ('failed', 'diverged')");
    append_keys(cols, joins, keys, nk, 1);
    char *c = finish_str(cols, &oom), *j = finish_str(joins, &oom);
    sqlite3_str_appendf(q, "SELECT r.run_id%s FROM sel r%s", c, j);
    /* --sampler applies to a failed run's own sampler; --nfe and --settings cannot apply */
    if (d->n_samplers) {
        sqlite3_str_appendall(q, " WHERE (SELECT text_value FROM params WHERE run_id = r.run_id "
                                 "AND key = 'sampler.type') IN (");
        for (int i = 0; i < d->n_samplers; ++i)
            sqlite3_str_appendf(q, "%s%Q", i ? ", " : "", d->samplers[i]);
        sqlite3_str_appendall(q, ")");
    }
    sqlite3_free(c);
    sqlite3_free(j);
    char *sql = finish_str(q, &oom);
    if (oom || !c || !j) {
        sqlite3_free(sql);
        return NULL;
    }
    return sql;
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
    if ((st = check_def(db, d, keys, nk, &training, err)))
        return st;

    /* Finished runs: one value per (run, cell). */
    if ((st = prep(db, sql = finished_sql(d, keys, nk, training), &s, err)))
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
    if ((st = prep(db, sql = failed_sql(d, keys, nk), &s, err)))
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
            if (is_eval_field(keys[i]) && strcmp(keys[i], "sampler") != 0) {
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
    if ((st = prep(db, sql = sqlite3_mprintf("SELECT lower_is_better FROM metric_info WHERE name = "
                                             "%Q", d->metric), &s, err)))
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

/* ----------------------------------------------------------------------- output ---- */

static void put_csv(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; ++s) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_latex(FILE *out, const char *s)
{
    for (; *s; ++s) {
        switch (*s) {
        case '\\': fputs("\\textbackslash{}", out); break;
        case '~': fputs("\\textasciitilde{}", out); break;
        case '^': fputs("\\textasciicircum{}", out); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', out);
            fputc(*s, out);
            break;
        default: fputc(*s, out);
        }
    }
}

static void put_md(FILE *out, const char *s)
{
    for (; *s; ++s) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void put_text(FILE *out, const char *s, dm_table_fmt fmt)
{
    if (fmt == DM_TABLE_LATEX)
        put_latex(out, s);
    else
        put_md(out, s);
}

/* One cell as Markdown or LaTeX: "m ± e (n=N)", bold when best; "—" (or "---") when empty, with
 * "(k failed)". */
static void put_cell(FILE *out, const dm_table_cell *x, dm_table_fmt fmt)
{
    const int tex = fmt == DM_TABLE_LATEX;
    if (x->n == 0) {
        fputs(tex ? "---" : "—", out);
        if (x->failed)
            fprintf(out, " (%zu failed)", x->failed);
        return;
    }
    fputs(x->best ? (tex ? "\\textbf{" : "**") : "", out);
    fprintf(out, "%.4g", x->mean);
    if (x->n >= 2)
        fprintf(out, "%s%.2g", tex ? " $\\pm$ " : " ± ", x->err);
    fputs(x->best ? (tex ? "}" : "**") : "", out);
    fprintf(out, " (n=%zu", x->n);
    if (x->failed)
        fprintf(out, ", %zu failed", x->failed);
    fputc(')', out);
}

static void put_caption(FILE *out, const dm_table *t)
{
    const char *eb = t->errbar == DM_TABLE_SEM ? "sem" : "std";
    fputs(t->metric, out);
    if (t->training)
        fprintf(out, " (%s of each run's series)", agg_names[t->agg]);
    else if (t->agg != DM_TABLE_LAST)
        fprintf(out, " (%s of each run's matching evals)", agg_names[t->agg]);
    if (t->lower_is_better < 0)
        fprintf(out, ": mean ± %s over runs (n); a description: neither direction is better\n", eb);
    else
        fprintf(out, ": mean ± %s over runs (n); %s is better; bold: best of its column by more than "
                "the %s\n", eb, t->lower_is_better ? "lower" : "higher", eb);
}

static void write_md(const dm_table *t, FILE *out)
{
    put_caption(out, t);
    fputc('\n', out);
    for (size_t i = 0; i < t->n_row_keys; ++i) {
        fputs("| ", out);
        put_md(out, t->row_keys[i]);
        fputc(' ', out);
    }
    for (size_t c = 0; c < t->n_cols; ++c) {
        fputs("| ", out);
        if (t->col_key) {
            put_md(out, t->col_key);
            fputc('=', out);
        }
        put_md(out, t->col_labels[c]);
        fputc(' ', out);
    }
    fputs("|\n", out);
    for (size_t i = 0; i < t->n_row_keys; ++i)
        fputs("|---", out);
    for (size_t c = 0; c < t->n_cols; ++c)
        fputs("|---:", out);
    fputs("|\n", out);
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t i = 0; i < t->n_row_keys; ++i) {
            fputs("| ", out);
            put_md(out, t->row_labels[r * t->n_row_keys + i]);
            fputc(' ', out);
        }
        for (size_t c = 0; c < t->n_cols; ++c) {
            fputs("| ", out);
            put_cell(out, &t->cells[r * t->n_cols + c], DM_TABLE_MD);
            fputc(' ', out);
        }
        fputs("|\n", out);
    }
}

static void write_latex(const dm_table *t, FILE *out)
{
    const size_t nr = t->n_row_keys;
    fputs("% ", out);
    put_caption(out, t);
    fputs("\\begin{tabular}{", out);
    for (size_t i = 0; i < nr; ++i)
        fputc('l', out);
    for (size_t c = 0; c < t->n_cols; ++c)
        fputc('r', out);
    fputs("}\n\\toprule\n", out);
    if (t->col_key) {
        for (size_t i = 0; i < nr; ++i)
            fputs(i ? " & " : "", out);
        fprintf(out, " & \\multicolumn{%zu}{c}{", t->n_cols);
        put_latex(out, t->col_key);
        fprintf(out, "} \\\\\n\\cmidrule(lr){%zu-%zu}\n", nr + 1, nr + t->n_cols);
    }
    for (size_t i = 0; i < nr; ++i) {
        fputs(i ? " & " : "", out);
        put_latex(out, t->row_keys[i]);
    }
    for (size_t c = 0; c < t->n_cols; ++c) {
        fputs(" & ", out);
        put_latex(out, t->col_labels[c]);
    }
    fputs(" \\\\\n\\midrule\n", out);
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t i = 0; i < nr; ++i) {
            fputs(i ? " & " : "", out);
            put_text(out, t->row_labels[r * nr + i], DM_TABLE_LATEX);
        }
        for (size_t c = 0; c < t->n_cols; ++c) {
            fputs(" & ", out);
            put_cell(out, &t->cells[r * t->n_cols + c], DM_TABLE_LATEX);
        }
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", out);
}

static void put_real(FILE *out, double v)
{
    char buf[48];
    if (isnan(v))
        return;
    fmt_real_exact(buf, sizeof buf, v);
    fputs(buf, out);
}

static void write_csv(const dm_table *t, FILE *out)
{
    for (size_t i = 0; i < t->n_row_keys; ++i) {
        put_csv(out, t->row_keys[i]);
        fputc(',', out);
    }
    if (t->col_key) {
        put_csv(out, t->col_key);
        fputc(',', out);
    }
    fprintf(out, "mean,%s,n,failed,best\n", t->errbar == DM_TABLE_SEM ? "sem" : "std");
    for (size_t r = 0; r < t->n_rows; ++r) {
        for (size_t c = 0; c < t->n_cols; ++c) {
            const dm_table_cell *x = &t->cells[r * t->n_cols + c];
            for (size_t i = 0; i < t->n_row_keys; ++i) {
                put_csv(out, t->row_labels[r * t->n_row_keys + i]);
                fputc(',', out);
            }
            if (t->col_key) {
                put_csv(out, t->col_labels[c]);
                fputc(',', out);
            }
            put_real(out, x->mean);
            fputc(',', out);
            put_real(out, x->err);
            fprintf(out, ",%zu,%zu,%d\n", x->n, x->failed, x->best);
        }
    }
}

dm_status dm_table_write(const dm_table *t, dm_table_fmt fmt, FILE *out, char *err)
{
    if (fmt == DM_TABLE_LATEX)
        write_latex(t, out);
    else if (fmt == DM_TABLE_CSV)
        write_csv(t, out);
    else
        write_md(t, out);
    if (fflush(out) != 0 || ferror(out))
        return dm_err(err, DM_E_IO, "writing the table failed: %s", strerror(errno));
    return DM_OK;
}
