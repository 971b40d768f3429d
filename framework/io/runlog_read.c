/* runlog_read.c — dm_runlog_read: a run.h5 (runlog.h) read back into a fresh dm_runrec that owns
 * all its memory.
 *
 * Only /config is required; an absent optional group or attribute reads as empty, so files of
 * older versions and files touched by other tools (h5py) still read. The numeric root
 * attributes read in either form: typed (int64, float64) or, in files written before, as text. HDF5's error printing is
 * silenced meanwhile: a failure is one message naming the file and the object. */
#include "io/runlog.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/options.h"
#include "io/h5util.h"
#include "io/runlog_internal.h"

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

/* A numeric root attribute (int64 or float64: dm_runlog_root_kind) as the record's text: the
 * integer in decimal, the real as the shortest text that reads back to the same double. Of any
 * other class it is corrupt ("attribute 'n_params' has the wrong type or shape"). */
static dm_status read_root_number(hid_t loc, const char *name, dm_runlog_kind kind, char **out,
                                  char *err)
{
    char buf[32];
    dm_status st;
    if (kind == DM_RUNLOG_I64) {
        int64_t x = 0;
        if ((st = dm_h5_read_i64_attr(loc, name, &x, err)))
            return st;
        snprintf(buf, sizeof buf, "%" PRId64, x);
    } else {
        double x = 0;
        if ((st = dm_h5_read_f64_attr(loc, name, &x, err)))
            return st;
        dm_format_real(x, buf);
    }
    if (!(*out = dm_strdup(buf)))
        return dm_err(err, DM_E_NOMEM, "out of memory reading attribute '%s'", name);
    return DM_OK;
}

/* Root attributes are the record's attrs, all text: strings as they are (every attribute of a
 * file written before numbers were typed), numbers by read_root_number; an attribute of another
 * name and class (added by another tool) is skipped. */
static herr_t root_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    attr_ctx *c = data;
    char *v = NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    const dm_runlog_kind kind = dm_runlog_root_kind(name);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    if (cls == H5T_NO_CLASS)
        c->st = dm_h5_err(c->err, "reading root attribute '%s' failed", name);
    else if (cls == H5T_STRING)
        c->st = dm_h5_read_str_attr(loc, name, &v, c->err);
    else if (kind != DM_RUNLOG_STR)
        c->st = read_root_number(loc, name, kind, &v, c->err);
    if (!c->st && v)
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

/* The group's attributes into the record's fields; an absent attribute leaves its field empty. */
static dm_status read_field_group(hid_t file, const dm_runlog_group *grp, dm_runrec *r, char *err)
{
    hid_t g;
    dm_status st = open_group(file, grp->name, grp->required, &g, err);
    if (st || g < 0)
        return st;
    for (size_t i = 0; i < grp->n_fields && !st; ++i) {
        const dm_runlog_field *f = &grp->fields[i];
        char *p = (char *)r + f->offset;
        switch (f->kind) {
        case DM_RUNLOG_STR:
            st = read_opt_str(g, f->name, (char **)p, err);
            break;
        case DM_RUNLOG_HASH:
            st = read_hash(g, f->name, p, err);
            break;
        case DM_RUNLOG_I64:
            st = dm_h5_read_i64_attr(g, f->name, (int64_t *)p, err);
            break;
        case DM_RUNLOG_F64:
            st = dm_h5_read_f64_attr(g, f->name, (double *)p, err);
            break;
        }
        if (st == DM_E_NOTFOUND)
            st = DM_OK;
    }
    H5Gclose(g);
    return st;
}

static dm_status read_seeds(hid_t file, dm_runrec *r, char *err)
{
    hid_t g;
    char *name = NULL;
    size_t n = 0;
    dm_status st = open_group(file, "seeds", 0, &g, err);
    if (st || g < 0)
        return st;
    if ((st = dm_h5_read_u64_attr(g, "master", &r->seed, err)) || (st = dm_h5_nlinks(g, &n, err)))
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
out:
    dm_free(name);
    H5Gclose(g);
    return st;
}

/* Open dataset name of g and check its rank: rank, or 4 as well when rank is DM_RANK_2_OR_4 (an
 * image sample set). Its extent goes to dims (up to 4 values, the rest 0), the rank to *got. */
enum { DM_RANK_2_OR_4 = -1 };
static dm_status open_rows(hid_t g, const char *name, int rank, hid_t *d, hid_t *space,
                           hsize_t dims[4], int *got, char *err)
{
    *space = H5I_INVALID_HID;
    if ((*d = H5Dopen2(g, name, H5P_DEFAULT)) < 0 || (*space = H5Dget_space(*d)) < 0)
        return dm_h5_err(err, "opening dataset '%s' failed", name);
    const int r = H5Sget_simple_extent_ndims(*space);
    if (!(r == rank || (rank == DM_RANK_2_OR_4 && (r == 2 || r == 4))))
        return dm_err(err, DM_E_IO, "dataset '%s' has the wrong rank", name);
    if (H5Sget_simple_extent_dims(*space, dims, NULL) < 0)
        return dm_h5_err(err, "reading dataset '%s' failed", name);
    *got = r;
    return DM_OK;
}

/* Called for each dataset of a group with the open dataset, its dataspace, name, rank and extent. */
typedef dm_status (*dataset_fn)(hid_t d, hid_t space, const char *name, int rank, const hsize_t dims[4],
                                void *ctx, char *err);

/* Every dataset of the optional group /<group>, in creation order, each of the given rank. */
static dm_status each_dataset(hid_t file, const char *group, int rank, dataset_fn fn, void *ctx,
                              char *err)
{
    dm_status st = DM_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char *name = NULL;
    size_t n = 0;
    if ((st = open_group(file, group, 0, &g, err)) || g < 0 || (st = dm_h5_nlinks(g, &n, err)))
        goto out;
    for (size_t i = 0; i < n; ++i) {
        hsize_t dims[4] = {0, 0, 0, 0};
        int got = 0;
        if ((st = dm_h5_link_name(g, i, &name, err)) ||
            (st = open_rows(g, name, rank, &d, &space, dims, &got, err)) ||
            (st = fn(d, space, name, got, dims, ctx, err)))
            goto out;
        dm_free(name);
        name = NULL;
        H5Sclose(space);
        H5Dclose(d);
        space = d = H5I_INVALID_HID;
    }
out:
    dm_free(name);
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    if (g >= 0)
        H5Gclose(g);
    return st;
}

typedef struct rows_ctx {
    dm_runrec *r;
    hid_t mtype; /* the memory row type */
    hid_t dxpl;  /* the transfer properties of the reads */
} rows_ctx;

/* Rows are converted (file to memory compound type) through HDF5's conversion and background
 * buffers, which it allocates and zeroes at their full size for every H5Dread: 1 MiB each by
 * default, most of the time of reading a small run file (and, in the child that vets a file,
 * hundreds of page faults per dataset). 64 KiB holds over a thousand rows; a larger dataset is
 * converted in strips. */
#define ROWS_BUFFER (64 * 1024)

/* The context of reading /<group>'s rows as mtype (NULL: cannot make the row type), with dxpl
 * for the conversion buffer; rows_ctx_end closes both. */
static dm_status rows_ctx_begin(rows_ctx *c, dm_runrec *r, hid_t mtype, const char *group, char *err)
{
    c->r = r;
    c->mtype = mtype;
    c->dxpl = H5I_INVALID_HID;
    if (mtype < 0)
        return dm_h5_err(err, "cannot make the %s row type", group);
    if ((c->dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 || H5Pset_buffer(c->dxpl, ROWS_BUFFER, NULL, NULL) < 0)
        return dm_h5_err(err, "cannot set up reading /%s", group);
    return DM_OK;
}

static void rows_ctx_end(rows_ctx *c)
{
    if (c->dxpl >= 0)
        H5Pclose(c->dxpl);
    if (c->mtype >= 0)
        H5Tclose(c->mtype);
}

static dm_status read_metric(hid_t d, hid_t space, const char *name, int rank, const hsize_t dims[4],
                             void *ctx, char *err)
{
    (void)space;
    (void)rank;
    rows_ctx *c = ctx;
    dm_status st = DM_OK;
    dm_runlog_metric_row *rows = NULL;
    dm_series *s;
    size_t m = (size_t)dims[0];
    if (m > SIZE_MAX / sizeof *rows || (m && !(rows = dm_malloc(m * sizeof *rows)))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory reading metric '%s'", name);
        goto out;
    }
    if (m && H5Dread(d, c->mtype, H5S_ALL, H5S_ALL, c->dxpl, rows) < 0) {
        st = dm_h5_err(err, "reading metric '%s' failed", name);
        goto out;
    }
    if ((st = dm_runrec_series(c->r, name, &s, err)))
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
out:
    dm_free(rows);
    return st;
}

static dm_status read_metrics(hid_t file, dm_runrec *r, char *err)
{
    rows_ctx c;
    dm_status st = rows_ctx_begin(&c, r, dm_runlog_metric_type(0), "metrics", err);
    if (!st)
        st = each_dataset(file, "metrics", 1, read_metric, &c, err);
    rows_ctx_end(&c);
    return st;
}

static dm_status read_sample_set(hid_t d, hid_t space, const char *name, int rank, const hsize_t dims[4],
                                 void *ctx, char *err)
{
    (void)space;
    dm_runrec *r = ctx;
    dm_status st = DM_OK;
    char *sampler = NULL, *settings = NULL;
    float *x = NULL;
    int64_t nfe = 0;
    if ((st = dm_h5_read_str_attr(d, "sampler", &sampler, err)) ||
        (st = dm_h5_read_i64_attr(d, "nfe", &nfe, err)) ||
        (st = dm_h5_read_str_attr(d, "settings", &settings, err)))
        goto out;
    /* An image set: (n, C, H, W), each extent at most 2^16 (so their product fits). */
    hsize_t dim = dims[1];
    if (rank == 4) {
        if (dims[1] < 1 || dims[2] < 1 || dims[3] < 1 || dims[1] > 4096 || dims[2] > 65536 || dims[3] > 65536) {
            st = dm_err(err, DM_E_IO, "image set '%s' has the shape (%llu, %llu, %llu)", name,
                        (unsigned long long)dims[1], (unsigned long long)dims[2], (unsigned long long)dims[3]);
            goto out;
        }
        dim = dims[1] * dims[2] * dims[3];
    }
    if (dim && dims[0] > SIZE_MAX / sizeof(float) / dim) {
        st = dm_err(err, DM_E_IO, "sample set '%s' is too large", name);
        goto out;
    }
    size_t count = (size_t)(dims[0] * dim);
    if (count && !(x = dm_malloc(count * sizeof *x))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory reading sample set '%s'", name);
        goto out;
    }
    if (count && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
        st = dm_h5_err(err, "reading sample set '%s' failed", name);
        goto out;
    }
    if (rank == 4) {
        const int32_t shape[3] = { (int32_t)dims[1], (int32_t)dims[2], (int32_t)dims[3] };
        st = dm_runrec_add_image_samples(r, sampler, nfe, settings, (int64_t)dims[0], shape, x, NULL, err);
    } else {
        st = dm_runrec_add_samples(r, sampler, nfe, settings, (int64_t)dims[0], (int64_t)dim, x, NULL, err);
    }
out:
    dm_free(x);
    dm_free(sampler);
    dm_free(settings);
    return st;
}

static dm_status read_eval(hid_t d, hid_t space, const char *name, int rank, const hsize_t dims[4],
                           void *ctx, char *err)
{
    (void)rank;
    rows_ctx *c = ctx;
    dm_status st = DM_OK;
    dm_runlog_eval_row *rows = NULL;
    size_t m = (size_t)dims[0];
    /* zeroed, so that reclaiming after a failed read frees only what HDF5 allocated */
    if (m > SIZE_MAX / sizeof *rows || (m && !(rows = dm_calloc(m, sizeof *rows)))) {
        st = dm_err(err, DM_E_NOMEM, "out of memory reading eval '%s'", name);
        goto out;
    }
    if (m && H5Dread(d, c->mtype, H5S_ALL, H5S_ALL, c->dxpl, rows) < 0) {
        st = dm_h5_err(err, "reading eval '%s' failed", name);
        goto out;
    }
    for (size_t k = 0; k < m && !st; ++k)
        st = dm_runrec_add_eval(c->r, name, rows[k].sampler ? rows[k].sampler : "", rows[k].nfe,
                                rows[k].settings, rows[k].n_samples, rows[k].value, err);
out:
    if (rows)
        H5Dvlen_reclaim(c->mtype, space, H5P_DEFAULT, rows);
    dm_free(rows);
    return st;
}

static dm_status read_evals(hid_t file, dm_runrec *r, char *err)
{
    rows_ctx c;
    dm_status st = rows_ctx_begin(&c, r, dm_runlog_eval_type(), "eval", err);
    if (!st)
        st = each_dataset(file, "eval", 1, read_eval, &c, err);
    rows_ctx_end(&c);
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
    if ((st = read_root(file, r, err)) ||
        (st = read_field_group(file, &dm_runlog_config_group, r, err)) ||
        (st = read_seeds(file, r, err)) ||
        (st = read_field_group(file, &dm_runlog_data_group, r, err)) ||
        (st = read_metrics(file, r, err)) ||
        (st = each_dataset(file, "samples", DM_RANK_2_OR_4, read_sample_set, r, err)) ||
        (st = read_evals(file, r, err)))
        goto out;
out:
    st = dm_h5_end_read(file, st, path, "run file", "run file", err);
    if (st)
        dm_runrec_free(r);
    dm_h5_quiet_end(&q);
    return st;
}
