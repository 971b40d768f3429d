/* png.h — grids of image samples (libpng), written atomically. (Scatters of 2-D points are SVG
 * plots: io/plot.h.) */
#ifndef DM_IO_PNG_H
#define DM_IO_PNG_H

#include <stddef.h>

#include "core/status.h"

/* The largest side of a grid picture in pixels. */
#define DM_PNG_MAX_SIDE 16384

/* n images x (n, c, h, w) with values in [-1, 1] (-1 black, 1 white; outside clipped, NaN black)
 * as a grid of tiles, cols per row (fewer if n < cols), rows = ceil(n / cols), each pixel drawn
 * as a scale x scale block, tiles separated by 1-pixel white gaps (no outer border; empty tiles
 * of the last row white): width cols*(w*scale + 1) - 1, height rows*(h*scale + 1) - 1.
 * Grayscale for c = 1, RGB for c = 3 (channel 0 red); other c are refused. */
dm_status dm_png_grid(const char *path, const float *x, size_t n, size_t c, size_t h, size_t w, size_t cols,
                      int scale, char *err);

#endif
