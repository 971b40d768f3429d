/* index.c — results/index.sqlite: opening (WAL, busy timeout, schema check), the per-run upsert
 * in one BEGIN IMMEDIATE transaction, status updates, and `difflab query` output.
 *
 * The index is derived data: dm_index_upsert_run deletes and re-inserts every row of a run, so
 * re-indexing from the run files is idempotent. Every writer rolls back on error so that the
 * database is never left locked. */
#include "io/index.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"

extern const char dm_index_schema_sql[]; /* index_schema.c */
extern const char dm_index_views_sql[];
extern const char dm_index_views_temp_sql[];

struct dm_index {
    sqlite3 *db;
    char *path;
};

sqlite3 *dm_index_db(dm_index *ix)
{
    return ix->db;
}

/* An SQLite failure as our status: what we were doing and SQLite's message; NOMEM kept apart. */
static dm_status sql_err(dm_index *ix, char *err, const char *what)
{
    int rc = sqlite3_errcode(ix->db);
    if (rc == SQLITE_NOMEM)
        return dm_err(err, DM_E_NOMEM, "index %s: out of memory %s", ix->path, what);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return dm_err(err, DM_E_IO, "index %s: %s failed: another process held its lock for "
                      "10 s", ix->path, what);
    return dm_err(err, DM_E_IO, "index %s: %s failed: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

static dm_status exec(dm_index *ix, const char *sql, const char *what, char *err)
{
    if (sqlite3_exec(ix->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_err(ix, err, what);
    return DM_OK;
}

/* One integer from a one-row query. */
static dm_status query_int(dm_index *ix, const char *sql, sqlite3_int64 *v, char *err)
{
    sqlite3_stmt *s = NULL;
    dm_status st = DM_OK;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        st = sql_err(ix, err, "reading the schema");
        goto out;
    }
    *v = sqlite3_column_int64(s, 0);
out:
    sqlite3_finalize(s);
    return st;
}

/* SQLite's own sqrt (SQLITE_ENABLE_MATH_FUNCTIONS) has the same semantics: NULL for NULL or
 * a negative argument. */
static void sqrt_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    double x = sqlite3_value_double(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || x < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, sqrt(x));
}

/* The group views need sqrt(); register ours only where the library lacks it. */
static dm_status ensure_sqrt(dm_index *ix, char *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(ix->db, "SELECT sqrt(4.0)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_finalize(s);
        return DM_OK;
    }
    if (sqlite3_create_function(ix->db, "sqrt", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                sqrt_fn, NULL, NULL) != SQLITE_OK)
        return sql_err(ix, err, "registering sqrt()");
    return DM_OK;
}

static dm_status create_schema(dm_index *ix, char *err)
{
    dm_status st = DM_OK;
    sqlite3_int64 version = 0;
    int began = 0;
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting the schema transaction", err)))
        goto out;
    began = 1;
    /* Another process may have created it while we waited for the lock. */
    if ((st = query_int(ix, "PRAGMA user_version", &version, err)) || version != 0)
        goto out;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", DM_INDEX_SCHEMA_VERSION);
    if ((st = exec(ix, dm_index_schema_sql, "creating the schema", err)) ||
        (st = exec(ix, pragma, "setting the schema version", err)))
        goto out;
out:
    if (began) {
        if (st)
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        else if ((st = exec(ix, "COMMIT", "committing the schema", err)))
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return st;
}

/* The summary views (run_summary, group_summary, students) of an index made before them: added
 * for good on a writable connection, as TEMP views on a read-only one. */
static dm_status ensure_views(dm_index *ix, int readonly, char *err)
{
    sqlite3_int64 n = 0;
    dm_status st = query_int(ix, "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND "
                                 "name IN ('run_summary', 'group_summary', 'students')", &n, err);
    if (st || n == 3)
        return st;
    if (readonly)
        return exec(ix, dm_index_views_temp_sql, "adding the summary views", err);
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting the views transaction", err)))
        return st;
    if ((st = exec(ix, dm_index_views_sql, "adding the summary views", err)) ||
        (st = exec(ix, "COMMIT", "committing the summary views", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

dm_status dm_index_open(const char *path, int readonly, dm_index **out, char *err)
{
    dm_status st = DM_OK;
    dm_index *ix = NULL;
    sqlite3_int64 n_objects = 0, version = 0;
    struct stat sb;
    *out = NULL;
    if (readonly && stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return dm_err(err, DM_E_NOTFOUND, "no index at %s: run something first", path);
        return dm_err(err, DM_E_IO, "cannot open index %s: %s", path, strerror(errno));
    }
    ix = dm_calloc(1, sizeof *ix);
    if (!ix || !(ix->path = dm_strdup(path))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory opening index %s", path);
        goto out;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &ix->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM || !ix->db)
            st = dm_err(err, DM_E_NOMEM, "out of memory opening index %s", path);
        else
            st = dm_err(err, DM_E_IO, "cannot open index %s: %s", path, sqlite3_errmsg(ix->db));
        goto out;
    }
    sqlite3_busy_timeout(ix->db, 10000);
    /* Read before writing anything: a file that is not a database fails here, untouched. */
    if ((st = query_int(ix, "SELECT count(*) FROM sqlite_master", &n_objects, err)) ||
        (st = query_int(ix, "PRAGMA user_version", &version, err))) {
        int ec = sqlite3_errcode(ix->db);
        if (ec == SQLITE_NOTADB || ec == SQLITE_CORRUPT)
            st = dm_err(err, DM_E_IO, "%s is not a difflab index (file is not a database)", path);
        goto out;
    }
    if (version > DM_INDEX_SCHEMA_VERSION || (version == 0 && n_objects > 0) ||
        (version == 0 && readonly)) {
        st = version > DM_INDEX_SCHEMA_VERSION
                 ? dm_err(err, DM_E_STATE, "index %s has schema version %lld, newer than this "
                          "difflab's %d: update difflab or rebuild it with `difflab reindex`",
                          path, (long long)version, DM_INDEX_SCHEMA_VERSION)
                 : dm_err(err, DM_E_IO, "%s is not a difflab index (%s)", path,
                          n_objects ? "a database without difflab's schema" : "an empty database");
        goto out;
    }
    if (!readonly && (st = query_int(ix, "PRAGMA journal_mode = WAL", &(sqlite3_int64){0}, err)))
        goto out;
    if ((st = exec(ix, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) ||
        (st = ensure_sqrt(ix, err)))
        goto out;
    if ((version == 0 && (st = create_schema(ix, err))) || (st = ensure_views(ix, readonly, err)))
        goto out;
    *out = ix;
    ix = NULL;
out:
    dm_index_close(ix);
    return st;
}

void dm_index_close(dm_index *ix)
{
    if (!ix)
        return;
    sqlite3_close_v2(ix->db); /* v2: a caller's unfinalized statement keeps it alive, no leak */
    dm_free(ix->path);
    dm_free(ix);
}

/* ------------------------------------------------------------------------- writers ---- */

static dm_status prep(dm_index *ix, const char *sql, sqlite3_stmt **s, char *err)
{
    if (sqlite3_prepare_v2(ix->db, sql, -1, s, NULL) != SQLITE_OK)
        return sql_err(ix, err, "preparing a statement");
    return DM_OK;
}

/* Run a bound statement to completion and make it ready for the next bindings. */
static dm_status step_done(dm_index *ix, sqlite3_stmt *s, const char *what, char *err)
{
    int rc = sqlite3_step(s);
    dm_status st = rc == SQLITE_DONE ? DM_OK : sql_err(ix, err, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

static int bind_str(sqlite3_stmt *s, int i, const char *v)
{
    return v && *v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* An integer attribute: "12", "true"/"false" (git_dirty); anything else is kept as text. */
static int bind_int_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    if (!strcmp(v, "true") || !strcmp(v, "yes"))
        return sqlite3_bind_int(s, i, 1);
    if (!strcmp(v, "false") || !strcmp(v, "no"))
        return sqlite3_bind_int(s, i, 0);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*end && !errno)
        return sqlite3_bind_int64(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int bind_real_attr(sqlite3_stmt *s, int i, const char *v)
{
    char *end;
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    double x = strtod(v, &end);
    if (!*end)
        return sqlite3_bind_double(s, i, x);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static dm_status insert_run(dm_index *ix, const dm_runrec *r, const char *run_id,
                            const char *run_path, char *err)
{
    static const char *const text_attrs[] = {"name", "status", "created", "finished",
                                             "heartbeat", "git_commit"};
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix,
                        "INSERT INTO runs (run_id, name, status, created, finished, heartbeat, "
                        "git_commit, config_hash, group_hash, seed, git_dirty, host, cpu, path, "
                        "params_sha256, teacher, spec_yaml, n_params, wall_s) VALUES "
                        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                        "?17, ?18, ?19)",
                        &s, err);
    if (st)
        return st;
    int rc = sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    for (int i = 0; i < 6; ++i)
        rc |= bind_str(s, 2 + i, dm_runrec_attr(r, text_attrs[i]));
    rc |= bind_str(s, 8, r->config_hash);
    rc |= bind_str(s, 9, r->group_hash);
    /* SQLite integers are signed 64-bit: a seed above 2^63 reads back negative. */
    rc |= sqlite3_bind_int64(s, 10, (sqlite3_int64)r->seed);
    rc |= bind_int_attr(s, 11, dm_runrec_attr(r, "git_dirty"));
    rc |= bind_str(s, 12, dm_runrec_attr(r, "host"));
    rc |= bind_str(s, 13, dm_runrec_attr(r, "cpu"));
    rc |= bind_str(s, 14, run_path ? run_path : dm_runrec_attr(r, "path"));
    rc |= bind_str(s, 15, dm_runrec_attr(r, "params_sha256"));
    rc |= bind_str(s, 16, dm_runrec_attr(r, "teacher"));
    rc |= bind_str(s, 17, r->config_yaml);
    rc |= bind_int_attr(s, 18, dm_runrec_attr(r, "n_params"));
    rc |= bind_real_attr(s, 19, dm_runrec_attr(r, "wall_s"));
    st = rc != SQLITE_OK ? sql_err(ix, err, "binding the runs row")
                         : step_done(ix, s, "inserting the runs row", err);
    sqlite3_finalize(s);
    return st;
}

typedef struct param_ctx {
    dm_index *ix;
    sqlite3_stmt *s;
    const char *run_id;
} param_ctx;

static dm_status insert_param(void *ctx, const dm_spec_kv *kv, char *err)
{
    param_ctx *c = ctx;
    int rc = sqlite3_bind_text(c->s, 1, c->run_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(c->s, 2, kv->key, -1, SQLITE_STATIC);
    switch (kv->type) {
    case DM_OPT_INT:
    case DM_OPT_BOOL: rc |= sqlite3_bind_int64(c->s, 3, kv->i); break;
    case DM_OPT_REAL: rc |= sqlite3_bind_double(c->s, 4, kv->r); break;
    default:
        if (kv->text)
            rc |= sqlite3_bind_text(c->s, 5, kv->text, -1, SQLITE_STATIC);
        break;
    }
    if (rc != SQLITE_OK)
        return sql_err(c->ix, err, "binding a params row");
    return step_done(c->ix, c->s, "inserting a params row", err);
}

static dm_status insert_series_evals(dm_index *ix, const dm_runrec *r, const char *run_id,
                                     char *err)
{
    sqlite3_stmt *m = NULL, *e = NULL;
    dm_status st;
    if ((st = prep(ix, "INSERT INTO metrics (run_id, key, step, wall_s, value) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)", &m, err)) ||
        (st = prep(ix, "INSERT INTO evals (run_id, metric, sampler, nfe, settings, n_samples, "
                       "value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &e, err)))
        goto out;
    for (size_t i = 0; i < r->n_series; ++i) {
        const dm_series *s = &r->series[i];
        for (size_t k = 0; k < s->n; ++k) {
            int rc = sqlite3_bind_text(m, 1, run_id, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_text(m, 2, s->name, -1, SQLITE_STATIC);
            rc |= sqlite3_bind_int64(m, 3, s->step[k]);
            rc |= sqlite3_bind_double(m, 4, s->wall_s[k]); /* NaN is stored as NULL */
            rc |= sqlite3_bind_double(m, 5, s->value[k]);
            if (rc != SQLITE_OK) {
                st = sql_err(ix, err, "binding a metrics row");
                goto out;
            }
            if ((st = step_done(ix, m, "inserting a metrics row", err)))
                goto out;
        }
    }
    for (size_t i = 0; i < r->n_evals; ++i) {
        const dm_eval *v = &r->evals[i];
        int rc = sqlite3_bind_text(e, 1, run_id, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 2, v->metric, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(e, 3, v->sampler, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 4, v->nfe);
        rc |= sqlite3_bind_text(e, 5, v->settings_json, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(e, 6, v->n_samples);
        rc |= sqlite3_bind_double(e, 7, v->value);
        if (rc != SQLITE_OK) {
            st = sql_err(ix, err, "binding an evals row");
            goto out;
        }
        if ((st = step_done(ix, e, "inserting an evals row", err)))
            goto out;
    }
out:
    sqlite3_finalize(m);
    sqlite3_finalize(e);
    return st;
}

dm_status dm_index_upsert_run(dm_index *ix, const dm_runrec *r, const dm_spec *spec,
                              const char *run_path, char *err)
{
    static const char *const deletes[] = {
        "DELETE FROM params WHERE run_id = ?1", "DELETE FROM metrics WHERE run_id = ?1",
        "DELETE FROM evals WHERE run_id = ?1", "DELETE FROM runs WHERE run_id = ?1"};
    dm_status st = DM_OK;
    sqlite3_stmt *s = NULL;
    int began = 0;
    const char *run_id = dm_runrec_attr(r, "run_id");
    if (!run_id || !*run_id)
        return dm_err(err, DM_E_INPUT, "cannot index a run record without a run_id attribute");
    if ((st = exec(ix, "BEGIN IMMEDIATE", "starting a transaction", err)))
        goto out;
    began = 1;
    for (size_t i = 0; i < sizeof deletes / sizeof *deletes; ++i) {
        if ((st = prep(ix, deletes[i], &s, err)))
            goto out;
        if (sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC) != SQLITE_OK) {
            st = sql_err(ix, err, "binding a run id");
            goto out;
        }
        if ((st = step_done(ix, s, "deleting the old rows", err)))
            goto out;
        sqlite3_finalize(s);
        s = NULL;
    }
    if ((st = insert_run(ix, r, run_id, run_path, err)))
        goto out;
    if (spec) {
        if ((st = prep(ix, "INSERT INTO params (run_id, key, int_value, real_value, text_value) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)", &s, err)))
            goto out;
        param_ctx c = {ix, s, run_id};
        if ((st = dm_spec_foreach(spec, insert_param, &c, err)))
            goto out;
    }
    if ((st = insert_series_evals(ix, r, run_id, err)))
        goto out;
    st = exec(ix, "COMMIT", "committing", err);
out:
    sqlite3_finalize(s);
    if (st && began)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    if (st)
        dm_err_prefix(err, "indexing run %s", run_id);
    return st;
}

dm_status dm_index_set_status(dm_index *ix, const char *run_id, const char *status, char *err)
{
    /* finished = when the run stopped for good; a resumed (running) run has not. */
    static const char sql[] =
        "UPDATE runs SET status = ?2, heartbeat = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), "
        "finished = CASE WHEN ?2 IN ('finished', 'diverged', 'failed') "
        "THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHEN ?2 = 'running' THEN NULL "
        "ELSE finished END WHERE run_id = ?1";
    sqlite3_stmt *s = NULL;
    dm_status st = prep(ix, sql, &s, err);
    if (st)
        goto out;
    if ((sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC) |
         sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC)) != SQLITE_OK) {
        st = sql_err(ix, err, "binding the status");
        goto out;
    }
    if ((st = step_done(ix, s, "updating the status", err)))
        goto out;
    if (sqlite3_changes(ix->db) == 0)
        st = dm_err(err, DM_E_NOTFOUND, "no run %s in the index %s", run_id, ix->path);
out:
    sqlite3_finalize(s);
    return st;
}

/* --------------------------------------------------------------------------- query ---- */

/* Shortest "%.*g" that reads back to the same double (CSV and JSON keep full precision). */
static void fmt_real_exact(char *buf, size_t n, double v)
{
    for (int p = 15; p <= 17; ++p) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put_hex(FILE *out, const unsigned char *b, int n)
{
    fputs("x'", out);
    for (int i = 0; i < n; ++i)
        fprintf(out, "%02x", b[i]);
    fputc('\'', out);
}

/* RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes inside. */
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

static void put_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out); /* UTF-8 passes through: JSON text is UTF-8 */
        }
    }
    fputc('"', out);
}

/* One value of the current row in CSV or JSON. */
static void put_value(FILE *out, sqlite3_stmt *s, int c, dm_query_fmt fmt)
{
    char buf[40];
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL:
        if (fmt == DM_QUERY_JSON)
            fputs("null", out);
        break;
    case SQLITE_INTEGER: fprintf(out, "%lld", (long long)sqlite3_column_int64(s, c)); break;
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(s, c);
        if (fmt == DM_QUERY_JSON && !isfinite(v)) {
            fputs("null", out); /* JSON has no infinity */
            break;
        }
        fmt_real_exact(buf, sizeof buf, v);
        fputs(buf, out);
        break;
    }
    case SQLITE_BLOB:
        if (fmt == DM_QUERY_JSON)
            fputc('"', out);
        put_hex(out, sqlite3_column_blob(s, c), sqlite3_column_bytes(s, c));
        if (fmt == DM_QUERY_JSON)
            fputc('"', out);
        break;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, c);
        if (fmt == DM_QUERY_JSON)
            put_json_str(out, t ? t : "");
        else
            put_csv(out, t ? t : "");
    }
    }
}

/* The aligned table is printed after the last row, so cells are kept as text until then. */
typedef struct table {
    int ncol;
    char **cells; /* row-major, header row first */
    size_t n, cap;
    size_t *width;
    unsigned char *num_seen, *text_seen;
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; ++i)
        dm_free(t->cells[i]);
    dm_free(t->cells);
    dm_free(t->width);
    dm_free(t->num_seen);
    dm_free(t->text_seen);
}

/* Display width: code points, not bytes (UTF-8 continuation bytes do not count). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; ++s)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Append one cell (takes ownership of text; NULL text means out of memory). */
static int table_push(table *t, char *text)
{
    if (!text)
        return -1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 64;
        char **p = nc < SIZE_MAX / sizeof *p ? dm_realloc(t->cells, nc * sizeof *p) : NULL;
        if (!p) {
            dm_free(text);
            return -1;
        }
        t->cells = p;
        t->cap = nc;
    }
    size_t c = t->n % (size_t)t->ncol, w = text_width(text);
    if (w > t->width[c])
        t->width[c] = w;
    t->cells[t->n++] = text;
    return 0;
}

static char *cell_text(sqlite3_stmt *s, int c, table *t)
{
    char buf[40];
    switch (sqlite3_column_type(s, c)) {
    case SQLITE_NULL: return dm_strdup("");
    case SQLITE_INTEGER:
        t->num_seen[c] = 1;
        snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(s, c));
        return dm_strdup(buf);
    case SQLITE_FLOAT:
        t->num_seen[c] = 1;
        snprintf(buf, sizeof buf, "%.6g", sqlite3_column_double(s, c));
        return dm_strdup(buf);
    case SQLITE_BLOB: {
        t->text_seen[c] = 1;
        int n = sqlite3_column_bytes(s, c);
        const unsigned char *b = sqlite3_column_blob(s, c);
        char *h = dm_malloc(2 * (size_t)n + 4);
        if (h) {
            char *p = h;
            p += sprintf(p, "x'");
            for (int i = 0; i < n; ++i)
                p += sprintf(p, "%02x", b[i]);
            sprintf(p, "'");
        }
        return h;
    }
    default: {
        t->text_seen[c] = 1;
        const char *v = (const char *)sqlite3_column_text(s, c);
        return dm_strdup(v ? v : "");
    }
    }
}

static void put_spaces(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

/* Blanks are held back until something visible follows, so no line ends in blanks (an empty
 * last cell or a NULL in the last column). */
static void table_print(const table *t, FILE *out)
{
    size_t nc = (size_t)t->ncol, pending = 0;
    for (size_t i = 0; i < t->n; ++i) {
        size_t c = i % nc, pad = t->width[c] - text_width(t->cells[i]);
        int right = t->num_seen[c] && !t->text_seen[c];
        if (c > 0)
            pending += 2;
        if (right)
            pending += pad;
        if (*t->cells[i]) {
            put_spaces(out, pending);
            fputs(t->cells[i], out);
            pending = 0;
        }
        if (!right)
            pending += pad;
        if (c + 1 == nc) {
            fputc('\n', out);
            pending = 0;
        }
        if (i + 1 == nc) { /* the rule under the header */
            for (size_t k = 0; k < nc; ++k) {
                put_spaces(out, k ? 2 : 0);
                for (size_t j = 0; j < t->width[k]; ++j)
                    fputc('-', out);
            }
            fputc('\n', out);
        }
    }
}

/* Prepare sql as exactly one statement: trailing whitespace, ';' and comments are fine,
 * a second statement is not (a query must not smuggle in a write). */
static dm_status prepare_one(dm_index *ix, const char *sql, sqlite3_stmt **s, char *err)
{
    const char *tail = NULL;
    *s = NULL;
    if (sqlite3_prepare_v2(ix->db, sql, -1, s, &tail) != SQLITE_OK) {
        if (sqlite3_errcode(ix->db) == SQLITE_NOMEM)
            return dm_err(err, DM_E_NOMEM, "out of memory preparing the query");
        return dm_err(err, DM_E_INPUT, "SQL error: %s", sqlite3_errmsg(ix->db));
    }
    if (!*s)
        return dm_err(err, DM_E_INPUT, "no SQL statement given");
    while (tail && *tail) {
        sqlite3_stmt *extra = NULL;
        const char *next = NULL;
        int rc = sqlite3_prepare_v2(ix->db, tail, -1, &extra, &next);
        sqlite3_finalize(extra);
        if (rc != SQLITE_OK || extra) {
            while (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r')
                ++tail;
            sqlite3_finalize(*s);
            *s = NULL;
            return dm_err(err, DM_E_INPUT, "only one SQL statement is allowed per query; "
                          "found more: '%.60s'", tail);
        }
        if (next == tail)
            break;
        tail = next;
    }
    return DM_OK;
}

dm_status dm_index_query(dm_index *ix, const char *sql, dm_query_fmt fmt, FILE *out, char *err)
{
    dm_status st = DM_OK;
    sqlite3_stmt *s = NULL;
    table t = {0};
    size_t rows = 0;
    int rc;
    if ((st = prepare_one(ix, sql, &s, err)))
        goto out;
    int ncol = sqlite3_column_count(s);
    if (fmt == DM_QUERY_TABLE && ncol > 0) {
        t.ncol = ncol;
        t.width = dm_calloc((size_t)ncol, sizeof *t.width);
        t.num_seen = dm_calloc((size_t)ncol, 1);
        t.text_seen = dm_calloc((size_t)ncol, 1);
        if (!t.width || !t.num_seen || !t.text_seen)
            goto nomem;
        for (int c = 0; c < ncol; ++c) {
            const char *name = sqlite3_column_name(s, c);
            if (table_push(&t, dm_strdup(name ? name : "")))
                goto nomem;
        }
    } else if (fmt == DM_QUERY_CSV && ncol > 0) {
        for (int c = 0; c < ncol; ++c) {
            const char *name = sqlite3_column_name(s, c);
            if (c)
                fputc(',', out);
            put_csv(out, name ? name : "");
        }
        fputc('\n', out);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (fmt == DM_QUERY_JSON)
            fputs(rows ? ",\n  {" : "[\n  {", out);
        for (int c = 0; c < ncol; ++c) {
            if (fmt == DM_QUERY_TABLE) {
                if (table_push(&t, cell_text(s, c, &t)))
                    goto nomem;
            } else if (fmt == DM_QUERY_CSV) {
                if (c)
                    fputc(',', out);
                put_value(out, s, c, fmt);
            } else {
                const char *name = sqlite3_column_name(s, c);
                if (c)
                    fputs(", ", out);
                put_json_str(out, name ? name : "");
                fputs(": ", out);
                put_value(out, s, c, fmt);
            }
        }
        if (fmt == DM_QUERY_CSV)
            fputc('\n', out);
        else if (fmt == DM_QUERY_JSON)
            fputc('}', out);
        ++rows;
    }
    if (rc != SQLITE_DONE) {
        st = rc == SQLITE_NOMEM ? dm_err(err, DM_E_NOMEM, "out of memory running the query")
             : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                 ? dm_err(err, DM_E_IO, "index %s is busy: %s", ix->path, sqlite3_errmsg(ix->db))
                 : dm_err(err, DM_E_INPUT, "SQL error: %s", sqlite3_errmsg(ix->db));
        goto out;
    }
    if (fmt == DM_QUERY_TABLE)
        table_print(&t, out);
    else if (fmt == DM_QUERY_JSON)
        fputs(rows ? "\n]\n" : "[]\n", out);
    if (fflush(out) != 0 || ferror(out))
        st = dm_err(err, DM_E_IO, "writing the query output failed: %s", strerror(errno));
    goto out;
nomem:
    st = dm_err(err, DM_E_NOMEM, "out of memory collecting the query's rows");
out:
    sqlite3_finalize(s);
    table_free(&t);
    return st;
}

/* The one run whose id equals or starts with `pat`. */
dm_status dm_index_find_run(dm_index *ix, const char *pat, char *id, size_t n, char *err)
{
    sqlite3_stmt *q = NULL;
    dm_status st = DM_OK;
    int found = 0;
    if (sqlite3_prepare_v2(ix->db,
                           "SELECT run_id FROM runs WHERE run_id = ?1 OR substr(run_id, 1, length(?1)) = ?1"
                           " ORDER BY run_id = ?1 DESC, run_id LIMIT 2",
                           -1, &q, NULL) != SQLITE_OK)
        return dm_err(err, DM_E_IO, "index: %s", sqlite3_errmsg(ix->db));
    sqlite3_bind_text(q, 1, pat, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (found == 1 && strcmp(id, pat) != 0) {
            st = dm_err(err, DM_E_INPUT, "run '%s' is ambiguous: %s, %s, ...", pat, id, r);
            goto out;
        }
        if (found == 0)
            snprintf(id, n, "%s", r);
        found++;
    }
    if (!found)
        st = dm_err(err, DM_E_NOTFOUND, "no run '%s' in the index (difflab runs lists them)", pat);
out:
    sqlite3_finalize(q);
    return st;
}
