/* runlog_ckpt.c — checkpoint.h5 (runlog.h): a step attribute and named arrays, written whole and
 * atomically like run.h5 (dm_h5_write_file), read back into owned memory. Entry names with '/'
 * become nested groups, so a reader walks the groups depth first. */
#include "io/runlog.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "io/h5util.h"

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
        st = dm_h5_write_dataset(file, e->name, lcpl, ckpt_file_type(e->type),
                                 ckpt_mem_type(e->type), 1, &n, e->data, NULL, err);
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
    return dm_h5_write_file(path, "checkpoint", "ckpt", fill_ckpt, c, err);
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
    st = dm_h5_end_read(file, st, path, "checkpoint", "checkpoint file", err);
    if (st)
        dm_ckpt_free(c);
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
