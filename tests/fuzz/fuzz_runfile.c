/* fuzz_runfile.c — a run file (run.h5) of unknown bytes read as `difflab reindex` reads every run
 * (io/reindex.c): dm_runlog_read (which the CLI runs first in a vetting child with a time limit,
 * io/runfile_vet.c; here it runs in-process, so that the fuzzer sees what the child would
 * survive), the run id and spec of the record, the spec loaded and checked
 * (fuzz_check_spec), the record written into an index and deleted again (dm_runstore_status,
 * which `run` and `sweep status` use, is this same read). After every read no HDF5 object may be
 * left open (a failed read that leaks ids keeps the file open and makes HDF5 loop at exit).
 *
 * The input is written to <tmp>/run.h5; the index is <tmp>/index.sqlite, made once. HDF5's own
 * error printing is off. Corpus: run files of tiny runs (tests/fuzz/corpus/runfile/; how they were
 * made: tests/fuzz/make_seeds.sh). Hangs, crashes and leaks inside the HDF5 library itself go to
 * tests/fuzz/hdf5_findings/ (README.md there), not to the corpus, which is replayed in-process;
 * scripts/fuzz.sh runs this target with -fork=1 so that they do not stop a long run, and with
 * tests/fuzz/lsan_hdf5.supp, which ignores the objects HDF5's metadata cache loses on a corrupt
 * object header (leak:H5C_protect). */
#include "fuzz.h"

#include <hdf5.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/index.h"
#include "io/runlog.h"
#include "io/runstore.h"
#include "train/schema.h"

static dm_index *ix;

static void close_index(void)
{
    dm_index_close(ix);
}

static void no_open_objects(const char *after)
{
    const ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0)
        fuzz_fail("%zd HDF5 objects are open after %s", n, after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DM_ERR_SIZE] = "", path[PATH_MAX];
    if (!ix) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        fuzz_tmp_path(path, "index.sqlite");
        if (dm_index_open(path, 0, &ix, err))
            fuzz_fail("cannot make the index %s: %s", path, err);
        atexit(close_index);
    }
    fuzz_write_tmp("run.h5", data, size, path);
    dm_runrec rec;
    dm_status st = dm_runlog_read(path, &rec, err);
    no_open_objects("dm_runlog_read");
    fuzz_note("runfile: %s", st ? err : "read");
    if (st) {
        if (strstr(err, path) == NULL)
            fuzz_fail("a run file refused (status %d) with a message that does not name it: '%s'", (int)st, err);
        return 0;
    }
    const char *run_id = dm_runrec_attr(&rec, "run_id");
    dm_spec *spec = NULL;
    if (run_id && *run_id && rec.config_yaml &&
        dm_runstore_spec(path, &rec, &dm_spec_schema, 0, NULL, &spec, err) == DM_OK) {
        fuzz_check_spec(spec);
        const dm_status up = dm_index_upsert_run(ix, &rec, spec, fuzz_tmpdir(), err);
        fuzz_note("runfile: indexed: %s", up ? err : "yes");
        if (up == DM_OK && dm_index_delete_run(ix, run_id, err) != DM_OK)
            fuzz_fail("a run indexed cannot be deleted: %s", err);
    }
    const char *status = dm_runrec_attr(&rec, "status");
    fuzz_note("runfile: status %s", status ? status : "(none)");
    dm_spec_free(spec);
    dm_runrec_free(&rec);
    return 0;
}
