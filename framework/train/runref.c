#include "train/runref.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/path.h"
#include "io/runstore.h"
#include "train/schema.h"

dm_status dm_run_id(const dm_spec *spec, char *id, size_t n, char hash[65], char *err)
{
    dm_status st = dm_spec_config_hash(spec, hash, err);
    if (st)
        return st;
    const dm_root_opts *root = dm_spec_opts(spec, "");
    snprintf(id, n, "%s-%.10s-s%lld", root->name, hash, (long long)root->seed);
    return DM_OK;
}

dm_status dm_run_id_of_file(const char *path, int64_t seed, char *id, size_t nid, char *err)
{
    char seedo[64], hash[65];
    snprintf(seedo, sizeof seedo, "seed=%lld", (long long)seed);
    const char *over[1] = { seedo };
    dm_spec *spec = NULL;
    dm_status st = dm_spec_load_file(&dm_spec_schema, path, 1, over, &spec, err);
    if (!st)
        st = dm_run_id(spec, id, nid, hash, err);
    dm_spec_free(spec);
    return st;
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

dm_status dm_resolve_named_run(const char *results, const char *name, int64_t seed, const char *key, char *id,
                               size_t nid, char *dir, size_t ndir, char *err)
{
    if (!is_file(name)) {
        dm_status st = dm_runstore_find(results, name, dir, ndir, id, nid, err);
        if (st)
            dm_err_prefix(err, "%s: '%s' is neither a spec file nor a run of the index", key, name);
        return st;
    }
    dm_status st = dm_run_id_of_file(name, seed, id, nid, err);
    if (st) {
        dm_err_prefix(err, "%s: the spec '%s'", key, name);
        return st;
    }
    if ((st = dm_path_fmt(dir, ndir, err, "%s/runs/%s", results, id)))
        return st;
    char h5[DM_PATH_SIZE];
    if ((st = dm_path_fmt(h5, sizeof h5, err, "%s/run.h5", dir)))
        return st;
    if (!is_file(h5))
        return dm_err(err, DM_E_NOTFOUND,
                      "%s: the run %s (spec %s, seed %lld) does not exist in %s: run `difflab run %s seed=%lld` first",
                      key, id, name, (long long)seed, results, name, (long long)seed);
    return DM_OK;
}

dm_status dm_runref_finished_spec(const char *dir, const char *id, const char *key, dm_spec **spec, char *err)
{
    char h5[DM_PATH_SIZE];
    dm_runrec rec;
    dm_runrec_init(&rec);
    *spec = NULL;
    dm_status st = dm_runstore_read(dir, h5, &rec, err);
    const char *status = st ? NULL : dm_runrec_attr(&rec, "status");
    if (st)
        dm_err_prefix(err, "%s: run %s", key, id);
    else if (!status || strcmp(status, "finished") != 0)
        st = dm_err(err, DM_E_STATE, "%s: run %s is %s, not finished: finish it first (difflab run)", key, id,
                    status ? status : "of unknown status");
    else if ((st = dm_runstore_spec(h5, &rec, &dm_spec_schema, 0, NULL, spec, err)))
        dm_err_prefix(err, "%s: run %s", key, id);
    dm_runrec_free(&rec);
    return st;
}

dm_status dm_runref_load(const char *results, const char *id, dm_spec **spec, dm_trainer *tr, int *tr_ready,
                         char *err)
{
    char dir[DM_PATH_SIZE], h5[DM_PATH_SIZE], ck[DM_PATH_SIZE], rid[256];
    dm_runrec rec;
    dm_runrec_init(&rec);
    dm_ckpt c = { 0 };
    dm_status st;
    if ((st = dm_runstore_find(results, id, dir, sizeof dir, rid, sizeof rid, err)) ||
        (st = dm_runstore_read(dir, h5, &rec, err)) ||
        (st = dm_runstore_spec(h5, &rec, &dm_spec_schema, 0, NULL, spec, err)) ||
        (st = dm_trainer_init(tr, *spec, NULL, err)))
        goto out;
    *tr_ready = 1;
    if (dm_trainer_trains(tr) &&
        ((st = dm_path_fmt(ck, sizeof ck, err, "%s/checkpoint.h5", dir)) || (st = dm_runstore_read_ckpt(ck, &c, err)) ||
         (st = dm_trainer_restore(tr, &c, err))))
        goto out;
out:
    dm_ckpt_free(&c);
    dm_runrec_free(&rec);
    return st;
}
