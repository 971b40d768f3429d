/* test_index_params_view.c — the wide view run_params (io/index_params_view.c): one row per run,
 * one column per key of the schema in schema order, typed by the key's declaration (keys two
 * plug-ins declare with two types coalesced), values equal to params'; made by an upsert with a
 * spec; a view of another key list (an older difflab's, or none) replaced on a writable
 * connection and shadowed by a TEMP view on a read-only one, which leaves the file as it was. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/alloc.h"
#include "io/index.h"
#include "io/runrec.h"
#include "io/spec.h"

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
    snprintf(f->dir, sizeof f->dir, "%s/pview.XXXXXX", base);
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
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- a schema: a fixed top level and a plug-in section "sec" of two plug-ins that share keys,
 * x as int and as real, w as int and as string, y as real in both ---- */

typedef struct top_opts {
    char name[DM_OPT_STR_MAX];
    int64_t seed, steps;
    double lr;
} top_opts;

static const dm_param_desc top_params[] = {
    {"name", DM_OPT_STR, "run", 0, 0, NULL, DM_OPT_NOHASH, offsetof(top_opts, name), "name"},
    {"seed", DM_OPT_INT, "0", 0, 1e9, NULL, DM_OPT_SEED, offsetof(top_opts, seed), "seed"},
    {"steps", DM_OPT_INT, "10", 1, 1e9, NULL, 0, offsetof(top_opts, steps), "steps"},
    {"lr", DM_OPT_REAL, "1e-3", 0, 1, NULL, 0, offsetof(top_opts, lr), "learning rate"},
    DM_OPT_END,
};

typedef struct a_opts {
    int64_t x, w;
    double y;
} a_opts;

static const dm_param_desc a_params[] = {
    {"x", DM_OPT_INT, "3", 0, 100, NULL, 0, offsetof(a_opts, x), "x"},
    {"y", DM_OPT_REAL, "0.5", 0, 1, NULL, 0, offsetof(a_opts, y), "y"},
    {"w", DM_OPT_INT, "7", 0, 100, NULL, 0, offsetof(a_opts, w), "w"},
    DM_OPT_END,
};

typedef struct b_opts {
    double y, x;
    int z;
    char w[DM_OPT_STR_MAX];
} b_opts;

static const char *const zs[] = {"lo", "hi", NULL};
static const dm_param_desc b_params[] = {
    {"y", DM_OPT_REAL, "0.25", 0, 1, NULL, 0, offsetof(b_opts, y), "y"},
    {"z", DM_OPT_CHOICE, "hi", 0, 0, zs, 0, offsetof(b_opts, z), "z"},
    {"x", DM_OPT_REAL, "2.5", 0, 100, NULL, 0, offsetof(b_opts, x), "x"},
    {"w", DM_OPT_STR, "text", 0, 0, NULL, 0, offsetof(b_opts, w), "w"},
    DM_OPT_END,
};

static const dm_plugin top_plugin = {"top", "top level", top_params, sizeof(top_opts)};
static const dm_plugin plug_a = {"a", "plug-in a", a_params, sizeof(a_opts)};
static const dm_plugin plug_b = {"b", "plug-in b", b_params, sizeof(b_opts)};
static const dm_plugin *const registry[] = {&plug_a, &plug_b, NULL};
static const dm_section_desc sections[] = {
    {"", "top level", &top_plugin, NULL, NULL, NULL},
    {"sec", "a plug-in section", NULL, registry, "a", "thing"},
};
static const dm_schema schema = {sections, 2};
/* The same without plug-in b: another key list (an older difflab's) */
static const dm_schema schema_a = {sections, 1};

/* ---- helpers ---- */

static sqlite3 *db_of(dm_index *ix)
{
    return dm_index_db(ix);
}

/* One text (or "NULL") from a one-row query, into buf. */
static const char *one(dm_index *ix, const char *sql, char *buf, size_t n)
{
    sqlite3_stmt *s = NULL;
    snprintf(buf, n, "(error: %s)", sql);
    if (sqlite3_prepare_v2(db_of(ix), sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(buf, n, "%s", t ? (const char *)t : "NULL");
    } else {
        snprintf(buf, n, "(error: %s: %s)", sql, sqlite3_errmsg(db_of(ix)));
    }
    sqlite3_finalize(s);
    return buf;
}

#define ASSERT_ONE(ix, sql, want)                                                                  \
    do {                                                                                           \
        char buf_[4096];                                                                           \
        assert_string_equal(one(ix, sql, buf_, sizeof buf_), want);                                \
    } while (0)

static void add_run(dm_index *ix, const char *id, const char *yaml)
{
    char err[DM_ERR_SIZE] = "";
    dm_spec *spec = NULL;
    dm_runrec r;
    dm_runrec_init(&r);
    assert_int_equal(dm_spec_load_text(&schema, yaml, "<test>", 0, NULL, &spec, err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&r, "run_id", id, err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&r, "name", "demo", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&r, "status", "finished", err), DM_OK);
    r.seed = 4;
    snprintf(r.group_hash, sizeof r.group_hash, "g");
    if (dm_index_upsert_run(ix, &r, spec, NULL, err))
        fail_msg("upsert: %s", err);
    dm_runrec_free(&r);
    dm_spec_free(spec);
}

static const char columns_sql[] = "SELECT group_concat(name, ',') FROM pragma_table_info('run_params')";

/* ---- tests ---- */

/* Columns in schema order, each key once; types by declaration; values equal to params'. */
static void test_columns_and_types(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    add_run(ix, "ra", "name: demo\nseed: 4\nsteps: 500\nsec: {type: a, x: 5, w: 9}\n");
    add_run(ix, "rb", "name: demo\nseed: 4\nlr: 0.25\nsec: {type: b, w: hello, z: lo}\n");
    ASSERT_ONE(ix, columns_sql, "run_id,name,seed,status,config_hash,group_hash,created,steps,lr,"
                                "sec.type,sec.x,sec.y,sec.w,sec.z");
    ASSERT_ONE(ix, "SELECT count(*) FROM run_params", "2");
    ASSERT_ONE(ix, "SELECT typeof(steps) || typeof(lr) || typeof(\"sec.type\") || typeof(\"sec.x\") || "
                   "typeof(\"sec.y\") || typeof(\"sec.w\") || typeof(\"sec.z\") FROM run_params "
                   "WHERE run_id = 'ra'", "integerrealtextrealrealintegernull");
    ASSERT_ONE(ix, "SELECT typeof(\"sec.x\") || typeof(\"sec.w\") || typeof(\"sec.z\") FROM run_params "
                   "WHERE run_id = 'rb'", "realtexttext");
    ASSERT_ONE(ix, "SELECT name || seed || steps || lr || \"sec.x\" || \"sec.w\" FROM run_params WHERE "
                   "run_id = 'ra'", "demo45000.0015.09");
    ASSERT_ONE(ix, "SELECT \"sec.x\" || \"sec.w\" || \"sec.z\" || \"sec.y\" FROM run_params WHERE "
                   "run_id = 'rb'", "2.5hellolo0.25");
    /* every params row of a key with a column is that column's value */
    ASSERT_ONE(ix, "SELECT count(*) FROM params p JOIN run_params v USING (run_id) WHERE "
                   "(p.key = 'steps' AND p.int_value IS NOT v.steps) OR "
                   "(p.key = 'lr' AND p.real_value IS NOT v.lr) OR "
                   "(p.key = 'sec.type' AND p.text_value IS NOT v.\"sec.type\") OR "
                   "(p.key = 'sec.x' AND coalesce(p.real_value, p.int_value) != v.\"sec.x\") OR "
                   "(p.key = 'sec.w' AND coalesce(p.int_value, p.text_value) IS NOT v.\"sec.w\") OR "
                   "(p.key = 'sec.z' AND p.text_value IS NOT v.\"sec.z\")", "0");
    /* a key of params that the schema does not have breaks nothing and has no column */
    assert_int_equal(sqlite3_exec(db_of(ix), "INSERT INTO params (run_id, key, int_value) VALUES "
                                             "('ra', 'gone.key', 1)", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_ONE(ix, "SELECT count(*) FROM run_params", "2");
    /* a read-only connection sees the file's view (current: no TEMP one) */
    dm_index_close(ix);
    assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
    assert_int_equal(dm_index_params_view(ix, &schema, err), DM_OK);
    ASSERT_ONE(ix, "SELECT count(*) FROM temp.sqlite_master", "0");
    ASSERT_ONE(ix, "SELECT steps FROM run_params WHERE run_id = 'ra'", "500");
    dm_index_close(ix);
}

static const char main_mark_sql[] = "SELECT instr(sql, 'difflab run_params 1 ') > 0 AND instr(sql, '0000000000000000') = 0 "
                                    "FROM main.sqlite_master WHERE name = 'run_params'";

/* A view of another key list, or none: read-only, a TEMP view of this list and the file untouched;
 * writable, replaced in the file. The key list follows the schema handed in. */
static void test_other_and_missing_views(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_index *ix = NULL;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    add_run(ix, "ra", "sec: {type: a}\n");
    assert_int_equal(sqlite3_exec(db_of(ix), "DROP VIEW run_params; CREATE VIEW run_params AS "
                                             "/* difflab run_params 1 0000000000000000 */ SELECT run_id FROM runs",
                                  NULL, NULL, NULL), SQLITE_OK);
    dm_index_close(ix);
    for (int missing = 0; missing < 2; ++missing) {
        assert_int_equal(dm_index_open(f->path, 1, &ix, err), DM_OK);
        assert_int_equal(dm_index_params_view(ix, &schema, err), DM_OK);
        ASSERT_ONE(ix, "SELECT \"sec.x\" || \"sec.type\" FROM run_params", "3.0a");
        ASSERT_ONE(ix, "SELECT count(*) FROM main.sqlite_master WHERE name = 'run_params'", missing ? "0" : "1");
        ASSERT_ONE(ix, "SELECT count(*) FROM main.sqlite_master WHERE instr(sql, '0000000000000000') > 0",
                   missing ? "0" : "1");
        /* again on the same connection: the TEMP view is current */
        assert_int_equal(dm_index_params_view(ix, &schema, err), DM_OK);
        dm_index_close(ix);
        if (!missing) { /* now as an index made before the view */
            assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
            assert_int_equal(sqlite3_exec(db_of(ix), "DROP VIEW run_params", NULL, NULL, NULL), SQLITE_OK);
            dm_index_close(ix);
        }
    }
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    assert_int_equal(dm_index_params_view(ix, &schema, err), DM_OK);
    ASSERT_ONE(ix, main_mark_sql, "1");
    ASSERT_ONE(ix, "SELECT \"sec.x\" FROM main.run_params", "3.0");
    /* another key list (schema_a: no section sec): replaced; an upsert puts its spec's back */
    assert_int_equal(dm_index_params_view(ix, &schema_a, err), DM_OK);
    ASSERT_ONE(ix, columns_sql, "run_id,name,seed,status,config_hash,group_hash,created,steps,lr");
    add_run(ix, "rb", "sec: {type: b}\n");
    ASSERT_ONE(ix, columns_sql, "run_id,name,seed,status,config_hash,group_hash,created,steps,lr,"
                                "sec.type,sec.x,sec.y,sec.w,sec.z");
    dm_index_close(ix);
}

/* Failed allocations while making the view: a clean DM_E_NOMEM or success, nothing leaked. */
static void test_alloc_failures(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE];
    dm_index *ix = NULL;
    assert_int_equal(dm_index_open(f->path, 0, &ix, err), DM_OK);
    int failures = 0;
    for (long k = 1; k < 1000; ++k) {
        assert_int_equal(sqlite3_exec(db_of(ix), "DROP VIEW IF EXISTS run_params", NULL, NULL, NULL), SQLITE_OK);
        dm_alloc_fail_at(k);
        dm_status st = dm_index_params_view(ix, &schema, err);
        long used = dm_alloc_fail_at(0);
        if (st) {
            assert_int_equal(st, DM_E_NOMEM);
            ++failures;
        } else if (used < k) {
            break;
        }
    }
    assert_true(failures >= 1);
    dm_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_columns_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_and_missing_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
