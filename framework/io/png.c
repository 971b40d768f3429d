/* png.c — grids of image samples with libpng, encoded in memory and written atomically
 * (io/atomic.h). */
#include "io/png.h"

#include <math.h>
#include <png.h>
#include <string.h>

#include "core/alloc.h"
#include "io/atomic.h"

typedef struct membuf {
    unsigned char *p;
    size_t n, cap;
    int failed;
} membuf;

static void write_mem(png_structp png, png_bytep data, png_size_t len)
{
    membuf *b = png_get_io_ptr(png);
    if (b->failed)
        return;
    if (b->n + len > b->cap) {
        size_t cap = (b->cap ? 2 * b->cap : 65536) + len;
        unsigned char *q = dm_realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void flush_mem(png_structp png) { (void)png; }

/* img (height, width, channels) 8-bit gray (1) or RGB (3), encoded in memory and written to path
 * atomically (io/atomic.h): the file is the whole picture or absent. */
static dm_status encode(const char *path, const unsigned char *img, size_t width, size_t height, int channels,
                        char *err)
{
    dm_status st = DM_OK;
    membuf b = { 0 };
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *rows = dm_malloc(sizeof *rows * height);
    if (!rows)
        return dm_err(err, DM_E_NOMEM, "out of memory for the rows of '%s'", path);
    for (size_t y = 0; y < height; y++)
        rows[y] = (png_bytep)(img + (size_t)channels * y * width);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        st = dm_err(err, DM_E_NOMEM, "cannot start a PNG for '%s'", path);
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = dm_err(err, DM_E_IO, "libpng failed writing '%s'", path);
        goto out;
    }
    png_set_write_fn(png, &b, write_mem, flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    if (b.failed) {
        st = dm_err(err, DM_E_NOMEM, "out of memory encoding '%s'", path);
        goto out;
    }
    st = dm_write_file_atomic(path, b.p, b.n, err);
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    dm_free(b.p);
    dm_free(rows);
    return st;
}

/* A value in [-1, 1] as a byte: -1 -> 0, 1 -> 255, rounded; outside clipped, NaN as -1. */
static unsigned char to_byte(float v)
{
    if (!(v > -1.0f))
        return 0;
    if (v >= 1.0f)
        return 255;
    return (unsigned char)lrint(127.5 * ((double)v + 1.0));
}

dm_status dm_png_grid(const char *path, const float *x, size_t n, size_t c, size_t h, size_t w, size_t cols,
                      int scale, char *err)
{
    if (c != 1 && c != 3)
        return dm_err(err, DM_E_INPUT, "'%s': a picture grid shows 1 (gray) or 3 (RGB) channels, not %zu",
                      path, c);
    if (n == 0 || h == 0 || w == 0 || cols == 0 || scale < 1)
        return dm_err(err, DM_E_INPUT, "'%s': a picture grid needs images (n = %zu, %zux%zu), columns (%zu) "
                      "and a scale >= 1 (%d)", path, n, h, w, cols, scale);
    if (cols > n)
        cols = n;
    const size_t rows = (n + cols - 1) / cols, s = (size_t)scale;
    const size_t th = h * s, tw = w * s; /* a tile */
    if (h > DM_PNG_MAX_SIDE || w > DM_PNG_MAX_SIDE || s > DM_PNG_MAX_SIDE || cols > DM_PNG_MAX_SIDE ||
        rows > DM_PNG_MAX_SIDE || cols * (tw + 1) > DM_PNG_MAX_SIDE || rows * (th + 1) > DM_PNG_MAX_SIDE)
        return dm_err(err, DM_E_INPUT, "'%s': a grid of %zu x %zu tiles of %zux%zu pixels (scale %d) exceeds "
                      "%d pixels a side", path, rows, cols, h, w, scale, DM_PNG_MAX_SIDE);
    const size_t width = cols * (tw + 1) - 1, height = rows * (th + 1) - 1;
    unsigned char *img = dm_malloc(width * height * c);
    if (!img)
        return dm_err(err, DM_E_NOMEM, "out of memory for a %zux%zu picture ('%s')", width, height, path);
    memset(img, 255, width * height * c); /* gaps and empty tiles white */
    for (size_t i = 0; i < n; i++) {
        const float *item = x + i * c * h * w; /* (c, h, w) */
        const size_t y0 = (i / cols) * (th + 1), x0 = (i % cols) * (tw + 1);
        for (size_t y = 0; y < th; y++)
            for (size_t q = 0; q < tw; q++)
                for (size_t ch = 0; ch < c; ch++)
                    img[((y0 + y) * width + x0 + q) * c + ch] = to_byte(item[(ch * h + y / s) * w + q / s]);
    }
    dm_status st = encode(path, img, width, height, (int)c, err);
    dm_free(img);
    return st;
}
