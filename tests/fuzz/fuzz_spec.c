/* fuzz_spec.c — a spec file's bytes loaded and validated as `difflab run SPEC.yaml` does: the YAML
 * tree, every section and plug-in checked against the schema (dm_spec_load_mem, the loader of
 * dm_spec_load_file), then dm_trainer_check and the run id; a spec that loads must round-trip
 * through its canonical text (fuzz_check_spec). Corpus: configs/, experiments/ and the specs of
 * the CLI tests (tests/fuzz/corpus/spec/). */
#include "fuzz.h"

#include <string.h>

#include "train/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DM_ERR_SIZE] = "";
    dm_spec *spec = NULL;
    dm_status st = dm_spec_load_mem(&dm_spec_schema, (const char *)data, size, "fuzz.yaml", 0, NULL, &spec, err);
    fuzz_note("spec: %s", st ? err : "loaded");
    if (st == DM_OK)
        fuzz_check_spec(spec);
    else if (st != DM_E_INPUT || strncmp(err, "fuzz.yaml", 9) != 0)   /* io/spec.h: errors name the place */
        fuzz_fail("a spec refused with status %d and a message that does not name the file: '%s'", (int)st, err);
    dm_spec_free(spec);
    return 0;
}
