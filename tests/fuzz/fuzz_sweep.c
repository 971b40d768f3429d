/* fuzz_sweep.c — a sweep file parsed and expanded into its runs as `difflab sweep SWEEP.yaml`
 * does before it writes anything (dm_sweep_parse, dm_sweep_expand_lines; train/sweep_internal.h,
 * reached into on purpose: the parts that take the user's text, without the manifest and index
 * writes), plain and with --quick. Every line's resolved spec must load again into its run id.
 *
 * The input is written to <tmp>/sweep.yaml next to copies of the specs the committed sweeps are
 * based on (copy_bases), so `base: edm.yaml` names configs/methods/edm.yaml. A sweep of more than MAX_FUZZ_LINES runs (and at most
 * the expansion's own limit) is only parsed: each run costs a spec load. Corpus: the experiments'
 * and the CLI tests' sweeps with their base renamed (tests/fuzz/corpus/sweep/). */
#define _GNU_SOURCE 1 /* memmem */
#include "fuzz.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"

#include "train/runref.h"
#include "train/schema.h"
#include "train/sweep_internal.h"

#define MAX_FUZZ_LINES 64
#define EXPAND_LIMIT 100000 /* sweep_expand.c's MAX_LINES: above it the expansion must refuse */

/* The bases a sweep may name, copied next to it: every configs/methods/NAME.yaml as NAME.yaml,
 * the CLI tests' tiny.yaml, and the base.yaml of experiments/denoising_is_not_unique. */
static void copy_base(const char *from, const char *name)
{
    char *text = NULL, err[DM_ERR_SIZE], path[PATH_MAX];
    size_t len = 0;
    if (dm_read_file(from, 1u << 20, &text, &len, err))
        fuzz_fail("cannot read the base spec %s: %s", from, err);
    fuzz_write_tmp(name, text, len, path);
    dm_free(text);
}

static void copy_bases(void)
{
    const char *methods = DIFFLAB_SOURCE_DIR "/configs/methods";
    char from[PATH_MAX];
    DIR *d = opendir(methods);
    if (!d)
        fuzz_fail("cannot list %s", methods);
    for (struct dirent *e; (e = readdir(d));) {
        const size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) {
            snprintf(from, sizeof from, "%s/%s", methods, e->d_name);
            copy_base(from, e->d_name);
        }
    }
    closedir(d);
    copy_base(DIFFLAB_SOURCE_DIR "/tests/cli/data/tiny.yaml", "tiny.yaml");
    copy_base(DIFFLAB_SOURCE_DIR "/experiments/denoising_is_not_unique/base.yaml", "base.yaml");
}

/* The number of runs of s, saturated at SIZE_MAX. */
static size_t n_runs(const dm_sweep_def *s)
{
    size_t total = s->n_seeds;
    for (size_t i = 0; i < s->n_grid + s->n_zip; i++) {
        const size_t len = i < s->n_grid ? s->grid[i].n : s->zip[i - s->n_grid].len;
        total = len && total > SIZE_MAX / len ? SIZE_MAX : total * len;
    }
    return total;
}

static void check_lines(const dm_sweep_def *s, const dm_sweep_line *lines, size_t nl)
{
    char err[DM_ERR_SIZE], id[300], hash[65];
    if (nl > n_runs(s))
        fuzz_fail("sweep: %zu lines from %zu combinations", nl, n_runs(s));
    for (size_t i = 0; i < nl; i++) {
        dm_spec *spec = NULL;
        if (!lines[i].spec || !lines[i].axes_json)
            fuzz_fail("sweep: line %zu has no spec or axes", i);
        if (dm_spec_load_text(&dm_spec_schema, lines[i].spec, "<line>", 0, NULL, &spec, err) ||
            dm_run_id(spec, id, sizeof id, hash, err))
            fuzz_fail("sweep: the spec of line %zu does not load again: %s\n%s", i, err, lines[i].spec);
        if (strcmp(id, lines[i].run_id) != 0)
            fuzz_fail("sweep: line %zu is run %s, its spec loads again as %s", i, lines[i].run_id, id);
        dm_spec_free(spec);
    }
}

static void one(const char *path, int quick)
{
    char err[DM_ERR_SIZE] = "";
    dm_sweep_def s = { 0 };
    dm_sweep_line *lines = NULL;
    size_t nl = 0;
    dm_status st = dm_sweep_parse(path, &s, quick, err);
    if (!st) {
        const size_t n = n_runs(&s);
        if (n > MAX_FUZZ_LINES && n <= EXPAND_LIMIT) {
            fuzz_note("sweep%s: parsed, %zu runs: not expanded", quick ? " --quick" : "", n);
            dm_sweep_def_free(&s);
            return;
        }
        st = dm_sweep_expand_lines(&s, &lines, &nl, err);
        if (n > EXPAND_LIMIT && st != DM_E_INPUT)
            fuzz_fail("sweep: %zu runs (over the limit) expanded with status %d into %zu lines: %s", n, (int)st, nl,
                      st ? err : "");
        if (!st)
            check_lines(&s, lines, nl);
    }
    fuzz_note("sweep%s: %s (%zu lines)", quick ? " --quick" : "", st ? err : "expanded", nl);
    if (st && !err[0])
        fuzz_fail("sweep: refused (status %d) without a message", (int)st);
    dm_sweep_lines_free(lines, nl);
    dm_sweep_def_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char path[PATH_MAX];
    if (!ready) {
        copy_bases();
        ready = 1;
    }
    fuzz_write_tmp("sweep.yaml", data, size, path);
    one(path, 0);
    if (memmem(data, size, "quick", 5))
        one(path, 1);
    return 0;
}
