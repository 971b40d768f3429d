/* fuzz.h — what the fuzz targets share (tests/fuzz/, docs/fuzz.md).
 *
 * Each fuzz_<input>.c defines LLVMFuzzerTestOneInput and is linked either with libFuzzer (the
 * clang build, -DDIFFLAB_FUZZ=ON, scripts/fuzz.sh) or with replay_main.c (every build: ctest runs
 * the committed corpus tests/fuzz/corpus/<input>/ through it). A target fails by abort() with a
 * message on stderr: a sanitizer report, a leak, or a broken invariant (fuzz_fail). */
#ifndef DM_TESTS_FUZZ_H
#define DM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "io/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private folder for the targets' files (mkdtemp under $TMPDIR, else /tmp), made on the first
 * call and removed with everything in it at exit. */
const char *fuzz_tmpdir(void);
/* fuzz_tmpdir()/name into path (PATH_MAX bytes). */
void fuzz_tmp_path(char *path, const char *name);
/* Write size bytes to fuzz_tmpdir()/name, replacing it; its path into path (PATH_MAX bytes). */
void fuzz_write_tmp(const char *name, const void *data, size_t size, char *path);

/* With DIFFLAB_FUZZ_VERBOSE set, what became of an input (for triage), on stderr; else nothing. */
void fuzz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A broken invariant: the message on stderr, then abort() (a crash to libFuzzer). */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What `difflab run` does with a loaded spec before it writes anything (dm_trainer_check, the run
 * id), and the canonical text's promise (io/spec.h): it loads again into the same canonical text,
 * config hash, check result and run id. Fails (fuzz_fail) when it does not. */
void fuzz_check_spec(const dm_spec *spec);

#endif
