/* runlog.c — run.h5 and checkpoint.h5: the layout documented in runlog.h, written whole to a
 * temporary file and renamed over the old one (atomic.c), read back into owned memory.
 *
 * HDF5's own error printing is silenced for each public call (and restored after): failures
 * become one message of ours naming the file and the object, with HDF5's innermost reason. */
#include "io/runlog.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "io/h5util.h"

/* ---------------------------------------------------------------- compound row types ---- */

typedef struct metric_row {
    int64_t step;
    double wall_s;
    double value;
} metric_row;

typedef struct eval_row {
    char *sampler;
    int64_t nfe;
    char *settings;
    int64_t n_samples;
    double value;
} eval_row;

/* Memory (file = 0) or file (little-endian, packed) compound type of a metrics row. */
static hid_t metric_type(int file)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, file ? 24 : sizeof(metric_row));
    if (t < 0)
        return t;
    if (H5Tinsert(t, "step", file ? 0 : offsetof(metric_row, step),
                  file ? H5T_STD_I64LE : H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "wall_s", file ? 8 : offsetof(metric_row, wall_s),
                  file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE) < 0 ||
        H5Tinsert(t, "value", file ? 16 : offsetof(metric_row, value),
                  file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* The eval row type; vlen strings make the memory layout the natural file layout too. */
static hid_t eval_type(void)
{
    hid_t s = dm_h5_str_type();
    if (s < 0)
        return s;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(eval_row));
    if (t >= 0 && (H5Tinsert(t, "sampler", offsetof(eval_row, sampler), s) < 0 ||
                   H5Tinsert(t, "nfe", offsetof(eval_row, nfe), H5T_NATIVE_INT64) < 0 ||
                   H5Tinsert(t, "settings", offsetof(eval_row, settings), s) < 0 ||
                   H5Tinsert(t, "n_samples", offsetof(eval_row, n_samples), H5T_NATIVE_INT64) < 0 ||
                   H5Tinsert(t, "value", offsetof(eval_row, value), H5T_NATIVE_DOUBLE) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    H5Tclose(s);
    return t;
}

/* One dataset of `count` rows (1-D, rank = 1) or an (n, d) array (rank = 2) written at once. */
static dm_status write_dataset(hid_t loc, const char *name, hid_t lcpl, hid_t ftype, hid_t mtype,
                               int rank, const hsize_t *dims, const void *buf, hid_t *out_d,
                               char *err)
{
    dm_status st = DM_OK;
    hid_t space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    if (space < 0)
        goto fail;
    d = H5Dcreate2(loc, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0)
        goto fail;
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        goto fail;
    if (out_d) {
        *out_d = d;
        d = H5I_INVALID_HID;
    }
    goto out;
fail:
    st = dm_h5_err(err, "writing dataset '%s' failed", name);
out:
    if (d >= 0)
        H5Dclose(d);
    if (space >= 0)
        H5Sclose(space);
    return st;
}

/* ---------------------------------------------------------------------- run.h5 write ---- */

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

static dm_status write_groups_attrs(hid_t file, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID;
    for (size_t i = 0; i < r->n_attrs && !st; ++i)
        st = dm_h5_write_str_attr(file, r->attrs[i].key, r->attrs[i].value, err);
    if (st)
        goto out;

    if ((g = dm_h5_group_create(file, "config")) < 0) {
        st = dm_h5_err(err, "creating /config failed");
        goto out;
    }
    if ((r->config_yaml && (st = dm_h5_write_str_attr(g, "yaml", r->config_yaml, err))) ||
        (st = dm_h5_write_str_attr(g, "config_hash", r->config_hash, err)) ||
        (st = dm_h5_write_str_attr(g, "group_hash", r->group_hash, err)))
        goto out;
    H5Gclose(g);

    if ((g = dm_h5_group_create(file, "seeds")) < 0) {
        st = dm_h5_err(err, "creating /seeds failed");
        goto out;
    }
    if ((st = dm_h5_write_u64_attr(g, "master", r->seed, err)))
        goto out;
    for (size_t i = 0; i < r->n_seeds && !st; ++i) {
        hsize_t one = 1;
        st = write_dataset(g, r->seeds[i].stream, H5P_DEFAULT, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                           0, &one, &r->seeds[i].seed, NULL, err);
    }
    if (st)
        goto out;
    H5Gclose(g);

    if ((g = dm_h5_group_create(file, "data")) < 0) {
        st = dm_h5_err(err, "creating /data failed");
        goto out;
    }
    if ((r->data_name && (st = dm_h5_write_str_attr(g, "name", r->data_name, err))) ||
        (st = dm_h5_write_i64_attr(g, "n_train", r->data_n_train, err)) ||
        (st = dm_h5_write_i64_attr(g, "n_test", r->data_n_test, err)) ||
        (st = dm_h5_write_i64_attr(g, "dim", r->data_dim, err)) ||
        (st = dm_h5_write_str_attr(g, "sha256", r->data_sha256, err)) ||
        (st = dm_h5_write_f64_attr(g, "std", r->data_std, err)))
        goto out;
out:
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static dm_status write_metrics(hid_t file, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, ft = metric_type(1), mt = metric_type(0);
    metric_row *rows = NULL;
    if (ft < 0 || mt < 0 || (g = dm_h5_group_create(file, "metrics")) < 0) {
        st = dm_h5_err(err, "creating /metrics failed");
        goto out;
    }
    for (size_t i = 0; i < r->n_series; ++i) {
        const dm_series *s = &r->series[i];
        rows = s->n ? dm_malloc(s->n * sizeof *rows) : NULL;
        if (s->n && !rows) {
            st = dm_err(err, DM_E_NOMEM, "out of memory writing metric '%s'", s->name);
            goto out;
        }
        for (size_t k = 0; k < s->n; ++k)
            rows[k] = (metric_row){s->step[k], s->wall_s[k], s->value[k]};
        hsize_t n = s->n;
        st = write_dataset(g, s->name, H5P_DEFAULT, ft, mt, 1, &n, rows, NULL, err);
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
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID;
    if ((g = dm_h5_group_create(file, "samples")) < 0) {
        st = dm_h5_err(err, "creating /samples failed");
        goto out;
    }
    for (size_t i = 0; i < r->n_samples && !st; ++i) {
        const dm_sample_set *s = &r->samples[i];
        hsize_t dims[2] = {(hsize_t)s->n, (hsize_t)s->d};
        st = write_dataset(g, s->name, H5P_DEFAULT, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims,
                           s->x, &d, err);
        if (!st && !((st = dm_h5_write_str_attr(d, "sampler", s->sampler, err)) ||
                     (st = dm_h5_write_i64_attr(d, "nfe", s->nfe, err))))
            st = dm_h5_write_str_attr(d, "settings", s->settings_json, err);
        if (d >= 0)
            H5Dclose(d);
        d = H5I_INVALID_HID;
    }
out:
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static dm_status write_evals(hid_t file, const dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, t = eval_type();
    eval_row *rows = NULL;
    if (t < 0 || (g = dm_h5_group_create(file, "eval")) < 0) {
        st = dm_h5_err(err, "creating /eval failed");
        goto out;
    }
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
                rows[n++] = (eval_row){e->sampler, e->nfe, e->settings_json, e->n_samples,
                                       e->value};
        }
        st = write_dataset(g, metric, H5P_DEFAULT, t, t, 1, &n, rows, NULL, err);
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

/* Shared by both writers: create the temporary file, let `fill` write it, close, commit. */
typedef dm_status (*fill_fn)(hid_t file, const void *what, char *err);

static dm_status write_h5_atomic(const char *path, const char *kind, fill_fn fill,
                                 const void *what, char *err)
{
    dm_status st = DM_OK;
    dm_h5_quiet q;
    char *tmp = NULL;
    hid_t file = H5I_INVALID_HID;
    int committed = 0;
    dm_h5_quiet_begin(&q);
    st = dm_atomic_tmp_path(path, &tmp, err);
    if (st)
        goto out;
    if ((st = dm_h5_create(tmp, &file, err)) || (st = fill(file, what, err)))
        goto out;
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        st = dm_h5_err(err, "flushing failed");
        goto out;
    }
    herr_t rc = H5Fclose(file);
    file = H5I_INVALID_HID;
    if (rc < 0) {
        st = dm_h5_err(err, "closing failed");
        goto out;
    }
    committed = 1; /* from here on messages come from dm_atomic_commit and name path */
    st = dm_atomic_commit(tmp, path, err);
out:
    if (file >= 0)
        H5Fclose(file);
    if (st) {
        if (tmp)
            dm_atomic_discard(tmp);
        if (!committed)
            dm_err_prefix(err, "cannot write %s %s", kind, path);
    }
    dm_free(tmp);
    dm_h5_quiet_end(&q);
    return st;
}

static dm_status fill_run(hid_t file, const void *what, char *err)
{
    const dm_runrec *r = what;
    dm_status st;
    if ((st = write_groups_attrs(file, r, err)) || (st = write_metrics(file, r, err)) ||
        (st = write_samples(file, r, err)) || (st = write_evals(file, r, err)))
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
    return write_h5_atomic(path, "run file", fill_run, r, err);
}

/* ----------------------------------------------------------------------- run.h5 read ---- */

/* Open group name of loc; an absent optional group gives *g < 0 and DM_OK. */
static dm_status open_group(hid_t loc, const char *name, int required, hid_t *g, char *err)
{
    *g = H5I_INVALID_HID;
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex < 0)
        return dm_h5_err(err, "looking up /%s failed", name);
    if (ex == 0)
        return required ? dm_err(err, DM_E_IO, "it has no /%s group", name) : DM_OK;
    if ((*g = H5Gopen2(loc, name, H5P_DEFAULT)) < 0)
        return dm_h5_err(err, "opening /%s failed", name);
    return DM_OK;
}

/* A string attribute that may be absent (*out = NULL then). */
static dm_status read_opt_str(hid_t loc, const char *name, char **out, char *err)
{
    dm_status st = dm_h5_read_str_attr(loc, name, out, err);
    return st == DM_E_NOTFOUND ? DM_OK : st;
}

static dm_status read_hash(hid_t loc, const char *name, char dst[65], char *err)
{
    char *s = NULL;
    dm_status st = read_opt_str(loc, name, &s, err);
    if (!st && s && strlen(s) > 64)
        st = dm_err(err, DM_E_IO, "/config attribute %s is longer than 64 characters", name);
    if (!st)
        snprintf(dst, 65, "%s", s ? s : "");
    dm_free(s);
    return st;
}

typedef struct attr_ctx {
    dm_runrec *r;
    dm_status st;
    char *err;
} attr_ctx;

/* Root attributes are the record's attrs; a non-string one (added by another tool) is skipped. */
static herr_t root_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    attr_ctx *c = data;
    char *v = NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    if (cls == H5T_NO_CLASS)
        c->st = dm_h5_err(c->err, "reading root attribute '%s' failed", name);
    else if (cls == H5T_STRING && !(c->st = dm_h5_read_str_attr(loc, name, &v, c->err)))
        c->st = dm_runrec_set_attr(c->r, name, v, c->err);
    dm_free(v);
    return c->st ? -1 : 0;
}

static dm_status read_root(hid_t file, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    unsigned flags = 0;
    attr_ctx c = {r, DM_OK, err};
    hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
    hid_t gcpl = root >= 0 ? H5Gget_create_plist(root) : H5I_INVALID_HID;
    if (gcpl < 0 || H5Pget_attr_creation_order(gcpl, &flags) < 0) {
        st = dm_h5_err(err, "reading the root attributes failed");
        goto out;
    }
    H5_index_t idx = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    if (H5Aiterate2(root, idx, H5_ITER_INC, NULL, root_attr_cb, &c) < 0)
        st = c.st ? c.st : dm_h5_err(err, "reading the root attributes failed");
out:
    if (gcpl >= 0)
        H5Pclose(gcpl);
    if (root >= 0)
        H5Gclose(root);
    return st;
}

static dm_status read_config_seeds_data(hid_t file, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID;
    char *name = NULL;

    if ((st = open_group(file, "config", 1, &g, err)) ||
        (st = read_opt_str(g, "yaml", &r->config_yaml, err)) ||
        (st = read_hash(g, "config_hash", r->config_hash, err)) ||
        (st = read_hash(g, "group_hash", r->group_hash, err)))
        goto out;
    H5Gclose(g);

    if ((st = open_group(file, "seeds", 0, &g, err)))
        goto out;
    if (g >= 0) {
        size_t n = 0;
        if ((st = dm_h5_read_u64_attr(g, "master", &r->seed, err)) ||
            (st = dm_h5_nlinks(g, &n, err)))
            goto out;
        for (size_t i = 0; i < n; ++i) {
            uint64_t v = 0;
            if ((st = dm_h5_link_name(g, i, &name, err)) ||
                (st = dm_h5_read_scalar(g, name, H5T_NATIVE_UINT64, &v, err)) ||
                (st = dm_runrec_add_seed(r, name, v, err)))
                goto out;
            dm_free(name);
            name = NULL;
        }
        H5Gclose(g);
    }

    if ((st = open_group(file, "data", 0, &g, err)))
        goto out;
    if (g >= 0) {
        double sd = 0;
        char hash[65] = "";
        if ((st = read_opt_str(g, "name", &r->data_name, err)) ||
            ((st = dm_h5_read_i64_attr(g, "n_train", &r->data_n_train, err)) &&
             st != DM_E_NOTFOUND) ||
            ((st = dm_h5_read_i64_attr(g, "n_test", &r->data_n_test, err)) &&
             st != DM_E_NOTFOUND) ||
            ((st = dm_h5_read_i64_attr(g, "dim", &r->data_dim, err)) && st != DM_E_NOTFOUND) ||
            ((st = dm_h5_read_f64_attr(g, "std", &sd, err)) && st != DM_E_NOTFOUND) ||
            (st = read_hash(g, "sha256", hash, err)))
            goto out;
        r->data_std = sd;
        memcpy(r->data_sha256, hash, sizeof hash);
    }
out:
    dm_free(name);
    if (g >= 0)
        H5Gclose(g);
    return st;
}

/* Open dataset name of g and check its rank; *n = number of rows, dims of a 2-D one in d2. */
static dm_status open_rows(hid_t g, const char *name, int rank, hid_t *d, hid_t *space,
                           hsize_t dims[2], char *err)
{
    *space = H5I_INVALID_HID;
    if ((*d = H5Dopen2(g, name, H5P_DEFAULT)) < 0 || (*space = H5Dget_space(*d)) < 0)
        return dm_h5_err(err, "opening dataset '%s' failed", name);
    if (H5Sget_simple_extent_ndims(*space) != rank)
        return dm_err(err, DM_E_IO, "dataset '%s' has the wrong rank", name);
    if (H5Sget_simple_extent_dims(*space, dims, NULL) < 0)
        return dm_h5_err(err, "reading dataset '%s' failed", name);
    return DM_OK;
}

static dm_status read_metrics(hid_t file, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hid_t mt = metric_type(0);
    char *name = NULL;
    metric_row *rows = NULL;
    size_t n = 0;
    if (mt < 0) {
        st = dm_h5_err(err, "cannot make the metrics row type");
        goto out;
    }
    if ((st = open_group(file, "metrics", 0, &g, err)) || g < 0 || (st = dm_h5_nlinks(g, &n, err)))
        goto out;
    for (size_t i = 0; i < n; ++i) {
        hsize_t dims[2] = {0, 0};
        dm_series *s;
        if ((st = dm_h5_link_name(g, i, &name, err)) ||
            (st = open_rows(g, name, 1, &d, &space, dims, err)))
            goto out;
        size_t m = (size_t)dims[0];
        if (m > SIZE_MAX / sizeof *rows || (m && !(rows = dm_malloc(m * sizeof *rows)))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory reading metric '%s'", name);
            goto out;
        }
        if (m && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
            st = dm_h5_err(err, "reading metric '%s' failed", name);
            goto out;
        }
        if ((st = dm_runrec_series(r, name, &s, err)))
            goto out;
        if (m) {
            s->step = dm_malloc(m * sizeof *s->step);
            s->wall_s = dm_malloc(m * sizeof *s->wall_s);
            s->value = dm_malloc(m * sizeof *s->value);
            if (!s->step || !s->wall_s || !s->value) {
                st = dm_err(err, DM_E_NOMEM, "out of memory reading metric '%s'", name);
                goto out;
            }
            for (size_t k = 0; k < m; ++k) {
                s->step[k] = rows[k].step;
                s->wall_s[k] = rows[k].wall_s;
                s->value[k] = rows[k].value;
            }
            s->n = s->cap = m;
        }
        dm_free(rows);
        dm_free(name);
        rows = NULL;
        name = NULL;
        H5Sclose(space);
        H5Dclose(d);
        space = d = H5I_INVALID_HID;
    }
out:
    dm_free(rows);
    dm_free(name);
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (g >= 0)
        H5Gclose(g);
    if (mt >= 0)
        H5Tclose(mt);
    return st;
}

static dm_status read_samples(hid_t file, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char *name = NULL, *sampler = NULL, *settings = NULL;
    float *x = NULL;
    size_t n = 0;
    if ((st = open_group(file, "samples", 0, &g, err)) || g < 0 || (st = dm_h5_nlinks(g, &n, err)))
        goto out;
    for (size_t i = 0; i < n; ++i) {
        hsize_t dims[2] = {0, 0};
        int64_t nfe = 0;
        if ((st = dm_h5_link_name(g, i, &name, err)) ||
            (st = open_rows(g, name, 2, &d, &space, dims, err)) ||
            (st = dm_h5_read_str_attr(d, "sampler", &sampler, err)) ||
            (st = dm_h5_read_i64_attr(d, "nfe", &nfe, err)) ||
            (st = dm_h5_read_str_attr(d, "settings", &settings, err)))
            goto out;
        if (dims[1] && dims[0] > SIZE_MAX / sizeof(float) / dims[1]) {
            st = dm_err(err, DM_E_IO, "sample set '%s' is too large", name);
            goto out;
        }
        size_t count = (size_t)(dims[0] * dims[1]);
        if (count && !(x = dm_malloc(count * sizeof *x))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory reading sample set '%s'", name);
            goto out;
        }
        if (count && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
            st = dm_h5_err(err, "reading sample set '%s' failed", name);
            goto out;
        }
        st = dm_runrec_add_samples(r, sampler, nfe, settings, (int64_t)dims[0], (int64_t)dims[1], x,
                                   NULL, err);
        if (st)
            goto out;
        dm_free(x);
        dm_free(name);
        dm_free(sampler);
        dm_free(settings);
        x = NULL;
        name = sampler = settings = NULL;
        H5Sclose(space);
        H5Dclose(d);
        space = d = H5I_INVALID_HID;
    }
out:
    dm_free(x);
    dm_free(name);
    dm_free(sampler);
    dm_free(settings);
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static dm_status read_evals(hid_t file, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID, space = H5I_INVALID_HID, t = eval_type();
    char *name = NULL;
    eval_row *rows = NULL;
    size_t n = 0, m = 0;
    if (t < 0) {
        st = dm_h5_err(err, "cannot make the eval row type");
        goto out;
    }
    if ((st = open_group(file, "eval", 0, &g, err)) || g < 0 || (st = dm_h5_nlinks(g, &n, err)))
        goto out;
    for (size_t i = 0; i < n; ++i) {
        hsize_t dims[2] = {0, 0};
        if ((st = dm_h5_link_name(g, i, &name, err)) ||
            (st = open_rows(g, name, 1, &d, &space, dims, err)))
            goto out;
        m = (size_t)dims[0];
        /* zeroed, so that reclaiming after a failed read frees only what HDF5 allocated */
        if (m > SIZE_MAX / sizeof *rows || (m && !(rows = dm_calloc(m, sizeof *rows)))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory reading eval '%s'", name);
            goto out;
        }
        if (m && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
            st = dm_h5_err(err, "reading eval '%s' failed", name);
            goto out;
        }
        for (size_t k = 0; k < m && !st; ++k)
            st = dm_runrec_add_eval(r, name, rows[k].sampler ? rows[k].sampler : "", rows[k].nfe,
                                    rows[k].settings, rows[k].n_samples, rows[k].value, err);
        if (st)
            goto out;
        if (rows)
            H5Dvlen_reclaim(t, space, H5P_DEFAULT, rows);
        dm_free(rows);
        dm_free(name);
        rows = NULL;
        name = NULL;
        H5Sclose(space);
        H5Dclose(d);
        space = d = H5I_INVALID_HID;
    }
out:
    if (rows && space >= 0)
        H5Dvlen_reclaim(t, space, H5P_DEFAULT, rows);
    dm_free(rows);
    dm_free(name);
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (g >= 0)
        H5Gclose(g);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

dm_status dm_runlog_read(const char *path, dm_runrec *r, char *err)
{
    dm_status st = DM_OK;
    dm_h5_quiet q;
    hid_t file = H5I_INVALID_HID;
    dm_runrec_init(r);
    dm_h5_quiet_begin(&q);
    if ((st = dm_h5_open(path, &file, err)))
        goto out;
    if ((st = read_root(file, r, err)) || (st = read_config_seeds_data(file, r, err)) ||
        (st = read_metrics(file, r, err)) || (st = read_samples(file, r, err)) ||
        (st = read_evals(file, r, err)))
        goto out;
out:
    if (file >= 0 && H5Fclose(file) < 0 && !st)
        st = dm_h5_err(err, "closing failed");
    if (st) {
        dm_runrec_free(r);
        if (st == DM_E_NOTFOUND && file >= 0)
            st = DM_E_IO; /* the file exists but lacks a required attribute: corrupt */
        if (st == DM_E_NOTFOUND)
            dm_err(err, st, "run file %s does not exist", path);
        else if (st == DM_E_IO)
            dm_err_prefix(err, "%s: not a valid run file", path);
        else
            dm_err_prefix(err, "reading %s", path);
    }
    dm_h5_quiet_end(&q);
    return st;
}

/* ------------------------------------------------------------------- checkpoint.h5 ---- */

/* File and memory HDF5 types and element size of an entry type (macros, since HDF5's predefined
 * type ids are only valid once the library is initialized). */
static hid_t ckpt_file_type(dm_ckpt_type t)
{
    return t == DM_CKPT_F32 ? H5T_IEEE_F32LE : t == DM_CKPT_F64 ? H5T_IEEE_F64LE
         : t == DM_CKPT_I64 ? H5T_STD_I64LE : H5T_STD_U8LE;
}

static hid_t ckpt_mem_type(dm_ckpt_type t)
{
    return t == DM_CKPT_F32 ? H5T_NATIVE_FLOAT : t == DM_CKPT_F64 ? H5T_NATIVE_DOUBLE
         : t == DM_CKPT_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT8;
}

static size_t ckpt_size(dm_ckpt_type t)
{
    return t == DM_CKPT_F32 ? 4 : t == DM_CKPT_U8 ? 1 : 8;
}

/* "a/b/c": non-empty components, none of them "." or "..". */
static dm_status check_entry_name(const char *name, char *err)
{
    const char *p = name;
    if (!name || !*name)
        return dm_err(err, DM_E_INPUT, "a checkpoint entry has an empty name");
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return dm_err(err, DM_E_INPUT, "checkpoint entry name '%s' is not a valid path", name);
        p += len;
        if (*p == '/' && !*++p)
            return dm_err(err, DM_E_INPUT, "checkpoint entry name '%s' ends with '/'", name);
    }
    return DM_OK;
}

static dm_status fill_ckpt(hid_t file, const void *what, char *err)
{
    const dm_ckpt *c = what;
    dm_status st = DM_OK;
    hid_t lcpl = dm_h5_lcpl_nested();
    if (lcpl < 0)
        return dm_h5_err(err, "cannot set up link creation properties");
    st = dm_h5_write_i64_attr(file, "step", c->step, err);
    for (size_t i = 0; i < c->n && !st; ++i) {
        const dm_ckpt_entry *e = &c->entries[i];
        hsize_t n = e->count;
        st = write_dataset(file, e->name, lcpl, ckpt_file_type(e->type), ckpt_mem_type(e->type),
                           1, &n, e->data, NULL, err);
    }
    H5Pclose(lcpl);
    return st;
}

dm_status dm_ckpt_write(const char *path, const dm_ckpt *c, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < c->n && !st; ++i) {
        st = check_entry_name(c->entries[i].name, err);
        if (!st && (unsigned)c->entries[i].type > DM_CKPT_U8)
            st = dm_err(err, DM_E_INPUT, "checkpoint entry '%s' has an unknown type",
                        c->entries[i].name);
        if (!st && c->entries[i].count && !c->entries[i].data)
            st = dm_err(err, DM_E_INPUT, "checkpoint entry '%s' has no data", c->entries[i].name);
    }
    if (st) {
        dm_err_prefix(err, "cannot write checkpoint %s", path);
        return st;
    }
    return write_h5_atomic(path, "checkpoint", fill_ckpt, c, err);
}

/* The entry type of a dataset's file type, or -1 if it is none of ours. */
static int entry_type(hid_t ftype)
{
    H5T_class_t cls = H5Tget_class(ftype);
    size_t size = H5Tget_size(ftype);
    if (cls == H5T_FLOAT)
        return size == 4 ? DM_CKPT_F32 : size == 8 ? DM_CKPT_F64 : -1;
    if (cls == H5T_INTEGER) {
        H5T_sign_t sign = H5Tget_sign(ftype);
        if (size == 8 && sign == H5T_SGN_2)
            return DM_CKPT_I64;
        if (size == 1 && sign == H5T_SGN_NONE)
            return DM_CKPT_U8;
    }
    return -1;
}

/* Read dataset d as a new entry; takes *name (set to NULL once the entry owns it). */
static dm_status read_entry(hid_t d, char **name, dm_ckpt *c, size_t *cap, char *err)
{
    dm_status st = DM_OK;
    hid_t ftype = H5I_INVALID_HID, space = H5I_INVALID_HID;
    void *data = NULL;
    int type = -1;
    if ((ftype = H5Dget_type(d)) < 0 || (space = H5Dget_space(d)) < 0) {
        st = dm_h5_err(err, "reading dataset '%s' failed", *name);
        goto out;
    }
    if ((type = entry_type(ftype)) < 0) {
        st = dm_err(err, DM_E_IO, "dataset '%s' has an unsupported type", *name);
        goto out;
    }
    hssize_t np = H5Sget_simple_extent_npoints(space);
    size_t size = ckpt_size((dm_ckpt_type)type);
    if (np < 0 || (uint64_t)np > SIZE_MAX / size) {
        st = dm_err(err, DM_E_IO, "dataset '%s' has a bad shape", *name);
        goto out;
    }
    size_t count = (size_t)np;
    if (count && !(data = dm_malloc(count * size))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory reading '%s'", *name);
        goto out;
    }
    if (count && H5Dread(d, ckpt_mem_type((dm_ckpt_type)type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        st = dm_h5_err(err, "reading dataset '%s' failed", *name);
        goto out;
    }
    if (c->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        dm_ckpt_entry *e = nc < SIZE_MAX / sizeof *e ? dm_realloc(c->entries, nc * sizeof *e) : NULL;
        if (!e) {
            st = dm_err(err, DM_E_NOMEM, "out of memory reading '%s'", *name);
            goto out;
        }
        c->entries = e;
        *cap = nc;
    }
    c->entries[c->n++] = (dm_ckpt_entry){*name, (dm_ckpt_type)type, count, data};
    *name = NULL;
    data = NULL;
out:
    dm_free(data);
    if (space >= 0)
        H5Sclose(space);
    if (ftype >= 0)
        H5Tclose(ftype);
    return st;
}

/* Every dataset under group g, depth first; names joined with '/'. The depth bound stops a
 * hard-link cycle in a foreign file. */
static dm_status walk_group(hid_t g, const char *prefix, int depth, dm_ckpt *c, size_t *cap,
                            char *err)
{
    dm_status st = DM_OK;
    hid_t obj = H5I_INVALID_HID;
    char *name = NULL, *full = NULL;
    size_t n = 0;
    if (depth > 32)
        return dm_err(err, DM_E_IO, "groups nested deeper than 32 levels at '%s'", prefix);
    if ((st = dm_h5_nlinks(g, &n, err)))
        goto out;
    for (size_t i = 0; i < n; ++i) {
        if ((st = dm_h5_link_name(g, i, &name, err)))
            goto out;
        size_t len = strlen(prefix) + strlen(name) + 2;
        if (!(full = dm_malloc(len))) {
            st = dm_err(err, DM_E_NOMEM, "out of memory reading '%s'", name);
            goto out;
        }
        snprintf(full, len, "%s%s%s", prefix, *prefix ? "/" : "", name);
        if ((obj = H5Oopen(g, name, H5P_DEFAULT)) < 0) {
            st = dm_h5_err(err, "opening '%s' failed", full);
            goto out;
        }
        H5I_type_t kind = H5Iget_type(obj);
        if (kind == H5I_GROUP)
            st = walk_group(obj, full, depth + 1, c, cap, err);
        else if (kind == H5I_DATASET)
            st = read_entry(obj, &full, c, cap, err);
        if (st)
            goto out;
        H5Oclose(obj);
        obj = H5I_INVALID_HID;
        dm_free(full);
        dm_free(name);
        full = name = NULL;
    }
out:
    if (obj >= 0)
        H5Oclose(obj);
    dm_free(full);
    dm_free(name);
    return st;
}

dm_status dm_ckpt_read(const char *path, dm_ckpt *c, char *err)
{
    dm_status st = DM_OK;
    dm_h5_quiet q;
    hid_t file = H5I_INVALID_HID, root = H5I_INVALID_HID;
    size_t cap = 0;
    memset(c, 0, sizeof *c);
    c->owns = 1;
    dm_h5_quiet_begin(&q);
    if ((st = dm_h5_open(path, &file, err)) || (st = dm_h5_read_i64_attr(file, "step", &c->step, err)))
        goto out;
    if ((root = H5Gopen2(file, "/", H5P_DEFAULT)) < 0) {
        st = dm_h5_err(err, "opening the root group failed");
        goto out;
    }
    st = walk_group(root, "", 0, c, &cap, err);
out:
    if (root >= 0)
        H5Gclose(root);
    if (file >= 0 && H5Fclose(file) < 0 && !st)
        st = dm_h5_err(err, "closing failed");
    if (st) {
        dm_ckpt_free(c);
        if (st == DM_E_NOTFOUND && file >= 0)
            st = DM_E_IO; /* the file exists but lacks its step: corrupt, not missing */
        if (st == DM_E_NOTFOUND)
            dm_err(err, st, "checkpoint %s does not exist", path);
        else if (st == DM_E_IO)
            dm_err_prefix(err, "%s: not a valid checkpoint file", path);
        else
            dm_err_prefix(err, "reading %s", path);
    }
    dm_h5_quiet_end(&q);
    return st;
}

const dm_ckpt_entry *dm_ckpt_find(const dm_ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->n; ++i)
        if (strcmp(c->entries[i].name, name) == 0)
            return &c->entries[i];
    return NULL;
}

void dm_ckpt_free(dm_ckpt *c)
{
    if (!c)
        return;
    if (c->owns) {
        for (size_t i = 0; i < c->n; ++i) {
            dm_free(c->entries[i].name);
            dm_free(c->entries[i].data);
        }
        dm_free(c->entries);
    }
    memset(c, 0, sizeof *c);
}
