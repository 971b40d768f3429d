/* idx.h — reading IDX files of unsigned bytes (the MNIST family's format), gzip-compressed or
 * plain (zlib reads both).
 *
 * An IDX file is a 4-byte magic 0x00 0x00 TYPE RANK, RANK big-endian uint32 dimensions, then the
 * product of the dimensions in items of TYPE, C order. Only TYPE 0x08 (unsigned byte) is read:
 * Fashion-MNIST's images (rank 3: n, rows, cols) and labels (rank 1: n). */
#ifndef DM_DATA_IDX_H
#define DM_DATA_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DM_IDX_MAX_RANK 3

typedef struct dm_idx {
    int rank;
    uint32_t dims[DM_IDX_MAX_RANK]; /* dims[0] is the number of items */
    size_t size;                    /* bytes of data: the product of the dimensions */
    uint8_t *data;                  /* (dims...) */
} dm_idx;

/* Read the IDX file at path, which must hold unsigned bytes of the given rank (1..3). Errors name
 * the file: missing (DM_E_NOTFOUND), a wrong magic, a zero dimension, data shorter or longer than
 * the header says (DM_E_INPUT), a gzip or read error (DM_E_IO). The caller frees with
 * dm_idx_free. */
dm_status dm_idx_read(const char *path, int rank, dm_idx *out, char *err);
void dm_idx_free(dm_idx *idx);

#endif
