/* runlog_layout.c — the parts of run.h5's layout that writer and reader share (runlog_internal.h):
 * one definition of each row type and attribute table, so a field added here is written and read
 * back alike. */
#include "io/runlog_internal.h"

#include <string.h>

#include "io/h5util.h"

hid_t dm_runlog_metric_type(int file)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, file ? 24 : sizeof(dm_runlog_metric_row));
    if (t < 0)
        return t;
    if (H5Tinsert(t, "step", file ? 0 : offsetof(dm_runlog_metric_row, step),
                  file ? H5T_STD_I64LE : H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "wall_s", file ? 8 : offsetof(dm_runlog_metric_row, wall_s),
                  file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE) < 0 ||
        H5Tinsert(t, "value", file ? 16 : offsetof(dm_runlog_metric_row, value),
                  file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

hid_t dm_runlog_eval_type(void)
{
    hid_t s = dm_h5_str_type();
    if (s < 0)
        return s;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(dm_runlog_eval_row));
    if (t >= 0 &&
        (H5Tinsert(t, "sampler", offsetof(dm_runlog_eval_row, sampler), s) < 0 ||
         H5Tinsert(t, "nfe", offsetof(dm_runlog_eval_row, nfe), H5T_NATIVE_INT64) < 0 ||
         H5Tinsert(t, "settings", offsetof(dm_runlog_eval_row, settings), s) < 0 ||
         H5Tinsert(t, "n_samples", offsetof(dm_runlog_eval_row, n_samples), H5T_NATIVE_INT64) < 0 ||
         H5Tinsert(t, "value", offsetof(dm_runlog_eval_row, value), H5T_NATIVE_DOUBLE) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    H5Tclose(s);
    return t;
}

/* DM_RUNLOG_HASH members are read as 64 characters and a terminator. */
_Static_assert(sizeof ((dm_runrec *)0)->config_hash == 65 &&
                   sizeof ((dm_runrec *)0)->group_hash == 65 &&
                   sizeof ((dm_runrec *)0)->data_sha256 == 65,
               "hash fields are char[65]");

static const dm_runlog_field config_fields[] = {
    {"yaml", DM_RUNLOG_STR, offsetof(dm_runrec, config_yaml)},
    {"config_hash", DM_RUNLOG_HASH, offsetof(dm_runrec, config_hash)},
    {"group_hash", DM_RUNLOG_HASH, offsetof(dm_runrec, group_hash)},
};

static const dm_runlog_field data_fields[] = {
    {"name", DM_RUNLOG_STR, offsetof(dm_runrec, data_name)},
    {"n_train", DM_RUNLOG_I64, offsetof(dm_runrec, data_n_train)},
    {"n_test", DM_RUNLOG_I64, offsetof(dm_runrec, data_n_test)},
    {"dim", DM_RUNLOG_I64, offsetof(dm_runrec, data_dim)},
    {"channels", DM_RUNLOG_I64, offsetof(dm_runrec, data_c)},
    {"height", DM_RUNLOG_I64, offsetof(dm_runrec, data_h)},
    {"width", DM_RUNLOG_I64, offsetof(dm_runrec, data_w)},
    {"sha256", DM_RUNLOG_HASH, offsetof(dm_runrec, data_sha256)},
    {"std", DM_RUNLOG_F64, offsetof(dm_runrec, data_std)},
};

const dm_runlog_group dm_runlog_config_group = {
    "config", 1, config_fields, sizeof config_fields / sizeof config_fields[0]};
const dm_runlog_group dm_runlog_data_group = {
    "data", 0, data_fields, sizeof data_fields / sizeof data_fields[0]};

/* The root attributes that hold numbers, by meaning (pandas and h5py then read numbers): who
 * sets each is named beside it. Integers are int64, reals float64. */
static const struct {
    const char *name;
    dm_runlog_kind kind;
} root_numbers[] = {
    {"n_params", DM_RUNLOG_I64},            /* train/run.c: the network's parameter count */
    {"wall_s", DM_RUNLOG_F64},              /* train/run.c: seconds of the run's lives so far */
    {"blas_threads", DM_RUNLOG_I64},        /* train/provenance.c */
    {"git_dirty", DM_RUNLOG_I64},           /* train/provenance.c: 1 with uncommitted changes */
    {"slurm_job_id", DM_RUNLOG_I64},        /* train/provenance.c, under Slurm */
    {"slurm_array_job_id", DM_RUNLOG_I64},
    {"slurm_array_task_id", DM_RUNLOG_I64},
};

dm_runlog_kind dm_runlog_root_kind(const char *name)
{
    for (size_t i = 0; i < sizeof root_numbers / sizeof root_numbers[0]; ++i)
        if (strcmp(root_numbers[i].name, name) == 0)
            return root_numbers[i].kind;
    return DM_RUNLOG_STR;
}
