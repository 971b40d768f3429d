/* sweep_run.c — `difflab sweep run NAME LINE`: one manifest line run (make's and Slurm's unit of
 * work), and its done marker. */
#include "train/sweep.h"
#include "train/sweep_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/path.h"
#include "io/atomic.h"
#include "train/run.h"

static dm_status mark_done(const char *results, const char *name, long line, char *err)
{
    char p[DM_PATH_SIZE];
    dm_status st = dm_path_fmt(p, sizeof p, err, "%s/sweeps/%s/done/%ld", results, name, line);
    return st ? st : dm_write_file_atomic(p, "", 0, err);
}

dm_status dm_sweep_run_line(const char *results, const char *name, long line, int n_over, const char *const *over,
                            FILE *out, char *err)
{
    char id[256], status[32], msg[DM_ERR_SIZE], spec[DM_PATH_SIZE];
    dm_status st = dm_sweep_manifest_line(results, name, line, id, sizeof id, NULL, err);
    if (st)
        return st;
    for (int i = 0; i < n_over; i++)
        if (strncmp(over[i], "run.", 4) != 0)
            return dm_err(err, DM_E_INPUT, "override '%s': a sweep line takes only run.* keys (the rest is frozen in "
                          "its manifest)", over[i]);
    dm_sweep_run_status(NULL, results, id, status, sizeof status, msg, sizeof msg, NULL);
    if (strcmp(status, "finished") == 0 || strcmp(status, "diverged") == 0) {
        fprintf(out, "sweep %s line %ld: run %s is %s\n", name, line, id, status);
        return mark_done(results, name, line, err);
    }
    const char *retry = getenv("RETRY");
    if (strcmp(status, "failed") == 0 && !(retry && strcmp(retry, "1") == 0))
        return dm_err(err, DM_E_STATE, "sweep %s line %ld: run %s failed before (%s); RETRY=1 retries it", name, line, id,
                      msg[0] ? msg : "no message");
    if ((st = dm_path_fmt(spec, sizeof spec, err, "%s/sweeps/%s/specs/%ld.yaml", results, name, line)))
        return st;
    dm_run_cfg rc = { .results = results, .new_repeat = 0, .out = out };
    st = dm_run_spec_file(&rc, spec, n_over, over, err);
    if (st == DM_E_NUMERIC) {   /* diverged: recorded, and done as far as the sweep goes */
        fprintf(out, "sweep %s line %ld: run %s diverged: %s\n", name, line, id, err);
        st = DM_OK;
    }
    return st ? st : mark_done(results, name, line, err);
}
