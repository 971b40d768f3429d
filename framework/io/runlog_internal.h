/* runlog_internal.h — the layout of run.h5 as data, shared by its writer (runlog_write.c) and
 * reader (runlog_read.c) so that the two cannot drift apart: the compound row types of /metrics
 * and /eval, and the tables of the /config and /data attributes. Only for runlog_*.c. */
#ifndef DM_IO_RUNLOG_INTERNAL_H
#define DM_IO_RUNLOG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "io/runrec.h"

/* One /metrics/<name> row in memory. */
typedef struct dm_runlog_metric_row {
    int64_t step;
    double wall_s;
    double value;
} dm_runlog_metric_row;

/* One /eval/<metric> row in memory; the strings are vlen (borrowed when written, HDF5's when
 * read). */
typedef struct dm_runlog_eval_row {
    char *sampler;
    int64_t nfe;
    char *settings;
    int64_t n_samples;
    double value;
} dm_runlog_eval_row;

/* Memory (file = 0) or file (little-endian, packed) compound type of a metrics row; caller closes
 * with H5Tclose. */
hid_t dm_runlog_metric_type(int file);
/* The eval row type; vlen strings make the memory layout the natural file layout too. */
hid_t dm_runlog_eval_type(void);

/* How an attribute of a group is held in dm_runrec, and so how it is written and read. */
typedef enum dm_runlog_kind {
    DM_RUNLOG_STR,  /* char *: written only when set; absent reads as NULL */
    DM_RUNLOG_HASH, /* char[65]: always written; absent reads as "", longer than 64 is corrupt */
    DM_RUNLOG_I64,  /* int64_t: absent reads as 0 */
    DM_RUNLOG_F64,  /* double: absent reads as 0 */
} dm_runlog_kind;

typedef struct dm_runlog_field {
    const char *name;   /* the attribute's name */
    dm_runlog_kind kind;
    size_t offset;      /* of the member in dm_runrec */
} dm_runlog_field;

/* A group of the root whose attributes are record fields; attributes are created in table order,
 * which is part of the file's bytes. */
typedef struct dm_runlog_group {
    const char *name;
    int required;       /* reading: a file without this group is not a run file */
    const dm_runlog_field *fields;
    size_t n_fields;
} dm_runlog_group;

extern const dm_runlog_group dm_runlog_config_group; /* /config */
extern const dm_runlog_group dm_runlog_data_group;   /* /data */

/* The type a root attribute is written with, by its name: DM_RUNLOG_I64 or DM_RUNLOG_F64 for
 * the attributes that hold numbers (n_params, wall_s, ...: a table in runlog_layout.c),
 * DM_RUNLOG_STR for every other. dm_runrec holds them all as text; the writer stores a numeric
 * one typed when its text is a number of that type, and the reader turns a typed one back into
 * text. Files written before the table have them as strings, which read as they are. */
dm_runlog_kind dm_runlog_root_kind(const char *name);

#endif
