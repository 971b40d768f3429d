/* fuzz_table.c — a table definition file (`difflab table --def FILE`) loaded as the command loads
 * it (dm_table_def_load: the YAML mapping, every option set and checked by dm_table_def_set), then
 * built (dm_table_build: checked against the index, values read, grouped, tested) and written in
 * its format, as the command does.
 *
 * The input is written to <tmp>/table.yaml. The index, <tmp>/index.sqlite, is made once and holds
 * the runs of the runfile corpus's seeds (a tiny MLP run, a diverged run, a class-conditional run
 * sampled twice, an analytic run with ode_err, model_err and the posterior), so a definition that
 * names their metrics and keys gets a real table. Corpus: the experiments' table definitions
 * (tests/fuzz/corpus/table/). */
#include "fuzz.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/index.h"
#include "io/runlog.h"
#include "report/table.h"
#include "train/schema.h"

static dm_index *ix;
static FILE *devnull;

static void close_all(void)
{
    dm_index_close(ix);
    if (devnull)
        fclose(devnull);
}

static void index_run(const char *name)
{
    char path[PATH_MAX], err[DM_ERR_SIZE];
    dm_runrec rec;
    dm_spec *spec = NULL;
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/runfile/%s", DIFFLAB_SOURCE_DIR, name);
    if (dm_runlog_read(path, &rec, err) ||
        dm_spec_load_text(&dm_spec_schema, rec.config_yaml ? rec.config_yaml : "", path, 0, NULL, &spec, err) ||
        dm_index_upsert_run(ix, &rec, spec, path, err))
        fuzz_fail("cannot index %s: %s", path, err);
    dm_spec_free(spec);
    dm_runrec_free(&rec);
}

static void setup(void)
{
    char err[DM_ERR_SIZE], path[PATH_MAX];
    fuzz_tmp_path(path, "index.sqlite");
    if (dm_index_open(path, 0, &ix, err))
        fuzz_fail("cannot make the index %s: %s", path, err);
    atexit(close_all);
    if (!(devnull = fopen("/dev/null", "w")))
        fuzz_fail("cannot open /dev/null");
    const char *const runs[] = { "seed_tiny.h5", "seed_diverged.h5", "seed_cfg.h5", "seed_analytic.h5" };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++)
        index_run(runs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DM_ERR_SIZE] = "", path[PATH_MAX];
    if (!ix)
        setup();
    fuzz_write_tmp("table.yaml", data, size, path);
    dm_table_def d;
    dm_table_def_init(&d);
    dm_status st = dm_table_def_load(&d, path, err);
    fuzz_note("table: %s", st ? err : "loaded");
    if (st && (st != DM_E_INPUT || strncmp(err, path, strlen(path)) != 0))
        fuzz_fail("a definition refused with status %d and a message that does not name the file: '%s'", (int)st, err);
    if (!st) {
        dm_table *t = NULL;
        err[0] = '\0';
        st = dm_table_build(ix, &d, &t, err);
        fuzz_note("table build: %s", st ? err : "built");
        if (st && !err[0])
            fuzz_fail("a table refused (status %d) without a message", (int)st);
        if (!st && (!t || dm_table_write(t, d.fmt, devnull, err)))
            fuzz_fail("a table built cannot be written: %s", t ? err : "no table");
        dm_table_free(t);
    }
    dm_table_def_free(&d);
    return 0;
}
