/* index_query.c — reading results/index.sqlite for `difflab query` and the commands that name a
 * run: one SQL statement (never two: a query must not smuggle in a write) printed as an aligned
 * table, CSV or JSON; a run found by its id or an unambiguous prefix of it. Preparing and the
 * first step are retried on a transient lock failure; once a row has been printed nothing is
 * retried (a row would be seen twice). */
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/csv.h"
#include "io/index.h"
#include "io/index_internal.h"

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
            dm_csv_put(out, t ? t : "");
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

/* sqlite3_step for the first row, started over after a transient lock failure (nothing has
 * been returned yet, so nothing is seen twice). */
static int step_first(sqlite3_stmt *s, dm_ix_backoff *b)
{
    int rc;
    while (dm_ix_retryable(rc = sqlite3_step(s)) && dm_ix_backoff_wait(b))
        sqlite3_reset(s);
    return rc;
}

/* Prepare sql as exactly one statement: trailing whitespace, ';' and comments are fine,
 * a second statement is not (a query must not smuggle in a write). */
/* The one statement of sql into *s. With a guard, a first statement its authorizer refuses is
 * reported as the refusal (a second statement is an error of its own, whatever it does). */
static dm_status prepare_one(dm_index *ix, const char *sql, sqlite3_stmt **s, const dm_ix_guard *g, char *err)
{
    const char *tail = NULL;
    dm_ix_backoff b;
    int rc;
    *s = NULL;
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
    /* Preparing reads the schema: it can meet a lock like any read. */
    while (dm_ix_retryable(rc = sqlite3_prepare_v2(ix->db, sql, -1, s, &tail)) &&
           dm_ix_backoff_wait(&b))
        ;
    if (rc != SQLITE_OK) {
        if (dm_ix_retryable(rc))
            return dm_err(err, DM_E_IO, "index %s stayed busy for over %d s", ix->path,
                          DM_INDEX_RETRY_S);
        if (sqlite3_errcode(ix->db) == SQLITE_NOMEM)
            return dm_err(err, DM_E_NOMEM, "out of memory preparing the query");
        if (g && g->refused[0])
            return dm_err(err, DM_E_INPUT, "query: the index is readonly here: %s is refused", g->refused);
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
    dm_ix_guard g;
    dm_ix_guard_begin(ix, &g);
    if ((st = prepare_one(ix, sql, &s, &g, err)))
        goto out;
    if (!sqlite3_stmt_readonly(s)) {
        st = dm_err(err, DM_E_INPUT, "query: the index is readonly here: a statement that would change something "
                    "is refused");
        goto out;
    }
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
            dm_csv_put(out, name ? name : "");
        }
        fputc('\n', out);
    }
    dm_ix_backoff b;
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
    while ((rc = rows ? sqlite3_step(s) : step_first(s, &b)) == SQLITE_ROW) {
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
        st = g.timed_out ? dm_err(err, DM_E_INPUT, "query: stopped after %g s (the limit of one query)", g.seconds)
             : rc == SQLITE_TOOBIG
                 ? dm_err(err, DM_E_INPUT, "query: a string or blob over %d bytes (the limit of one query)",
                          DM_QUERY_MAX_LENGTH)
             : rc == SQLITE_NOMEM ? dm_err(err, DM_E_NOMEM, "out of memory running the query")
             : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                 ? dm_err(err, DM_E_IO, "index %s stayed busy for over %d s", ix->path,
                          DM_INDEX_RETRY_S)
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
    dm_ix_guard_end(ix, &g);
    table_free(&t);
    return st;
}

/* The one run whose id equals or starts with `pat`. */
dm_status dm_index_find_run(dm_index *ix, const char *pat, char *id, size_t n, char *err)
{
    sqlite3_stmt *q = NULL;
    dm_status st = DM_OK;
    int found = 0, rc;
    dm_ix_backoff b;
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
    while (dm_ix_retryable(rc = sqlite3_prepare_v2(ix->db,
                           "SELECT run_id FROM runs WHERE run_id = ?1 OR substr(run_id, 1, length(?1)) = ?1"
                           " ORDER BY run_id = ?1 DESC, run_id LIMIT 2",
                           -1, &q, NULL)) && dm_ix_backoff_wait(&b))
        ;
    if (rc != SQLITE_OK)
        return dm_err(err, DM_E_IO, "index %s: %s", ix->path,
                      dm_ix_retryable(rc) ? "stayed busy for too long" : sqlite3_errmsg(ix->db));
    sqlite3_bind_text(q, 1, pat, -1, SQLITE_STATIC);
    while ((rc = found ? sqlite3_step(q) : step_first(q, &b)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (found == 1 && strcmp(id, pat) != 0) {
            st = dm_err(err, DM_E_INPUT, "run '%s' is ambiguous: %s, %s, ...", pat, id, r);
            goto out;
        }
        if (found == 0)
            snprintf(id, n, "%s", r);
        found++;
    }
    if (rc != SQLITE_DONE)
        st = dm_err(err, DM_E_IO, "index %s: %s", ix->path,
                    dm_ix_retryable(rc) ? "stayed busy for too long" : sqlite3_errmsg(ix->db));
    else if (!found)
        st = dm_err(err, DM_E_NOTFOUND, "no run '%s' in the index (difflab runs lists them)", pat);
out:
    sqlite3_finalize(q);
    return st;
}

dm_status dm_index_run_status(dm_index *ix, const char *run_id, char *status, size_t n, char *err)
{
    sqlite3_stmt *q = NULL;
    dm_ix_backoff b;
    int rc;
    status[0] = '\0';
    dm_ix_backoff_init(&b, DM_INDEX_RETRY_S);
    while (dm_ix_retryable(rc = sqlite3_prepare_v2(ix->db, "SELECT status FROM runs WHERE run_id = ?1", -1, &q,
                                                   NULL)) && dm_ix_backoff_wait(&b))
        ;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
        if ((rc = step_first(q, &b)) == SQLITE_ROW) {
            const char *s = (const char *)sqlite3_column_text(q, 0);
            snprintf(status, n, "%s", s ? s : "");
            rc = SQLITE_DONE;
        }
    }
    dm_status st = DM_OK;
    if (rc != SQLITE_DONE)
        st = dm_err(err, DM_E_IO, "index %s: reading the status of run %s: %s", ix->path, run_id,
                    dm_ix_retryable(rc) ? "stayed busy for too long" : sqlite3_errmsg(ix->db));
    sqlite3_finalize(q);
    return st;
}
