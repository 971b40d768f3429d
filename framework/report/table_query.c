/* table_query.c — the SQL of a table: the definition checked against the index (so that a bad
 * sweep, metric or key is named with suggestions before any query runs), and the two queries: one
 * row per (finished run, cell) with the run's value already reduced by --agg (GROUP BY run and
 * keys), and one row per failed or diverged run with its param keys. */
#include "report/table_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const eval_fields[] = {"sampler", "nfe", "settings"};

/* One field of the settings JSON: "settings.scale" is json_extract(settings, '$.scale'). */
static const char *settings_field(const char *key)
{
    return strncmp(key, "settings.", 9) == 0 && key[9] ? key + 9 : NULL;
}

int dm_table_is_eval_field(const char *key)
{
    for (size_t i = 0; i < sizeof eval_fields / sizeof *eval_fields; ++i)
        if (!strcmp(key, eval_fields[i]))
            return 1;
    return settings_field(key) != NULL;
}

dm_tkey_kind dm_table_key_kind(const char *key, int training)
{
    if (!strcmp(key, "sampler") || (!training && !strcmp(key, "sampler.type")))
        return DM_TKEY_SAMPLER;
    if (!strcmp(key, "nfe"))
        return DM_TKEY_NFE;
    if (!strcmp(key, "settings"))
        return DM_TKEY_SETTINGS;
    if (settings_field(key) || (!training && strncmp(key, "sampler.", 8) == 0 && key[8]))
        return DM_TKEY_FIELD;
    return DM_TKEY_PARAM;
}

const char *dm_table_key_field(const char *key)
{
    return settings_field(key) ? settings_field(key) : key + 8;
}

int dm_table_key_wild_for_failed(const char *key, int training)
{
    dm_tkey_kind k = dm_table_key_kind(key, training);
    return k == DM_TKEY_NFE || k == DM_TKEY_SETTINGS || (k == DM_TKEY_FIELD && settings_field(key));
}

static const char *origin_of(const dm_table_def *d, int opt, char *buf, size_t n)
{
    if (d->origin[opt])
        return d->origin[opt];
    snprintf(buf, n, "--%s", dm_table_opt_names[opt]);
    return buf;
}

dm_status dm_table_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err)
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
    if (dm_table_prep(db, sql, &s, err))
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
dm_status dm_table_check_def(sqlite3 *db, const dm_table_def *d, const char *const *keys, size_t nk,
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
        int rest = tail && !dm_table_all_blank(tail);
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
    /* The row and column keys, then the --merge keys. */
    const char *all[2 * DM_TABLE_MAX_KEYS + 1];
    size_t na = 0;
    for (size_t i = 0; i < nk; ++i)
        all[na++] = keys[i];
    for (int i = 0; i < d->n_merges; ++i)
        all[na++] = d->merges[i];
    for (size_t i = 0; i < na; ++i) {
        int opt = i >= nk ? DM_TOPT_MERGE : i + 1 == nk && d->col ? DM_TOPT_COLS : DM_TOPT_ROWS;
        for (size_t j = 0; j < i; ++j)
            if (!strcmp(all[i], all[j]))
                return dm_err(err, DM_E_INPUT, "%s: the key '%s' is given twice (%s)",
                              origin_of(d, opt, ob, sizeof ob), all[i],
                              i >= nk && j < nk ? "a row or column key is never pooled: it "
                              "already tells its cells apart" : "rows, cols and merge keys must differ");
        if (dm_table_is_eval_field(all[i])) {
            if (*training)
                return dm_err(err, DM_E_INPUT, "%s: '%s' is a field of evals, but '%s' is a "
                              "training series, which has none", origin_of(d, opt, ob, sizeof ob),
                              all[i], d->metric);
            continue;
        }
        if (strncmp(all[i], "tag.", 4) == 0) { /* a run's tag (difflab tag) */
            sql = sqlite3_mprintf("SELECT 1 FROM tags WHERE key = %Q", all[i] + 4);
            if ((e = exists(db, sql, err)) < 0)
                goto fail;
            sqlite3_free(sql);
            sql = NULL;
            if (!e)
                return dm_err(err, DM_E_INPUT, "%s: no run in the index has the tag '%s' (`difflab tag RUN "
                              "%s=VALUE` sets one)", origin_of(d, opt, ob, sizeof ob), all[i] + 4, all[i] + 4);
            continue;
        }
        sql = sqlite3_mprintf("SELECT 1 FROM params WHERE key = %Q", all[i]);
        if ((e = exists(db, sql, err)) < 0)
            goto fail;
        sqlite3_free(sql);
        sql = NULL;
        if (!e) {
            /* Suggest the keys that contain what was typed (steps -> sampler.steps, train.steps). */
            char *like = sqlite3_mprintf("SELECT DISTINCT key FROM params WHERE instr(key, %Q) > 0 "
                                         "ORDER BY 1 LIMIT 8", all[i]);
            list_of(db, like, known, sizeof known);
            sqlite3_free(like);
            return dm_err(err, DM_E_INPUT, "%s: unknown key '%s': neither a param key of a run in "
                          "the index nor one of sampler, nfe, settings, settings.FIELD%s%s%s",
                          origin_of(d, opt, ob, sizeof ob), all[i],
                          *known ? " (did you mean: " : "", known, *known ? ")" : "");
        }
    }
    if (*training && (d->n_samplers || d->n_nfes || d->settings)) {
        int opt = d->n_samplers ? DM_TOPT_SAMPLER : d->n_nfes ? DM_TOPT_NFE : DM_TOPT_SETTINGS;
        return dm_err(err, DM_E_INPUT, "%s: filters evals, but '%s' is a training series",
                      origin_of(d, opt, ob, sizeof ob), d->metric);
    }
    if (*training && d->floor)
        return dm_err(err, DM_E_INPUT, "%s: the floor is the evals of the sampler 'exact' (draws "
                      "from the data), but '%s' is a training series",
                      origin_of(d, DM_TOPT_FLOOR, ob, sizeof ob), d->metric);
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

/* A param of the run r by its key, as a join pK and its value; tag.KEY: the run's tag KEY. */
static void append_param(sqlite3_str *cols, sqlite3_str *joins, const char *key, int k)
{
    if (strncmp(key, "tag.", 4) == 0) {
        sqlite3_str_appendf(cols, ", p%d.value", k);
        sqlite3_str_appendf(joins, " LEFT JOIN tags p%d ON p%d.run_id = r.run_id AND p%d.key = %Q", k, k, k, key + 4);
        return;
    }
    sqlite3_str_appendf(cols, ", coalesce(p%d.int_value, p%d.real_value, p%d.text_value)", k, k, k);
    sqlite3_str_appendf(joins, " LEFT JOIN params p%d ON p%d.run_id = r.run_id AND p%d.key = %Q",
                        k, k, k, key);
}

/* The key expressions and their joins. A failed run has no evals: its sampler keys are its
 * spec's (sampler.type, sampler.FIELD), its nfe and settings NULL placeholders that table_read.c
 * reads back as wildcards. (SQLite's printf has no %zu: the indices are ints.) */
static void append_keys(sqlite3_str *cols, sqlite3_str *joins, const char *const *keys, size_t nk,
                        int training, int failed)
{
    for (size_t i = 0; i < nk; ++i) {
        const dm_tkey_kind kind = dm_table_key_kind(keys[i], training);
        if (kind == DM_TKEY_PARAM) {
            append_param(cols, joins, keys[i], (int)i);
        } else if (failed && dm_table_key_wild_for_failed(keys[i], training)) {
            sqlite3_str_appendall(cols, ", NULL");
        } else if (failed) { /* sampler.type or sampler.FIELD of the spec */
            append_param(cols, joins, kind == DM_TKEY_SAMPLER ? "sampler.type" : keys[i], (int)i);
        } else if (kind == DM_TKEY_FIELD) {
            char *path = sqlite3_mprintf("$.%s", dm_table_key_field(keys[i]));
            sqlite3_str_appendf(cols, ", json_extract(e.settings, %Q)", path ? path : "$");
            sqlite3_free(path);
        } else {
            sqlite3_str_appendf(cols, ", e.%s", kind == DM_TKEY_SAMPLER ? "sampler"
                                               : kind == DM_TKEY_NFE ? "nfe" : "settings");
        }
    }
}

/* The eval filters: --sampler (else neither the noise baseline nor the floor), --nfe,
 * --settings. */
static void append_eval_filters(sqlite3_str *q, const dm_table_def *d)
{
    if (d->n_samplers) {
        sqlite3_str_appendall(q, " AND e.sampler IN (");
        for (int i = 0; i < d->n_samplers; ++i)
            sqlite3_str_appendf(q, "%s%Q", i ? ", " : "", d->samplers[i]);
        sqlite3_str_appendall(q, ")");
    } else {
        sqlite3_str_appendall(q, " AND e.sampler NOT IN ('noise', 'exact')");
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

/* The text of q with the key columns and joins spliced in, or NULL when out of memory. */
static char *finish_query(sqlite3_str *q, char *c, char *j, int oom)
{
    sqlite3_free(c);
    sqlite3_free(j);
    char *sql = finish_str(q, &oom);
    if (oom || !c || !j) {
        sqlite3_free(sql);
        return NULL;
    }
    return sql;
}

char *dm_table_finished_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training)
{
    sqlite3_str *q = sqlite3_str_new(NULL), *cols = sqlite3_str_new(NULL),
                *joins = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status = 'finished'");
    append_keys(cols, joins, keys, nk, training, 0);
    char *c = finish_str(cols, &oom), *j = finish_str(joins, &oom);
    if (training) {
        /* "last": SQLite takes the bare column from the row that holds the max(). */
        static const char *const agg_sql[] = {"m.value, max(m.step)", "avg(m.value)",
                                              "min(m.value)", "max(m.value)"};
        sqlite3_str_appendf(q, "SELECT r.run_id, r.seed%s, count(*), %s\nFROM sel r JOIN metrics m "
                            "ON m.run_id = r.run_id AND m.key = %Q AND m.value IS NOT NULL%s\n"
                            "GROUP BY 1", c ? c : "", agg_sql[d->agg], d->metric, j ? j : "");
        for (size_t i = 0; i < nk; ++i)
            sqlite3_str_appendf(q, ", %d", (int)i + 3);
    } else {
        /* every eval: table_read.c reduces a run's several evals of one cell by --agg */
        sqlite3_str_appendf(q, "SELECT r.run_id, r.seed%s, e.sampler, e.settings, e.n_samples, "
                            "e.value\nFROM sel r JOIN evals e ON e.run_id = r.run_id AND e.metric = "
                            "%Q AND e.value IS NOT NULL", c ? c : "", d->metric);
        append_eval_filters(q, d);
        sqlite3_str_appendf(q, "%s\nORDER BY 1", j ? j : "");
        for (size_t i = 0; i < nk; ++i)
            sqlite3_str_appendf(q, ", %d", (int)i + 3);
        sqlite3_str_appendall(q, ", e.rowid");
    }
    return finish_query(q, c, j, oom);
}

char *dm_table_failed_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training)
{
    sqlite3_str *q = sqlite3_str_new(NULL), *cols = sqlite3_str_new(NULL),
                *joins = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status IN ('failed', 'diverged')");
    append_keys(cols, joins, keys, nk, training, 1);
    char *c = finish_str(cols, &oom), *j = finish_str(joins, &oom);
    sqlite3_str_appendf(q, "SELECT r.run_id, r.seed%s FROM sel r%s", c ? c : "", j ? j : "");
    /* --sampler applies to a failed run's own sampler; --nfe and --settings cannot apply */
    if (d->n_samplers) {
        sqlite3_str_appendall(q, " WHERE (SELECT text_value FROM params WHERE run_id = r.run_id "
                                 "AND key = 'sampler.type') IN (");
        for (int i = 0; i < d->n_samplers; ++i)
            sqlite3_str_appendf(q, "%s%Q", i ? ", " : "", d->samplers[i]);
        sqlite3_str_appendall(q, ")");
    }
    sqlite3_str_appendall(q, " ORDER BY 1");
    return finish_query(q, c, j, oom);
}

char *dm_table_floor_sql(const dm_table_def *d)
{
    sqlite3_str *q = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status = 'finished'");
    sqlite3_str_appendf(q, "SELECT r.run_id, r.seed, e.settings, e.n_samples, e.value FROM sel r "
                        "JOIN evals e ON e.run_id = r.run_id AND e.metric = %Q AND e.sampler = "
                        "'exact' AND e.value IS NOT NULL ORDER BY 1, e.rowid", d->metric);
    return finish_str(q, &oom);
}

char *dm_table_params_sql(const dm_table_def *d)
{
    sqlite3_str *q = sqlite3_str_new(NULL);
    int oom = 0;
    append_sel(q, d, "r.status IN ('finished', 'failed', 'diverged')");
    sqlite3_str_appendall(q, "SELECT p.run_id, p.key, p.int_value, p.real_value, p.text_value "
                             "FROM params p JOIN sel r ON r.run_id = p.run_id ORDER BY 1, 2");
    return finish_str(q, &oom);
}
