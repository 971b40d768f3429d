/* png.h — a scatter picture of 2-D samples over reference data (libpng), written atomically. */
#ifndef DM_IO_PNG_H
#define DM_IO_PNG_H

#include <stddef.h>

#include "core/status.h"

/* x (n, d) drawn dark over ref (m, d) drawn light, first two coordinates, on a size x size
 * canvas whose square window covers the reference set with a margin. */
dm_status dm_png_scatter(const char *path, const float *x, size_t n, const float *ref, size_t m,
                         size_t d, int size, char *err);

#endif
