/* runlog.h — run.h5 and checkpoint.h5 (HDF5, serial C API).
 *
 * Neither file is ever updated in place: each write goes to a temporary file in the same folder
 * (".<name>.tmp.<pid>"), is flushed and fsync'ed, renamed over the old file, and the folder is
 * fsync'ed; so a crash at any instant leaves the last complete version. Files open with h5dump
 * and h5py.
 *
 * run.h5 layout (strings are vlen UTF-8 everywhere; docs/runfiles.md says how h5py reads it):
 *   /            attributes: every dm_runrec attr; int64 n_params, blas_threads, git_dirty and
 *                slurm_*_id, float64 wall_s (runlog_layout.c), strings the others; files
 *                written before had them all as strings and read the same
 *   /config      attributes: yaml (the resolved spec), config_hash, group_hash
 *   /seeds       attribute master (uint64); dataset per stream: scalar uint64
 *   /data        attributes: name, n_train, n_test, dim, channels, height, width (an item's shape;
 *                absent in files written before images), sha256, std
 *   /metrics/<name>   compound dataset {step int64, wall_s float64, value float64}
 *   /samples/<name>   float32 (n, d), or (n, C, H, W) for images (chunked per image, compressed);
 *                     attributes sampler, nfe, settings (JSON)
 *   /eval/<metric>    compound dataset {sampler str, nfe int64, settings str, n_samples int64, value float64}
 *
 * checkpoint.h5: a step attribute and named arrays (dm_ckpt_entry). */
#ifndef DM_IO_RUNLOG_H
#define DM_IO_RUNLOG_H

#include "io/runrec.h"

dm_status dm_runlog_write(const char *path, const dm_runrec *r, char *err);
/* Reads everything written by dm_runlog_write into a fresh record (dm_runrec_init'ed by it).
 * A missing, truncated or corrupt file is DM_E_IO / DM_E_NOTFOUND naming the path. */
dm_status dm_runlog_read(const char *path, dm_runrec *r, char *err);

typedef enum dm_ckpt_type { DM_CKPT_F32, DM_CKPT_F64, DM_CKPT_I64, DM_CKPT_U8 } dm_ckpt_type;

typedef struct dm_ckpt_entry {
    char *name;        /* "params", "ema", "adam_m", "adam_v", "rng/train.batch", ... ('/' nests groups) */
    dm_ckpt_type type;
    size_t count;      /* elements */
    void *data;        /* owned by the dm_ckpt when read; borrowed when written */
} dm_ckpt_entry;

typedef struct dm_ckpt {
    int64_t step;
    dm_ckpt_entry *entries;
    size_t n;
    int owns;          /* set by dm_ckpt_read: data and names are freed by dm_ckpt_free */
} dm_ckpt;

dm_status dm_ckpt_write(const char *path, const dm_ckpt *c, char *err);
dm_status dm_ckpt_read(const char *path, dm_ckpt *c, char *err);
/* The entry called name, or NULL. */
const dm_ckpt_entry *dm_ckpt_find(const dm_ckpt *c, const char *name);
void dm_ckpt_free(dm_ckpt *c);

#endif
