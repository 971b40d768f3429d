/* h5util.c — the HDF5 vocabulary shared by run.h5 and checkpoint.h5: quiet error handling that
 * turns HDF5's error stack into one line of ours, file creation with creation order tracked,
 * and typed scalar attributes. Every function closes every id it opened, on every path. */
#include "io/h5util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "io/atomic.h"

void dm_h5_quiet_begin(dm_h5_quiet *q)
{
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void dm_h5_quiet_end(const dm_h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct walk_ctx {
    char desc[512];
} walk_ctx;

/* The walk goes from the API call down to the innermost function; the innermost description is
 * the specific one ("truncated file: eof = ...", "errno = 2, ..."), so keep the last. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    walk_ctx *w = data;
    if (e->desc && *e->desc) {
        snprintf(w->desc, sizeof w->desc, "%s", e->desc);
        for (char *p = w->desc; *p; ++p) /* some descriptions embed a ctime() newline */
            if (*p == '\n')
                *p = ' ';
    }
    return 0;
}

dm_status dm_h5_err(char *err, const char *fmt, ...)
{
    if (!err)
        return DM_E_IO;
    walk_ctx w = {{0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    char msg[DM_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w.desc[0])
        return dm_err(err, DM_E_IO, "%s (HDF5: %s)", msg, w.desc);
    return dm_err(err, DM_E_IO, "%s", msg);
}

/* Tracked and indexed creation order: h5py and our readers list things as they were written. */
static int set_creation_order(hid_t pl)
{
    unsigned f = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
    return H5Pset_link_creation_order(pl, f) < 0 || H5Pset_attr_creation_order(pl, f) < 0;
}

static hid_t make_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    /* 1.8 object format: readable by every HDF5 from 1.8 on (older h5py, MATLAB). Files are
     * never modified in place, so HDF5's file locks protect nothing and fail on some cluster
     * file systems: off. */
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0
#if H5_VERSION_GE(1, 10, 7)
        || H5Pset_file_locking(fapl, 0, 1) < 0
#endif
        /* Close everything with the file, so the bytes are final before fsync and rename. */
        || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

dm_status dm_h5_create(const char *path, hid_t *file, char *err)
{
    dm_status st = DM_OK;
    hid_t fcpl = H5I_INVALID_HID, fapl = H5I_INVALID_HID;
    *file = H5I_INVALID_HID;
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl < 0 || set_creation_order(fcpl)) {
        st = dm_h5_err(err, "cannot set up file creation properties");
        goto out;
    }
    fapl = make_fapl();
    if (fapl < 0) {
        st = dm_h5_err(err, "cannot set up file access properties");
        goto out;
    }
    *file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (*file < 0)
        st = dm_h5_err(err, "cannot create %s", path);
out:
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    return st;
}

dm_status dm_h5_open(const char *path, hid_t *file, char *err)
{
    dm_status st = DM_OK;
    hid_t fapl = H5I_INVALID_HID;
    struct stat sb;
    *file = H5I_INVALID_HID;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return dm_err(err, DM_E_NOTFOUND, "%s does not exist", path);
        return dm_err(err, DM_E_IO, "cannot open %s: %s", path, strerror(errno));
    }
    fapl = make_fapl();
    if (fapl < 0) {
        st = dm_h5_err(err, "cannot set up file access properties");
        goto out;
    }
    *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (*file < 0)
        st = dm_h5_err(err, "HDF5 cannot open it");
out:
    if (fapl >= 0)
        H5Pclose(fapl);
    return st;
}

hid_t dm_h5_group_create(hid_t loc, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0)
        return gcpl;
    hid_t g = H5I_INVALID_HID;
    if (!set_creation_order(gcpl))
        g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

hid_t dm_h5_lcpl_nested(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return H5I_INVALID_HID;
    }
    return lcpl;
}

hid_t dm_h5_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* One scalar attribute of file type ftype from memory of type mtype. */
static dm_status write_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                            const void *buf, char *err)
{
    dm_status st = DM_OK;
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    space = H5Screate(H5S_SCALAR);
    if (space < 0)
        goto fail;
    attr = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mtype, buf) < 0)
        goto fail;
    goto out;
fail:
    st = dm_h5_err(err, "writing attribute '%s' failed", name);
out:
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    return st;
}

dm_status dm_h5_write_str_attr(hid_t loc, const char *name, const char *value, char *err)
{
    hid_t t = dm_h5_str_type();
    if (t < 0)
        return dm_h5_err(err, "cannot make a string type");
    const char *p = value ? value : "";
    dm_status st = write_attr(loc, name, t, t, &p, err);
    H5Tclose(t);
    return st;
}

dm_status dm_h5_write_i64_attr(hid_t loc, const char *name, int64_t v, char *err)
{
    return write_attr(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, err);
}

dm_status dm_h5_write_u64_attr(hid_t loc, const char *name, uint64_t v, char *err)
{
    return write_attr(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, err);
}

dm_status dm_h5_write_f64_attr(hid_t loc, const char *name, double v, char *err)
{
    return write_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, err);
}

/* Open attribute name of loc and check that it holds one element of class cls (or, with
 * cls2 >= 0, of class cls2). */
static dm_status open_attr(hid_t loc, const char *name, H5T_class_t cls, int cls2, hid_t *attr,
                           hid_t *ftype, char *err)
{
    dm_status st = DM_OK;
    hid_t space = H5I_INVALID_HID;
    *attr = *ftype = H5I_INVALID_HID;
    htri_t ex = H5Aexists(loc, name);
    if (ex == 0)
        return dm_err(err, DM_E_NOTFOUND, "attribute '%s' is missing", name);
    if (ex < 0 || (*attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0 ||
        (*ftype = H5Aget_type(*attr)) < 0 || (space = H5Aget_space(*attr)) < 0) {
        st = dm_h5_err(err, "reading attribute '%s' failed", name);
        goto out;
    }
    H5T_class_t c = H5Tget_class(*ftype);
    if ((c != cls && (cls2 < 0 || (int)c != cls2)) || H5Sget_simple_extent_npoints(space) != 1)
        st = dm_err(err, DM_E_IO, "attribute '%s' has the wrong type or shape", name);
out:
    if (space >= 0)
        H5Sclose(space);
    if (st) {
        if (*ftype >= 0)
            H5Tclose(*ftype);
        if (*attr >= 0)
            H5Aclose(*attr);
        *attr = *ftype = H5I_INVALID_HID;
    }
    return st;
}

dm_status dm_h5_read_str_attr(hid_t loc, const char *name, char **out, char *err)
{
    dm_status st = DM_OK;
    hid_t attr, ftype, mtype = H5I_INVALID_HID;
    char *vl = NULL, *buf = NULL;
    *out = NULL;
    st = open_attr(loc, name, H5T_STRING, -1, &attr, &ftype, err);
    if (st)
        return st;
    htri_t var = H5Tis_variable_str(ftype);
    if (var > 0) {
        mtype = dm_h5_str_type();
        if (mtype < 0 || H5Aread(attr, mtype, &vl) < 0) {
            vl = NULL;
            st = dm_h5_err(err, "reading attribute '%s' failed", name);
            goto out;
        }
        buf = dm_strdup(vl ? vl : "");
    } else {
        /* A fixed-length string (written by another tool): read its bytes and terminate. */
        size_t size = H5Tget_size(ftype);
        if (var < 0 || size == 0 || (mtype = H5Tcopy(ftype)) < 0) {
            st = dm_h5_err(err, "reading attribute '%s' failed", name);
            goto out;
        }
        buf = dm_calloc(size + 1, 1);
        if (buf && H5Aread(attr, mtype, buf) < 0) {
            st = dm_h5_err(err, "reading attribute '%s' failed", name);
            goto out;
        }
    }
    if (!buf) {
        st = dm_err(err, DM_E_NOMEM, "out of memory reading attribute '%s'", name);
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    if (vl)
        H5free_memory(vl);
    dm_free(buf);
    if (mtype >= 0)
        H5Tclose(mtype);
    H5Tclose(ftype);
    H5Aclose(attr);
    return st;
}

static dm_status read_num_attr(hid_t loc, const char *name, H5T_class_t cls, int cls2,
                               hid_t mtype, void *v, char *err)
{
    hid_t attr, ftype;
    dm_status st = open_attr(loc, name, cls, cls2, &attr, &ftype, err);
    if (st)
        return st;
    if (H5Aread(attr, mtype, v) < 0)
        st = dm_h5_err(err, "reading attribute '%s' failed", name);
    H5Tclose(ftype);
    H5Aclose(attr);
    return st;
}

dm_status dm_h5_read_i64_attr(hid_t loc, const char *name, int64_t *v, char *err)
{
    return read_num_attr(loc, name, H5T_INTEGER, -1, H5T_NATIVE_INT64, v, err);
}

dm_status dm_h5_read_u64_attr(hid_t loc, const char *name, uint64_t *v, char *err)
{
    return read_num_attr(loc, name, H5T_INTEGER, -1, H5T_NATIVE_UINT64, v, err);
}

dm_status dm_h5_read_f64_attr(hid_t loc, const char *name, double *v, char *err)
{
    return read_num_attr(loc, name, H5T_FLOAT, H5T_INTEGER, H5T_NATIVE_DOUBLE, v, err);
}

dm_status dm_h5_read_scalar(hid_t loc, const char *name, hid_t mem_type, void *v, char *err)
{
    dm_status st = DM_OK;
    hid_t d = H5I_INVALID_HID, space = H5I_INVALID_HID;
    d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0 || (space = H5Dget_space(d)) < 0) {
        st = dm_h5_err(err, "reading dataset '%s' failed", name);
        goto out;
    }
    if (H5Sget_simple_extent_npoints(space) != 1) {
        st = dm_err(err, DM_E_IO, "dataset '%s' does not hold one value", name);
        goto out;
    }
    if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        st = dm_h5_err(err, "reading dataset '%s' failed", name);
out:
    if (space >= 0)
        H5Sclose(space);
    if (d >= 0)
        H5Dclose(d);
    return st;
}

dm_status dm_h5_nlinks(hid_t g, size_t *n, char *err)
{
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0)
        return dm_h5_err(err, "listing a group failed");
    *n = (size_t)info.nlinks;
    return DM_OK;
}

dm_status dm_h5_link_name(hid_t g, size_t i, char **name, char *err)
{
    dm_status st = DM_OK;
    unsigned flags = 0;
    char *buf = NULL;
    *name = NULL;
    /* Creation order if the group tracks it (ours do), else alphabetical. */
    hid_t gcpl = H5Gget_create_plist(g);
    if (gcpl < 0 || H5Pget_link_creation_order(gcpl, &flags) < 0) {
        st = dm_h5_err(err, "listing a group failed");
        goto out;
    }
    H5_index_t idx = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    ssize_t len = H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, (hsize_t)i, NULL, 0, H5P_DEFAULT);
    if (len < 0) {
        st = dm_h5_err(err, "listing a group failed");
        goto out;
    }
    buf = dm_malloc((size_t)len + 1);
    if (!buf) {
        st = dm_err(err, DM_E_NOMEM, "out of memory listing a group");
        goto out;
    }
    if (H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, (hsize_t)i, buf, (size_t)len + 1,
                           H5P_DEFAULT) < 0) {
        st = dm_h5_err(err, "listing a group failed");
        goto out;
    }
    *name = buf;
    buf = NULL;
out:
    dm_free(buf);
    if (gcpl >= 0)
        H5Pclose(gcpl);
    return st;
}

dm_status dm_h5_check_name(const char *what, const char *name, char *err)
{
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0)
        return dm_err(err, DM_E_INPUT, "%s name '%s' cannot name an HDF5 object (empty, '.' or "
                      "contains '/')", what, name ? name : "");
    return DM_OK;
}

dm_status dm_h5_write_dataset(hid_t loc, const char *name, hid_t lcpl, hid_t ftype, hid_t mtype,
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

dm_status dm_h5_write_images(hid_t loc, const char *name, const hsize_t dims[4], const float *x, hid_t *out_d,
                             char *err)
{
    dm_status st = DM_OK;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    const hsize_t chunk[4] = { 1, dims[1], dims[2], dims[3] };
    if ((space = H5Screate_simple(4, dims, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0)
        goto fail;
    if (dims[0] > 0 && (H5Pset_chunk(dcpl, 4, chunk) < 0 ||
                        (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 &&
                         (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0))))
        goto fail;
    if ((d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        goto fail;
    if (dims[0] > 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
        goto fail;
    if (out_d) {
        *out_d = d;
        d = H5I_INVALID_HID;
    }
    goto out;
fail:
    st = dm_h5_err(err, "writing image set '%s' failed", name);
out:
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    return st;
}

dm_status dm_h5_write_file(const char *path, const char *kind, const char *fault, dm_h5_fill_fn fill,
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
    st = dm_atomic_commit(tmp, path, fault, err);
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

dm_status dm_h5_end_read(hid_t file, dm_status st, const char *path, const char *kind,
                         const char *file_kind, char *err)
{
    if (file >= 0 && H5Fclose(file) < 0 && !st)
        st = dm_h5_err(err, "closing failed");
    if (!st)
        return DM_OK;
    if (st == DM_E_NOTFOUND && file >= 0)
        st = DM_E_IO; /* the file exists but lacks a required attribute: corrupt, not missing */
    if (st == DM_E_NOTFOUND)
        dm_err(err, st, "%s %s does not exist", kind, path);
    else if (st == DM_E_IO)
        dm_err_prefix(err, "%s: not a valid %s", path, file_kind);
    else
        dm_err_prefix(err, "reading %s", path);
    return st;
}
