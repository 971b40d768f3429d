/* index_guard.c — what `difflab query` may do with the index: read, quickly.
 *
 * The connection is read-only, but that alone still lets a statement write elsewhere or run
 * without end: VACUUM INTO '/path' (which SQLite's authorizer sees as an ATTACH) copies the
 * index to any path, fts3_tokenizer() hands out a process address, randomblob(1e9) and
 * printf('%.*c', 2e9, 'x') allocate gigabytes, and a recursive CTE can loop for ever. While a
 * query runs, an authorizer allows only reads, SELECT, recursive CTEs, a few schema-reading
 * pragmas and a list of known pure functions; strings and blobs are capped at
 * DM_QUERY_MAX_LENGTH; and a progress handler stops the statement after DM_QUERY_SECONDS
 * (DIFFLAB_QUERY_SECONDS overrides it, for tests). The statement must also be read-only by
 * sqlite3_stmt_readonly. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/index.h"
#include "io/index_internal.h"

/* Built-in scalar, aggregate, window, date, math and JSON functions that only compute, plus the
 * two difflab registers (sqrt, run_alive). Anything else (fts3_tokenizer, load_extension,
 * functions of extensions) is refused by name. */
static const char *const safe_functions[] = {
    "abs", "avg", "ceil", "ceiling", "char", "coalesce", "concat", "concat_ws", "count", "cume_dist", "date",
    "datetime", "degrees", "dense_rank", "exp", "first_value", "floor", "format", "glob", "group_concat",
    "hex", "ifnull", "iif", "instr", "json", "json_array", "json_array_length", "json_each", "json_extract",
    "json_group_array", "json_group_object", "json_object", "json_quote", "json_tree", "json_type",
    "json_valid", "julianday", "lag", "last_value", "lead", "length", "like", "likelihood", "likely", "ln",
    "log", "log10", "log2", "lower", "ltrim", "max", "min", "mod", "nth_value", "ntile", "nullif",
    "octet_length", "percent_rank", "pi", "pow", "power", "printf", "quote", "radians", "random",
    "randomblob", "rank", "replace", "round", "row_number", "rtrim", "run_alive", "sign", "sin", "cos", "tan",
    "sqrt", "strftime", "string_agg", "substr", "substring", "sum", "time", "total", "trim", "trunc",
    "typeof", "unhex", "unicode", "unixepoch", "unlikely", "upper", "zeroblob", NULL,
};

/* Pragmas that describe the schema or check the file: their argument names a table or index (or
 * caps the errors reported). user_version is read only without an argument (with one it would
 * set it). */
static const char *const schema_pragmas[] = { "table_info", "table_xinfo", "index_list", "index_info",
                                              "index_xinfo", "foreign_key_list", "foreign_key_check",
                                              "integrity_check", "quick_check", NULL };

static int listed(const char *const *list, const char *name)
{
    for (; name && *list; ++list)
        if (sqlite3_stricmp(*list, name) == 0)
            return 1;
    return 0;
}

static int authorize(void *ctx, int action, const char *a1, const char *a2, const char *db, const char *view)
{
    dm_ix_guard *g = ctx;
    (void)db;
    (void)view;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (listed(safe_functions, a2))
            return SQLITE_OK;
        snprintf(g->refused, sizeof g->refused, "the function %s()", a2 ? a2 : "?");
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        if (listed(schema_pragmas, a1) || (!a2 && a1 && sqlite3_stricmp(a1, "user_version") == 0))
            return SQLITE_OK;
        snprintf(g->refused, sizeof g->refused, "PRAGMA %s%s", a1 ? a1 : "?", a2 ? " with a value" : "");
        return SQLITE_DENY;
    case SQLITE_ATTACH:
        snprintf(g->refused, sizeof g->refused, "ATTACH or VACUUM INTO (writing a database file)");
        return SQLITE_DENY;
    default:
        snprintf(g->refused, sizeof g->refused, "a statement that changes something (authorizer action %d)",
                 action);
        return SQLITE_DENY;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int progress(void *ctx)
{
    dm_ix_guard *g = ctx;
    if (now_s() < g->deadline)
        return 0;
    g->timed_out = 1;
    return 1;
}

void dm_ix_guard_begin(dm_index *ix, dm_ix_guard *g)
{
    sqlite3 *db = dm_index_db(ix);
    memset(g, 0, sizeof *g);
    const char *env = getenv("DIFFLAB_QUERY_SECONDS");
    g->seconds = env && atof(env) > 0 ? atof(env) : DM_QUERY_SECONDS;
    g->deadline = now_s() + g->seconds;
    g->old_length = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, DM_QUERY_MAX_LENGTH);
    sqlite3_set_authorizer(db, authorize, g);
    sqlite3_progress_handler(db, 10000, progress, g);
}

void dm_ix_guard_end(dm_index *ix, dm_ix_guard *g)
{
    sqlite3 *db = dm_index_db(ix);
    sqlite3_progress_handler(db, 0, NULL, NULL);
    sqlite3_set_authorizer(db, NULL, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, g->old_length);
}
