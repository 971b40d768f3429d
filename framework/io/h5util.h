/* h5util.h — private helpers of the io layer: atomic file replacement (atomic.c) and the small
 * HDF5 vocabulary shared by run.h5 and checkpoint.h5 (h5util.c): whole files written atomically,
 * datasets and typed scalar attributes, and one way of reporting a failed read. Not part of the
 * public API. */
#ifndef DM_IO_H5UTIL_H
#define DM_IO_H5UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "core/status.h"

/* ---- HDF5 (h5util.c) ---- */

/* Silence HDF5's automatic printing of its error stack for the duration of a public call, and
 * put the previous handler back afterwards (HDF5's handler is per-thread library state). */
typedef struct dm_h5_quiet {
    H5E_auto2_t func;
    void *data;
} dm_h5_quiet;
void dm_h5_quiet_begin(dm_h5_quiet *q);
void dm_h5_quiet_end(const dm_h5_quiet *q);

/* Format a message, append HDF5's innermost error description (taken from the current error
 * stack, so call it right after the failing HDF5 call), return DM_E_IO. */
dm_status dm_h5_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Create a new file (truncating) with creation order tracked for links and attributes, so that
 * readers get things back in the order they were written. */
dm_status dm_h5_create(const char *path, hid_t *file, char *err);
/* Open an existing file read-only; DM_E_NOTFOUND if it does not exist, DM_E_IO otherwise. */
dm_status dm_h5_open(const char *path, hid_t *file, char *err);
/* A group created with link creation order tracked (closes with H5Gclose). */
hid_t dm_h5_group_create(hid_t loc, const char *name);
/* Link creation property list that creates intermediate groups ("a/b/c"). */
hid_t dm_h5_lcpl_nested(void);

dm_status dm_h5_write_str_attr(hid_t loc, const char *name, const char *value, char *err);
dm_status dm_h5_write_i64_attr(hid_t loc, const char *name, int64_t v, char *err);
dm_status dm_h5_write_u64_attr(hid_t loc, const char *name, uint64_t v, char *err);
dm_status dm_h5_write_f64_attr(hid_t loc, const char *name, double v, char *err);

/* Readers: a missing attribute is DM_E_NOTFOUND (no message needed by callers that accept it),
 * a present one of the wrong kind DM_E_IO. Strings are allocated with dm_malloc. */
dm_status dm_h5_read_str_attr(hid_t loc, const char *name, char **out, char *err);
dm_status dm_h5_read_i64_attr(hid_t loc, const char *name, int64_t *v, char *err);
dm_status dm_h5_read_u64_attr(hid_t loc, const char *name, uint64_t *v, char *err);
dm_status dm_h5_read_f64_attr(hid_t loc, const char *name, double *v, char *err);
/* Scalar or 1-element dataset of a native type. */
dm_status dm_h5_read_scalar(hid_t loc, const char *name, hid_t mem_type, void *v, char *err);

/* Number of links in a group and the name of the i-th (in creation order when tracked). */
dm_status dm_h5_nlinks(hid_t g, size_t *n, char *err);
dm_status dm_h5_link_name(hid_t g, size_t i, char **name, char *err);

/* The vlen UTF-8 string type (caller closes with H5Tclose). */
hid_t dm_h5_str_type(void);

/* One dataset of `count` rows (rank 1), an (n, d) array (rank 2) or a scalar (rank 0), written
 * at once; lcpl is H5P_DEFAULT or dm_h5_lcpl_nested(). With out_d the open dataset is handed
 * back (caller closes with H5Dclose), e.g. to attach attributes. */
dm_status dm_h5_write_dataset(hid_t loc, const char *name, hid_t lcpl, hid_t ftype, hid_t mtype,
                              int rank, const hsize_t *dims, const void *buf, hid_t *out_d,
                              char *err);

/* A float32 image set dims = (n, C, H, W) as dataset name of loc, chunked one image per chunk and
 * compressed (shuffle + deflate 4, when HDF5 has deflate); the dataset stays open in *out_d if
 * out_d is not NULL. */
dm_status dm_h5_write_images(hid_t loc, const char *name, const hsize_t dims[4], const float *x, hid_t *out_d,
                             char *err);

/* Write a new HDF5 file at path atomically (atomic.c): fill writes its contents into a fresh
 * temporary file, which is then flushed, closed and committed. HDF5's error printing is silenced
 * meanwhile. Failures before the commit are prefixed "cannot write <kind> <path>". fault names
 * the commit's crash points for tests (dm_atomic_commit), or is NULL. */
typedef dm_status (*dm_h5_fill_fn)(hid_t file, const void *what, char *err);
dm_status dm_h5_write_file(const char *path, const char *kind, const char *fault, dm_h5_fill_fn fill,
                           const void *what, char *err);

/* The end of reading a file opened with dm_h5_open: close it (if open) and turn a failure st into
 * the message every reader gives: "<kind> <path> does not exist" for a missing file,
 * "<path>: not a valid <file_kind>" for a corrupt one (a required attribute missing from an
 * existing file counts as corrupt), "reading <path>: ..." otherwise. Returns the final status. */
dm_status dm_h5_end_read(hid_t file, dm_status st, const char *path, const char *kind,
                         const char *file_kind, char *err);

/* A name usable as one HDF5 link: non-empty, no '/', not "." (else DM_E_INPUT). */
dm_status dm_h5_check_name(const char *what, const char *name, char *err);

#endif
