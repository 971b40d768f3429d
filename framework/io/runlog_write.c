/* runlog_write.c — dm_runlog_write: run.h5 written whole from a dm_runrec, in the layout of
 * runlog.h, into a temporary file renamed over the old one (dm_h5_write_file). Numbers are
 * written as numbers (the root attributes by runlog_layout.c's table), strings as vlen UTF-8.
 *
 * Objects and attributes are created in a fixed order (root attributes, /config, /seeds, /data,
 * /metrics, /samples, /eval), since creation order is recorded in the file and so in its bytes. */
#include "io/runlog.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/h5util.h"
#include "io/runlog_internal.h"

/* Every name that becomes an HDF5 link, checked before anything is written. */
static dm_status check_names(const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < r->n_seeds && !st; ++i)
        st = dm_h5_check_name("seed stream", r->seeds[i].stream, err);
    for (size_t i = 0; i < r->n_series && !st; ++i)
        st = dm_h5_check_name("metric", r->series[i].name, err);
    for (size_t i = 0; i < r->n_samples && !st; ++i)
        st = dm_h5_check_name("sample set", r->samples[i].name, err);
    for (size_t i = 0; i < r->n_evals && !st; ++i)
        st = dm_h5_check_name("eval metric", r->evals[i].metric, err);
    return st;
}

static dm_status create_group(hid_t file, const char *name, hid_t *g, char *err)
{
    if ((*g = dm_h5_group_create(file, name)) < 0)
        return dm_h5_err(err, "creating /%s failed", name);
    return DM_OK;
}

/* The group's attributes from the record's fields, in table order. */
static dm_status write_fields(hid_t g, const dm_runlog_group *grp, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < grp->n_fields && !st; ++i) {
        const dm_runlog_field *f = &grp->fields[i];
        const char *p = (const char *)r + f->offset;
        switch (f->kind) {
        case DM_RUNLOG_STR:
            if (*(char *const *)p)
                st = dm_h5_write_str_attr(g, f->name, *(char *const *)p, err);
            break;
        case DM_RUNLOG_HASH:
            st = dm_h5_write_str_attr(g, f->name, p, err);
            break;
        case DM_RUNLOG_I64:
            st = dm_h5_write_i64_attr(g, f->name, *(const int64_t *)p, err);
            break;
        case DM_RUNLOG_F64:
            st = dm_h5_write_f64_attr(g, f->name, *(const double *)p, err);
            break;
        }
    }
    return st;
}

static dm_status write_field_group(hid_t file, const dm_runlog_group *grp, const dm_runrec *r,
                                   char *err)
{
    hid_t g;
    dm_status st = create_group(file, grp->name, &g, err);
    if (st)
        return st;
    st = write_fields(g, grp, r, err);
    H5Gclose(g);
    return st;
}

static dm_status write_seeds(hid_t file, const dm_runrec *r, char *err)
{
    hid_t g;
    dm_status st = create_group(file, "seeds", &g, err);
    if (st)
        return st;
    st = dm_h5_write_u64_attr(g, "master", r->seed, err);
    for (size_t i = 0; i < r->n_seeds && !st; ++i)
        st = dm_h5_write_dataset(g, r->seeds[i].stream, H5P_DEFAULT, H5T_STD_U64LE,
                                 H5T_NATIVE_UINT64, 0, NULL, &r->seeds[i].seed, NULL, err);
    H5Gclose(g);
    return st;
}

static dm_status write_metrics(hid_t file, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, ft = dm_runlog_metric_type(1), mt = dm_runlog_metric_type(0);
    dm_runlog_metric_row *rows = NULL;
    if (ft < 0 || mt < 0) {
        st = dm_h5_err(err, "creating /metrics failed");
        goto out;
    }
    if ((st = create_group(file, "metrics", &g, err)))
        goto out;
    for (size_t i = 0; i < r->n_series; ++i) {
        const dm_series *s = &r->series[i];
        rows = s->n ? dm_malloc(s->n * sizeof *rows) : NULL;
        if (s->n && !rows) {
            st = dm_err(err, DM_E_NOMEM, "out of memory writing metric '%s'", s->name);
            goto out;
        }
        for (size_t k = 0; k < s->n; ++k)
            rows[k] = (dm_runlog_metric_row){s->step[k], s->wall_s[k], s->value[k]};
        hsize_t n = s->n;
        st = dm_h5_write_dataset(g, s->name, H5P_DEFAULT, ft, mt, 1, &n, rows, NULL, err);
        dm_free(rows);
        rows = NULL;
        if (st)
            goto out;
    }
out:
    dm_free(rows);
    if (g >= 0)
        H5Gclose(g);
    if (ft >= 0)
        H5Tclose(ft);
    if (mt >= 0)
        H5Tclose(mt);
    return st;
}

static dm_status write_samples(hid_t file, const dm_runrec *r, char *err)
{
    hid_t g, d = H5I_INVALID_HID;
    dm_status st = create_group(file, "samples", &g, err);
    if (st)
        return st;
    for (size_t i = 0; i < r->n_samples && !st; ++i) {
        const dm_sample_set *s = &r->samples[i];
        if (s->shape[0] > 0) {
            const hsize_t dims[4] = {(hsize_t)s->n, (hsize_t)s->shape[0], (hsize_t)s->shape[1], (hsize_t)s->shape[2]};
            st = dm_h5_write_images(g, s->name, dims, s->x, &d, err);
        } else {
            const hsize_t dims[2] = {(hsize_t)s->n, (hsize_t)s->d};
            st = dm_h5_write_dataset(g, s->name, H5P_DEFAULT, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2,
                                     dims, s->x, &d, err);
        }
        if (!st && !((st = dm_h5_write_str_attr(d, "sampler", s->sampler, err)) ||
                     (st = dm_h5_write_i64_attr(d, "nfe", s->nfe, err))))
            st = dm_h5_write_str_attr(d, "settings", s->settings_json, err);
        if (d >= 0)
            H5Dclose(d);
        d = H5I_INVALID_HID;
    }
    H5Gclose(g);
    return st;
}

static dm_status write_evals(hid_t file, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, t = dm_runlog_eval_type();
    dm_runlog_eval_row *rows = NULL;
    if (t < 0) {
        st = dm_h5_err(err, "creating /eval failed");
        goto out;
    }
    if ((st = create_group(file, "eval", &g, err)))
        goto out;
    if (r->n_evals && !(rows = dm_malloc(r->n_evals * sizeof *rows))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory writing evals");
        goto out;
    }
    /* One dataset per metric, in order of first appearance; its rows in record order. */
    for (size_t i = 0; i < r->n_evals; ++i) {
        const char *metric = r->evals[i].metric;
        size_t j = 0;
        while (j < i && strcmp(r->evals[j].metric, metric) != 0)
            ++j;
        if (j < i)
            continue;
        hsize_t n = 0;
        for (size_t k = i; k < r->n_evals; ++k) {
            const dm_eval *e = &r->evals[k];
            if (strcmp(e->metric, metric) == 0)
                rows[n++] = (dm_runlog_eval_row){e->sampler, e->nfe, e->settings_json,
                                                 e->n_samples, e->value};
        }
        st = dm_h5_write_dataset(g, metric, H5P_DEFAULT, t, t, 1, &n, rows, NULL, err);
        if (st)
            goto out;
    }
out:
    dm_free(rows);
    if (g >= 0)
        H5Gclose(g);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

/* A root attribute: int64 or float64 when its name says it holds a number (dm_runlog_root_kind)
 * and its text is one (all of it, no leading space: "149250", "9.407"); otherwise a vlen UTF-8
 * string, as every root attribute was before, so a value from an old file that is no number
 * (git_dirty "unknown") is kept as it was. A float64 reads back as the shortest text of the same
 * double ("12.300" as "12.3"). */
static dm_status write_root_attr(hid_t file, const dm_kvstr *a, char *err)
{
    const char *v = a->value ? a->value : "";
    const int starts = *v && !isspace((unsigned char)*v);
    char *end = NULL;
    errno = 0;
    switch (dm_runlog_root_kind(a->key)) {
    case DM_RUNLOG_I64: {
        long long x = starts ? strtoll(v, &end, 10) : 0;
        if (starts && !*end && !errno)
            return dm_h5_write_i64_attr(file, a->key, (int64_t)x, err);
        break;
    }
    case DM_RUNLOG_F64: {
        double x = starts ? strtod(v, &end) : 0;
        if (starts && !*end && isfinite(x))
            return dm_h5_write_f64_attr(file, a->key, x, err);
        break;
    }
    default:
        break;
    }
    return dm_h5_write_str_attr(file, a->key, v, err);
}

static dm_status fill_run(hid_t file, const void *what, char *err)
{
    const dm_runrec *r = what;
    dm_status st = DM_OK;
    for (size_t i = 0; i < r->n_attrs && !st; ++i)
        st = write_root_attr(file, &r->attrs[i], err);
    if (st || (st = write_field_group(file, &dm_runlog_config_group, r, err)) ||
        (st = write_seeds(file, r, err)) ||
        (st = write_field_group(file, &dm_runlog_data_group, r, err)) ||
        (st = write_metrics(file, r, err)) || (st = write_samples(file, r, err)) ||
        (st = write_evals(file, r, err)))
        return st;
    return DM_OK;
}

dm_status dm_runlog_write(const char *path, const dm_runrec *r, char *err)
{
    dm_status st = check_names(r, err);
    if (st) {
        dm_err_prefix(err, "cannot write run file %s", path);
        return st;
    }
    return dm_h5_write_file(path, "run file", "run", fill_run, r, err);
}
