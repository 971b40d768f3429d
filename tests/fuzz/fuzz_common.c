/* fuzz_common.c — the fuzz targets' temporary folder and the spec invariants (fuzz.h). */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH | FTW_PHYS */
#include "fuzz.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "train/runref.h"
#include "train/schema.h"
#include "train/trainer.h"

static char tmp_dir[PATH_MAX];

_Noreturn void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void fuzz_note(const char *fmt, ...)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("DIFFLAB_FUZZ_VERBOSE") != NULL;
    if (!verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tmpdir(void)
{
    if (tmp_dir[0])
        nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (!tmp_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/difflab-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_dir))
            fuzz_fail("cannot make a temporary folder %s", tmp_dir);
        atexit(rm_tmpdir);
    }
    return tmp_dir;
}

void fuzz_tmp_path(char *path, const char *name)
{
    const char *dir = fuzz_tmpdir();
    if (strlen(dir) + 1 + strlen(name) >= PATH_MAX)
        fuzz_fail("the path %s/%s is too long", dir, name);
    strcpy(path, dir);
    strcat(path, "/");
    strcat(path, name);
}

void fuzz_write_tmp(const char *name, const void *data, size_t size, char *path)
{
    fuzz_tmp_path(path, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        fuzz_fail("cannot write %s", path);
}

/* The check result, run id and hashes of one loaded spec. */
typedef struct spec_facts {
    dm_status check;
    char check_err[DM_ERR_SIZE];
    char id[300], hash[65], full_hash[65];
    char *canonical;
} spec_facts;

static dm_status count_kv(void *ctx, const dm_spec_kv *kv, char *err)
{
    (void)err;
    if (!kv->key || !kv->text)
        fuzz_fail("dm_spec_foreach: a key without a name or text");
    ++*(size_t *)ctx;
    return DM_OK;
}

static void facts_of(const dm_spec *spec, spec_facts *f)
{
    char err[DM_ERR_SIZE];
    size_t n = 0;
    memset(f, 0, sizeof *f);
    f->check = dm_trainer_check(spec, f->check_err);
    if (!f->check && dm_run_id(spec, f->id, sizeof f->id, f->hash, err))
        fuzz_fail("dm_run_id of a checked spec: %s", err);
    if (dm_spec_canonical(spec, 0, &f->canonical, err))
        fuzz_fail("dm_spec_canonical of a loaded spec: %s", err);
    if (dm_spec_config_hash(spec, f->full_hash, err))
        fuzz_fail("dm_spec_config_hash of a loaded spec: %s", err);
    if (dm_spec_foreach(spec, count_kv, &n, err) || n == 0)
        fuzz_fail("dm_spec_foreach of a loaded spec: %zu keys, %s", n, err);
}

void fuzz_check_spec(const dm_spec *spec)
{
    char err[DM_ERR_SIZE];
    spec_facts a, b;
    dm_spec *again = NULL;
    facts_of(spec, &a);
    if (dm_spec_load_text(&dm_spec_schema, a.canonical, "<canonical>", 0, NULL, &again, err))
        fuzz_fail("the canonical text does not load again: %s\n--- canonical text:\n%s", err, a.canonical);
    facts_of(again, &b);
    dm_spec_free(again);
    if (strcmp(a.canonical, b.canonical) != 0)
        fuzz_fail("the canonical text changes when loaded again\n--- first:\n%s\n--- again:\n%s", a.canonical,
                  b.canonical);
    if (strcmp(a.full_hash, b.full_hash) != 0)
        fuzz_fail("the config hash changes when loaded again: %s, then %s", a.full_hash, b.full_hash);
    if ((a.check == DM_OK) != (b.check == DM_OK) || strcmp(a.id, b.id) != 0)
        fuzz_fail("the check or run id changes when loaded again: '%s' (%s), then '%s' (%s)", a.id,
                  a.check ? a.check_err : "ok", b.id, b.check ? b.check_err : "ok");
    dm_free(a.canonical);
    dm_free(b.canonical);
}
