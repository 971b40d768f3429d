/* test_index.c — results/index.sqlite: schema, idempotent upserts, typed params, the group
 * views' exact mean / std, query output in three formats, error cases, locks released on error,
 * allocation failures; concurrency: a lock SQLite's busy handler does not wait for (retried),
 * many processes creating one index at once, and the atomic replacement by reindex with a live
 * writer on the old file. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/alloc.h"
#include "io/index.h"
#include "io/runrec.h"
#include "io/spec.h"

/* ------------------------------------------------------------------ temp folder ---- */

typedef struct fixture {
    char dir[512];
    char path[600];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("DIFFLAB_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(f->dir, sizeof f->dir, "%s/index.XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/index.sqlite", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        char p[1200];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------ helpers ---- */

/* A run of group `group` with seed `seed`: loss series ending at `last`, one swd eval. */
static dm_status make_run(dm_runrec *r, const char *run_id, const char *group, uint64_t seed,
                          double last, double swd, char *err)
{
    dm_status st;
    dm_series *s;
    dm_runrec_init(r);
    if ((st = dm_runrec_set_attr(r, "run_id", run_id, err)) ||
        (st = dm_runrec_set_attr(r, "name", "demo", err)) ||
        (st = dm_runrec_set_attr(r, "status", "finished", err)) ||
        (st = dm_runrec_set_attr(r, "git_dirty", "true", err)) ||
        (st = dm_runrec_set_attr(r, "n_params", "1234", err)) ||
        (st = dm_runrec_set_attr(r, "wall_s", "12.5", err)) ||
        (st = dm_runrec_set_attr(r, "host", "node1", err)))
        return st;
    snprintf(r->config_hash, sizeof r->config_hash, "%s", group);
    snprintf(r->group_hash, sizeof r->group_hash, "%s", group);
    r->seed = seed;
    if (!(r->config_yaml = dm_strdup("seed: 1\n")))
        return DM_E_NOMEM;
    if ((st = dm_runrec_series(r, "loss", &s, err)) || (st = dm_series_push(s, 0, 0.1, 9, err)) ||
        (st = dm_series_push(s, 100, 0.2, 7, err)) || (st = dm_series_push(s, 200, 0.3, last, err)))
        return st;
    if ((st = dm_runrec_series(r, "lr", &s, err)) || (st = dm_series_push(s, 0, 0.1, 1e-3, err)))
        return st;
    if ((st = dm_runrec_add_eval(r, "swd", "ddim", 50, "{\"eta\":0}", 1000, swd, err)) ||
        (st = dm_runrec_add_eval(r, "swd", "ddim", 50, "{\"eta\":1}", 1000, 100 + swd, err)))
        return st;
    return DM_OK;
}

static long long count(dm_index *ix, const char *sql)
{
    sqlite3_stmt *s = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(dm_index_db(ix), sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* Run a query into a string (caller frees). */
static char *query_text(dm_index *ix, const char *sql, dm_query_fmt fmt, dm_status *st,
                        char *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    *st = dm_index_query(ix, sql, fmt, out, err);
    fclose(out);
    return buf;
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---------------------------------------------------------------------------- tests ---- */

static void test_open_schema(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(count(ix, "PRAGMA user_version"), DM_INDEX_SCHEMA_VERSION);
    assert_int_equal(count(ix, "PRAGMA foreign_keys"), 1);
    assert_int_equal(count(ix, "SELECT count(*) FROM sqlite_master WHERE name IN ('runs', "
                               "'sweep_runs', 'params', 'metrics', 'evals', 'metric_info', "
                               "'last_metrics', 'group_metrics', 'group_evals')"), 9);
    assert_int_equal(count(ix, "SELECT count(*) FROM metric_info WHERE lower_is_better = 1 AND "
                               "name IN ('loss', 'swd', 'mmd2', 'nll', 'bpd')"), 5);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(dm_index_db(ix), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    dm_index_close(ix);

    /* opening again keeps everything (and a read-only open works) */
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM metric_info"), 33);
    dm_index_close(ix);
}

static void test_upsert_idempotent(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_runrec r;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(make_run(&r, "demo-aaaa-s1", "aaaa", 1, 2, 1, err), DM_OK);
    for (int k = 0; k < 2; ++k) {
        assert_int_equal(dm_index_upsert_run(ix, &r, NULL, "results/runs/demo-aaaa-s1", err),
                         DM_OK);
        assert_int_equal(count(ix, "SELECT count(*) FROM runs"), 1);
        assert_int_equal(count(ix, "SELECT count(*) FROM metrics"), 4);
        assert_int_equal(count(ix, "SELECT count(*) FROM evals"), 2);
        assert_int_equal(count(ix, "SELECT count(*) FROM params"), 0);
    }
    /* the row's typed columns */
    assert_int_equal(count(ix, "SELECT git_dirty FROM runs"), 1);
    assert_int_equal(count(ix, "SELECT n_params FROM runs"), 1234);
    assert_int_equal(count(ix, "SELECT wall_s = 12.5 AND typeof(wall_s) = 'real' FROM runs"), 1);
    assert_int_equal(count(ix, "SELECT seed FROM runs"), 1);
    assert_int_equal(count(ix, "SELECT path = 'results/runs/demo-aaaa-s1' AND config_hash = "
                               "'aaaa' AND spec_yaml = 'seed: 1\n' AND cpu IS NULL FROM runs"), 1);
    /* a shorter record replaces every row */
    dm_series_truncate(&r.series[0], 100);
    assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM metrics"), 3);
    assert_int_equal(count(ix, "SELECT path IS NULL FROM runs"), 1);
    assert_int_equal(count(ix, "SELECT value FROM last_metrics WHERE key = 'loss'"), 7);
    dm_runrec_free(&r);

    /* no run_id: bad input, nothing written */
    dm_runrec_init(&r);
    assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_E_INPUT);
    assert_non_null(strstr(err, "run_id"));
    dm_index_close(ix);
}

static void test_group_views(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_runrec r;
    /* group g3: last losses 2, 4, 6 (mean 4, std 2); swd 1, 3, 5 (mean 3, std 2).
     * group g1: one run: std NULL. */
    const double loss[3] = {2, 4, 6}, swd[3] = {1, 3, 5};
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    for (int i = 0; i < 3; ++i) {
        char id[32];
        snprintf(id, sizeof id, "demo-g3-s%d", i);
        assert_int_equal(make_run(&r, id, "g3", (uint64_t)i, loss[i], swd[i], err), DM_OK);
        assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_OK);
        dm_runrec_free(&r);
    }
    assert_int_equal(make_run(&r, "demo-g1-s0", "g1", 0, 10, 10, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_OK);
    dm_runrec_free(&r);

    assert_int_equal(count(ix, "SELECT count(*) FROM last_metrics"), 8);
    assert_int_equal(count(ix, "SELECT step FROM last_metrics WHERE run_id = 'demo-g3-s1' "
                               "AND key = 'loss'"), 200);
    assert_int_equal(count(ix, "SELECT n = 3 AND mean = 4.0 AND std = 2.0 FROM group_metrics "
                               "WHERE group_hash = 'g3' AND key = 'loss'"), 1);
    assert_int_equal(count(ix, "SELECT n = 1 AND mean = 10.0 AND std IS NULL FROM group_metrics "
                               "WHERE group_hash = 'g1' AND key = 'loss'"), 1);
    assert_int_equal(count(ix, "SELECT count(*) FROM group_evals"), 4);
    assert_int_equal(count(ix, "SELECT n = 3 AND mean = 3.0 AND std = 2.0 FROM group_evals "
                               "WHERE group_hash = 'g3' AND metric = 'swd' AND sampler = 'ddim' "
                               "AND nfe = 50 AND settings = '{\"eta\":0}'"), 1);
    assert_int_equal(count(ix, "SELECT mean = 103.0 AND std = 2.0 FROM group_evals "
                               "WHERE group_hash = 'g3' AND settings = '{\"eta\":1}'"), 1);
    assert_int_equal(count(ix, "SELECT std IS NULL FROM group_evals WHERE group_hash = 'g1' "
                               "AND settings = '{\"eta\":0}'"), 1);
    dm_index_close(ix);
}

static void test_query_formats(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_status st;
    static const char sql[] =
        "SELECT 'a,b' AS name, 1 AS n, 0.5 AS x, NULL AS z "
        "UNION ALL SELECT 'say \"hi\"', 22, 1.0 / 3, 'ü';  -- trailing comment is fine\n";
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);

    char *t = query_text(ix, sql, DM_QUERY_TABLE, &st, err);
    assert_int_equal(st, DM_OK);
    assert_string_equal(t, "name       n         x  z\n"
                           "--------  --  --------  -\n"
                           "a,b        1       0.5\n"
                           "say \"hi\"  22  0.333333  ü\n");
    free(t);

    t = query_text(ix, sql, DM_QUERY_CSV, &st, err);
    assert_int_equal(st, DM_OK);
    assert_string_equal(t, "name,n,x,z\n"
                           "\"a,b\",1,0.5,\n"
                           "\"say \"\"hi\"\"\",22,0.3333333333333333,ü\n");
    free(t);

    t = query_text(ix, sql, DM_QUERY_JSON, &st, err);
    assert_int_equal(st, DM_OK);
    assert_string_equal(t, "[\n"
                           "  {\"name\": \"a,b\", \"n\": 1, \"x\": 0.5, \"z\": null},\n"
                           "  {\"name\": \"say \\\"hi\\\"\", \"n\": 22, \"x\": 0.3333333333333333, "
                           "\"z\": \"ü\"}\n"
                           "]\n");
    free(t);

    /* control characters and backslashes in JSON; line breaks in CSV */
    t = query_text(ix, "SELECT char(9) || 'a\\b' || char(10) || char(1) AS \"k\"\"ey\"",
                   DM_QUERY_JSON, &st, err);
    assert_int_equal(st, DM_OK);
    assert_string_equal(t, "[\n  {\"k\\\"ey\": \"\\ta\\\\b\\n\\u0001\"}\n]\n");
    free(t);
    t = query_text(ix, "SELECT 'x' || char(10) || 'y' AS v", DM_QUERY_CSV, &st, err);
    assert_string_equal(t, "v\n\"x\ny\"\n");
    free(t);

    /* no rows */
    t = query_text(ix, "SELECT run_id, seed FROM runs", DM_QUERY_JSON, &st, err);
    assert_string_equal(t, "[]\n");
    free(t);
    t = query_text(ix, "SELECT run_id, seed FROM runs", DM_QUERY_TABLE, &st, err);
    assert_string_equal(t, "run_id  seed\n------  ----\n");
    free(t);
    t = query_text(ix, "SELECT run_id, seed FROM runs", DM_QUERY_CSV, &st, err);
    assert_string_equal(t, "run_id,seed\n");
    free(t);
    dm_index_close(ix);
}

static void test_query_errors(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_status st;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    free(query_text(ix, "SELECT * FROM nope", DM_QUERY_TABLE, &st, err));
    assert_int_equal(st, DM_E_INPUT);
    assert_string_equal(err, "SQL error: no such table: nope");
    free(query_text(ix, "SELEC 1", DM_QUERY_CSV, &st, err));
    assert_int_equal(st, DM_E_INPUT);
    assert_non_null(strstr(err, "syntax error"));
    free(query_text(ix, "SELECT 1; DELETE FROM runs", DM_QUERY_CSV, &st, err));
    assert_int_equal(st, DM_E_INPUT);
    assert_non_null(strstr(err, "only one SQL statement"));
    assert_non_null(strstr(err, "DELETE FROM runs"));
    free(query_text(ix, "  -- nothing\n", DM_QUERY_CSV, &st, err));
    assert_int_equal(st, DM_E_INPUT);
    dm_index_close(ix);

    /* read-only: writing through a query is refused by SQLite */
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    free(query_text(ix, "DELETE FROM runs", DM_QUERY_CSV, &st, err));
    assert_int_equal(st, DM_E_INPUT);
    assert_non_null(strstr(err, "readonly"));
    dm_index_close(ix);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", p[700];
    dm_index *ix = NULL;

    /* read-only open of a missing index: not found, and nothing created */
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_E_NOTFOUND);
    assert_null(ix);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "run something first"));
    assert_false(file_exists(f->path));

    /* a file that is not a database: an error, and the file's bytes are unchanged */
    unsigned char garbage[8192];
    for (size_t i = 0; i < sizeof garbage; ++i)
        garbage[i] = (unsigned char)((i * 2654435761u) >> 13);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(garbage, 1, sizeof garbage, fp), sizeof garbage);
    fclose(fp);
    for (int ro = 0; ro < 2; ++ro) {
        assert_int_equal(dm_index_open(f->path, ro, &ix, err), DM_E_IO);
        assert_null(ix);
        char want[800];
        snprintf(want, sizeof want, "%s is not a difflab index (file is not a database)", f->path);
        assert_string_equal(err, want);
    }
    unsigned char back[sizeof garbage + 1];
    fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), sizeof garbage);
    fclose(fp);
    assert_memory_equal(back, garbage, sizeof garbage);
    snprintf(p, sizeof p, "%s-wal", f->path);
    assert_false(file_exists(p));
    unlink(f->path);

    /* another program's SQLite database is not ours to add tables to */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_E_IO);
    assert_non_null(strstr(err, "not a difflab index"));
    unlink(f->path);

    /* a newer schema */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_E_STATE);
    assert_non_null(strstr(err, "99"));
    unlink(f->path);

    /* a version-1 index (before the Slurm columns) is migrated when opened for writing */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT);"
                                      "INSERT INTO runs VALUES ('old-s0', 'old');"
                                      "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);   /* read-only: left as it is */
    assert_int_equal(count(ix, "PRAGMA user_version"), 1);
    /* ... with empty TEMP tags and notes tables, so that their queries answer */
    assert_int_equal(count(ix, "SELECT count(*) FROM tags"), 0);
    assert_int_equal(count(ix, "SELECT count(*) FROM notes"), 0);
    dm_index_close(ix);
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(count(ix, "PRAGMA user_version"), DM_INDEX_SCHEMA_VERSION);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs WHERE run_id = 'old-s0' AND slurm_job_id IS NULL"
                               " AND slurm_array_job_id IS NULL AND slurm_array_task_id IS NULL"), 1);
    /* version 2 -> 3: the tags and notes tables, in the file */
    assert_int_equal(count(ix, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('tags', 'notes')"), 2);
    dm_index_close(ix);
    unlink(f->path);

    /* an empty database (a writer has created the file, not yet the schema): nothing indexed
     * yet for a reader */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_E_NOTFOUND);
    assert_non_null(strstr(err, "is empty"));
    unlink(f->path);

    /* a folder that does not exist */
    snprintf(p, sizeof p, "%s/no/such/index.sqlite", f->dir);
    assert_int_equal(dm_index_open(p, 0, &ix, err), DM_E_IO);
    assert_non_null(strstr(err, p));
}

static void test_status_and_rollback(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_runrec r;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(make_run(&r, "demo-x-s1", "x", 1, 2, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_OK);

    assert_int_equal(dm_index_set_status(ix, "demo-x-s1", "running", err), DM_OK);
    assert_int_equal(count(ix, "SELECT status = 'running' AND finished IS NULL AND heartbeat "
                               "LIKE '____-__-__T__:__:__Z' FROM runs"), 1);
    assert_int_equal(dm_index_set_status(ix, "demo-x-s1", "diverged", err), DM_OK);
    assert_int_equal(count(ix, "SELECT status = 'diverged' AND finished IS NOT NULL FROM runs"), 1);
    assert_int_equal(dm_index_set_status(ix, "nope", "running", err), DM_E_NOTFOUND);
    assert_non_null(strstr(err, "nope"));

    /* an insert that fails inside the transaction: everything rolled back, no lock left */
    assert_int_equal(sqlite3_exec(dm_index_db(ix),
                                  "CREATE TEMP TRIGGER boom BEFORE INSERT ON metrics "
                                  "WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                                  NULL, NULL, NULL), SQLITE_OK);
    dm_series *s;
    assert_int_equal(dm_runrec_series(&r, "boom", &s, err), DM_OK);
    assert_int_equal(dm_series_push(s, 1, 1, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(ix, &r, NULL, NULL, err), DM_E_IO);
    assert_non_null(strstr(err, "boom"));
    assert_non_null(strstr(err, "demo-x-s1"));
    assert_int_equal(count(ix, "SELECT count(*) FROM metrics"), 4);
    assert_int_equal(count(ix, "SELECT status = 'diverged' FROM runs"), 1); /* not replaced */
    assert_true(sqlite3_get_autocommit(dm_index_db(ix)));
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    dm_runrec_free(&r);
    dm_index_close(ix);
}

/* ---- typed params through a real spec (io/spec) ---- */

typedef struct top_opts {
    char name[DM_OPT_STR_MAX];
    int64_t seed;
    int64_t steps;
    double lr;
    bool ema;
    int optimizer;
    dm_reals weights;
} top_opts;

static const char *const optimizers[] = {"adam", "adamw", NULL};
static const dm_param_desc top_params[] = {
    {"name", DM_OPT_STR, "run", 0, 0, NULL, DM_OPT_NOHASH, offsetof(top_opts, name), "name"},
    {"seed", DM_OPT_INT, "0", 0, 1e9, NULL, DM_OPT_SEED, offsetof(top_opts, seed), "seed"},
    {"steps", DM_OPT_INT, "10", 1, 1e9, NULL, 0, offsetof(top_opts, steps), "steps"},
    {"lr", DM_OPT_REAL, "1e-3", 0, 1, NULL, 0, offsetof(top_opts, lr), "learning rate"},
    {"ema", DM_OPT_BOOL, "false", 0, 0, NULL, 0, offsetof(top_opts, ema), "EMA"},
    {"optimizer", DM_OPT_CHOICE, "adam", 0, 0, optimizers, 0, offsetof(top_opts, optimizer), "opt"},
    {"weights", DM_OPT_REALS, "[0.5, 0.5]", 0, 1, NULL, 0, offsetof(top_opts, weights), "w"},
    DM_OPT_END,
};
static const dm_plugin top_plugin = {"top", "top level", top_params, sizeof(top_opts)};
static const dm_section_desc sections[] = {{"", "top level", &top_plugin, NULL, NULL, NULL}};
static const dm_schema schema = {sections, 1};

static void test_params(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    dm_spec *spec = NULL;
    dm_runrec r;
    const char *yaml = "name: demo\nsteps: 500\nlr: 0.25\nema: true\noptimizer: adamw\n";
    assert_int_equal(dm_spec_load_text(&schema, yaml, "<test>", 0, NULL, &spec, err), DM_OK);
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(make_run(&r, "demo-p-s0", "p", 0, 1, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(ix, &r, spec, NULL, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(ix, &r, spec, NULL, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM params"), 7);
    assert_int_equal(count(ix, "SELECT int_value FROM params WHERE key = 'steps'"), 500);
    assert_int_equal(count(ix, "SELECT real_value = 0.25 FROM params WHERE key = 'lr'"), 1);
    assert_int_equal(count(ix, "SELECT int_value FROM params WHERE key = 'ema'"), 1);
    assert_int_equal(count(ix, "SELECT text_value = 'adamw' AND int_value IS NULL FROM params "
                               "WHERE key = 'optimizer'"), 1);
    assert_int_equal(count(ix, "SELECT text_value = 'demo' FROM params WHERE key = 'name'"), 1);
    assert_int_equal(count(ix, "SELECT text_value LIKE '[%' FROM params WHERE key = 'weights'"), 1);
    dm_runrec_free(&r);
    dm_spec_free(spec);
    dm_index_close(ix);
}

/* Fail the k-th allocation over open, upsert, query and close: success or a clean error. */
static void test_alloc_failures(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE];
    int failures = 0;
    for (long k = 1; k < 100000; ++k) {
        dm_index *ix = NULL;
        dm_runrec r;
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        assert_non_null(out);
        dm_alloc_fail_at(k);
        dm_status st = make_run(&r, "demo-m-s0", "m", 0, 1, 2, err);
        if (!st)
            st = dm_index_open(f->path, 0, &ix, err);
        if (!st)
            st = dm_index_upsert_run(ix, &r, NULL, NULL, err);
        if (!st)
            st = dm_index_query(ix, "SELECT * FROM group_metrics", DM_QUERY_TABLE, out, err);
        if (!st)
            st = dm_index_set_status(ix, "demo-m-s0", "finished", err);
        dm_index_close(ix);
        dm_runrec_free(&r);
        fclose(out);
        free(buf);
        long used = dm_alloc_fail_at(0);
        if (st) {
            assert_int_equal(st, DM_E_NOMEM);
            ++failures;
        } else if (used < k) {
            break;
        }
    }
    assert_true(failures > 10);
}

/* ---- concurrency ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Another process holds the write lock of a fresh (rollback-journal) file for 300 ms. Switching
 * to WAL then fails at once with SQLITE_BUSY, without SQLite's busy handler (the conversion
 * already holds a read transaction when it asks for the write lock): the first opening of a new
 * index by many runs at once. dm_index_open must retry, not fail. */
static void test_busy_retry(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = NULL;
        int ok = sqlite3_open(f->path, &db) == SQLITE_OK &&
                 sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        ssize_t w = write(p[1], ok ? "1" : "0", 1);
        usleep(300000);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        _exit(ok && w == 1 ? 0 : 1);
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    assert_int_equal(c, '1');

    /* What dm_index_open meets: the plain pragma fails at once. */
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    sqlite3_busy_timeout(raw, 10000);
    double t0 = now_s();
    assert_int_equal(sqlite3_exec(raw, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_BUSY);
    assert_true(now_s() - t0 < 1.0);
    sqlite3_close(raw);

    long r0 = dm_index_retries();
    dm_index *ix = NULL;
    t0 = now_s();
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    double dt = now_s() - t0;
    assert_true(dm_index_retries() > r0);
    assert_true(dt < 5.0);
    assert_int_equal(count(ix, "PRAGMA user_version"), DM_INDEX_SCHEMA_VERSION);
    dm_index_close(ix);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 8 processes open a missing index at the same instant (they wait on a pipe until the parent
 * closes it) and each writes its run: all succeed, one schema. Several rounds. */
static void test_concurrent_first_open(void **state)
{
    fixture *f = *state;
    enum { N = 8, ROUNDS = 4 };
    for (int round = 0; round < ROUNDS; ++round) {
        char err[DM_ERR_SIZE] = "";
        int p[2];
        pid_t pids[N];
        unlink(f->path);
        assert_int_equal(pipe(p), 0);
        for (int k = 0; k < N; ++k) {
            pids[k] = fork();
            assert_true(pids[k] >= 0);
            if (pids[k] == 0) {
                char c, id[32];
                close(p[1]);
                while (read(p[0], &c, 1) > 0)
                    ;
                dm_index *ix = NULL;
                dm_runrec r;
                snprintf(id, sizeof id, "demo-c-s%d", k);
                dm_status st = make_run(&r, id, "c", (uint64_t)k, 1, 1, err);
                if (!st)
                    st = dm_index_open(f->path, 0, &ix, err);
                if (!st)
                    st = dm_index_upsert_run(ix, &r, NULL, NULL, err);
                if (st)
                    fprintf(stderr, "child %d: %s\n", k, err);
                dm_index_close(ix);
                dm_runrec_free(&r);
                _exit(st ? 1 : 0);
            }
        }
        close(p[0]);
        close(p[1]); /* go */
        for (int k = 0; k < N; ++k) {
            int status = 0;
            assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        dm_index *ix = NULL;
        assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
        assert_int_equal(count(ix, "SELECT count(*) FROM runs"), N);
        assert_int_equal(count(ix, "SELECT count(*) FROM metric_info"), 33);
        assert_int_equal(count(ix, "PRAGMA user_version"), DM_INDEX_SCHEMA_VERSION);
        dm_index_close(ix);
    }
}

typedef struct replace_probe {
    const char *path;
    int old_write_refused;
    dm_status st;
} replace_probe;

/* dm_index_replace's catch-up: nobody can commit to the old index now; add a run to fresh. */
static dm_status probe_catch_up(void *ctx, dm_index *fresh, char *err)
{
    replace_probe *p = ctx;
    sqlite3 *db = NULL;
    if (sqlite3_open(p->path, &db) == SQLITE_OK)
        p->old_write_refused =
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_BUSY;
    sqlite3_close(db);
    dm_runrec r;
    dm_status st = make_run(&r, "demo-r-s2", "r", 2, 1, 1, err);
    if (!st)
        st = dm_index_upsert_run(fresh, &r, NULL, NULL, err);
    dm_runrec_free(&r);
    return p->st = st;
}

static void test_replace(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", tmp[700], p[800];
    dm_index *old = NULL, *fresh = NULL, *ix = NULL;
    dm_runrec r;
    snprintf(tmp, sizeof tmp, "%s/.index.sqlite.tmp.1", f->dir);

    /* a live writer on the old index */
    assert_int_equal(dm_index_open(f->path, 0, &old, err), DM_OK);
    assert_int_equal(make_run(&r, "demo-r-s0", "r", 0, 1, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(old, &r, NULL, NULL, err), DM_OK);
    dm_runrec_free(&r);

    /* a new index with another run, swapped in */
    assert_int_equal(dm_index_create_tmp(tmp, &fresh, err), DM_OK);
    assert_int_equal(make_run(&r, "demo-r-s1", "r", 1, 1, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(fresh, &r, NULL, NULL, err), DM_OK);
    dm_runrec_free(&r);
    replace_probe probe = {f->path, 0, DM_E_INTERNAL};
    assert_int_equal(dm_index_replace(fresh, f->path, probe_catch_up, &probe, err), DM_OK);
    assert_int_equal(probe.st, DM_OK);
    assert_true(probe.old_write_refused);
    assert_false(file_exists(tmp));
    snprintf(p, sizeof p, "%s-wal", tmp);
    assert_false(file_exists(p));
    snprintf(p, sizeof p, "%s-wal", f->path); /* the old WAL is not paired with the new file */
    assert_false(file_exists(p));

    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs WHERE run_id = 'demo-r-s0'"), 0);
    assert_int_equal(count(ix, "PRAGMA user_version"), DM_INDEX_SCHEMA_VERSION);
    dm_index_close(ix);

    /* the writer of the old file: its next write lands in the new one */
    assert_int_equal(make_run(&r, "demo-r-s3", "r", 3, 1, 1, err), DM_OK);
    assert_int_equal(dm_index_upsert_run(old, &r, NULL, NULL, err), DM_OK);
    dm_runrec_free(&r);
    assert_int_equal(dm_index_set_status(old, "demo-r-s1", "failed", err), DM_OK);
    dm_index_close(old); /* closing the old connection touches nothing of the new file */
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs"), 3);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs WHERE run_id = 'demo-r-s3'"), 1);
    assert_int_equal(count(ix, "SELECT status = 'failed' FROM runs WHERE run_id = 'demo-r-s1'"), 1);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(dm_index_db(ix), "PRAGMA integrity_check", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(dm_index_db(ix), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    dm_index_close(ix);

    /* a file that is not a database is replaced as it is; a failing catch-up leaves it alone */
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fputs("not a database, and long enough to look like one's header......", fp);
    fclose(fp);
    assert_int_equal(dm_index_create_tmp(tmp, &fresh, err), DM_OK);
    assert_int_equal(dm_index_replace(fresh, f->path, NULL, NULL, err), DM_OK);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs"), 0);
    dm_index_close(ix);
    probe.path = "/nonexistent/x";
    assert_int_equal(dm_index_create_tmp(tmp, &fresh, err), DM_OK);
    assert_int_equal(dm_index_replace(fresh, f->path, probe_catch_up, &probe, err), DM_OK);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs"), 1);
    dm_index_close(ix);
    assert_false(file_exists(tmp));
}

typedef struct racer {
    int go;            /* write end: one byte lets the child write */
} racer;

/* The catch-up lets the racing writer go and gives it time to pass its check that the index is
 * still the old file and to block on the old file's write lock, which is held until the swap. */
static dm_status racer_catch_up(void *ctx, dm_index *fresh, char *err)
{
    (void)fresh;
    (void)err;
    racer *r = ctx;
    if (write(r->go, "g", 1) != 1)
        return DM_E_IO;
    usleep(300000);
    return DM_OK;
}

/* A write that starts before the swap and commits after it (into the old file) is redone in
 * the new file. */
static void test_replace_racing_writer(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", tmp[700];
    dm_index *fresh = NULL, *ix = NULL;
    int go[2], ready[2];
    snprintf(tmp, sizeof tmp, "%s/.index.sqlite.tmp.2", f->dir);
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK); /* create it */
    dm_index_close(ix);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dm_index *w = NULL;
        dm_runrec r;
        char c;
        dm_status st = make_run(&r, "demo-w-s0", "w", 0, 1, 1, err);
        if (!st)
            st = dm_index_open(f->path, 0, &w, err);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            st = DM_E_IO;
        if (!st)
            st = dm_index_upsert_run(w, &r, NULL, NULL, err);
        if (st)
            fprintf(stderr, "writer: %s\n", err);
        dm_index_close(w);
        dm_runrec_free(&r);
        _exit(st ? 1 : 0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    racer rc = {go[1]};
    assert_int_equal(dm_index_create_tmp(tmp, &fresh, err), DM_OK);
    assert_int_equal(dm_index_replace(fresh, f->path, racer_catch_up, &rc, err), DM_OK);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(count(ix, "SELECT count(*) FROM runs WHERE run_id = 'demo-w-s0'"), 1);
    dm_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_racing_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
