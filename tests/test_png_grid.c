/* test_png_grid.c — dm_png_grid read back with libpng: picture size, tile placement, gaps, empty
 * tiles, pixel values and their scaling, clipping, gray and RGB, refusals, atomic writing. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/png.h"

static char dir[600];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("DIFFLAB_TEST_TMP");
    mkdir(base && *base ? base : "/tmp", 0777);
    snprintf(dir, sizeof dir, "%s/png_grid.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

/* Files left in dir (the test removes what it wrote; a temporary file left over would count). */
static int n_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

typedef struct picture {
    png_uint_32 width, height;
    int channels;
    unsigned char *px; /* (height, width, channels) */
} picture;

/* Read path with libpng in its own format (8-bit gray or RGB, no alpha). */
static picture read_png(const char *path)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path))
        fail_msg("libpng cannot read %s: %s", path, im.message);
    assert_true(im.format == PNG_FORMAT_GRAY || im.format == PNG_FORMAT_RGB);
    picture p = {im.width, im.height, im.format == PNG_FORMAT_GRAY ? 1 : 3, malloc(PNG_IMAGE_SIZE(im))};
    assert_non_null(p.px);
    if (!png_image_finish_read(&im, NULL, p.px, 0, NULL))
        fail_msg("libpng cannot decode %s: %s", path, im.message);
    return p;
}

static unsigned px(const picture *p, size_t x, size_t y, int ch)
{
    assert_true(x < p->width && y < p->height && ch < p->channels);
    return p->px[(y * p->width + x) * (size_t)p->channels + (size_t)ch];
}

/* The byte a value in [-1, 1] becomes: round(127.5 (v + 1)). */
static unsigned expect_byte(float v)
{
    if (isnan(v) || v <= -1.0f)
        return 0;
    if (v >= 1.0f)
        return 255;
    return (unsigned)lrint(127.5 * ((double)v + 1.0));
}

/* Every pixel of the picture against the grid's layout, each image pixel a scale x scale block. */
static void check_grid(const picture *p, const float *x, size_t n, size_t c, size_t h, size_t w, size_t cols,
                       size_t s)
{
    const size_t rows = (n + cols - 1) / cols;
    assert_int_equal(p->width, cols * (w * s + 1) - 1);
    assert_int_equal(p->height, rows * (h * s + 1) - 1);
    assert_int_equal(p->channels, (int)c);
    for (size_t Y = 0; Y < p->height; Y++)
        for (size_t X = 0; X < p->width; X++) {
            const size_t tr = Y / (h * s + 1), tc = X / (w * s + 1);
            const size_t y = Y % (h * s + 1), q = X % (w * s + 1), i = tr * cols + tc;
            for (size_t ch = 0; ch < c; ch++) {
                unsigned want = 255; /* a gap, or an empty tile */
                if (y < h * s && q < w * s && i < n)
                    want = expect_byte(x[((i * c + ch) * h + y / s) * w + q / s]);
                if (px(p, X, Y, (int)ch) != want) {
                    print_error("pixel (%zu, %zu) channel %zu: %u, want %u (tile %zu)\n", X, Y, ch,
                                px(p, X, Y, (int)ch), want, i);
                    fail();
                }
            }
        }
}

/* 5 gray 3x2 images, 3 per row, scale 2: a 2x3 grid whose last tile is empty; values across the
 * range, beyond it (clipped) and NaN. */
static void test_gray(void **state)
{
    (void)state;
    char path[700], err[DM_ERR_SIZE];
    float x[5 * 6];
    for (size_t i = 0; i < 30; i++)
        x[i] = -1.0f + 2.0f * (float)i / 29.0f;
    x[3] = 2.5f;     /* clipped to white */
    x[4] = -7.0f;    /* clipped to black */
    x[7] = NAN;      /* black */
    x[8] = 0.0f;     /* 127.5 rounds to 128 */
    x[9] = INFINITY; /* white */
    snprintf(path, sizeof path, "%s/gray.png", dir);
    assert_int_equal(dm_png_grid(path, x, 5, 1, 3, 2, 3, 2, err), DM_OK);
    picture p = read_png(path);
    check_grid(&p, x, 5, 1, 3, 2, 3, 2);
    assert_true(p.width == 14 && p.height == 13);
    /* Placement by hand: image 4 (row 1, column 1) starts at (5, 7); its pixel (row 0, col 1)
     * covers x 7..8, y 7..8. */
    for (int d = 0; d < 4; d++)
        assert_int_equal(px(&p, 7 + d % 2, 7 + d / 2, 0), expect_byte(x[4 * 6 + 1]));
    assert_int_equal(px(&p, 4, 0, 0), 255); /* the gap column after tile 0 */
    assert_int_equal(px(&p, 0, 6, 0), 255); /* the gap row */
    assert_int_equal(px(&p, 2, 2, 0), 255); /* image 0 pixel (row 1, col 1) is x[3] = 2.5: clipped */
    assert_int_equal(px(&p, 0, 4, 0), 0);   /* image 0 (2, 0): x[4] = -7 */
    assert_int_equal(px(&p, 7, 0, 0), 0);   /* image 1 (0, 1): x[7] = NaN */
    assert_int_equal(px(&p, 5, 2, 0), 128); /* image 1 (1, 0): x[8] = 0 */
    assert_int_equal(px(&p, 8, 3, 0), 255); /* image 1 (1, 1): x[9] = +inf */
    free(p.px);
    assert_int_equal(unlink(path), 0);

    /* Fewer images than columns: the picture is n tiles wide. */
    snprintf(path, sizeof path, "%s/row.png", dir);
    assert_int_equal(dm_png_grid(path, x, 2, 1, 3, 2, 8, 1, err), DM_OK);
    p = read_png(path);
    check_grid(&p, x, 2, 1, 3, 2, 2, 1);
    free(p.px);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(n_files(), 0);
}

/* RGB: channel 0 red, 1 green, 2 blue, each from its plane of (c, h, w). */
static void test_rgb(void **state)
{
    (void)state;
    char path[700], err[DM_ERR_SIZE];
    enum { N = 7, C = 3, H = 4, W = 5 };
    float x[N * C * H * W];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)sin(0.7 * (double)i) * 1.2f;
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    assert_int_equal(dm_png_grid(path, x, N, C, H, W, 4, 3, err), DM_OK);
    picture p = read_png(path);
    check_grid(&p, x, N, C, H, W, 4, 3);
    /* A pure red pixel: image 6 (row 1, column 2), pixel (2, 3). */
    x[((6 * C + 0) * H + 2) * W + 3] = 1.0f;
    x[((6 * C + 1) * H + 2) * W + 3] = -1.0f;
    x[((6 * C + 2) * H + 2) * W + 3] = -1.0f;
    assert_int_equal(dm_png_grid(path, x, N, C, H, W, 4, 3, err), DM_OK); /* replaced whole */
    free(p.px);
    p = read_png(path);
    const size_t X = 2 * (W * 3 + 1) + 3 * 3, Y = 1 * (H * 3 + 1) + 2 * 3;
    assert_true(px(&p, X, Y, 0) == 255 && px(&p, X, Y, 1) == 0 && px(&p, X, Y, 2) == 0);
    free(p.px);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(n_files(), 0);
}

/* Refusals write nothing; an unwritable place is an error naming the file, no temporary left. */
static void test_refused(void **state)
{
    (void)state;
    char path[700], err[DM_ERR_SIZE];
    float x[2 * 2 * 4] = {0};
    snprintf(path, sizeof path, "%s/bad.png", dir);
    assert_int_equal(dm_png_grid(path, x, 2, 2, 2, 2, 2, 1, err), DM_E_INPUT);
    assert_non_null(strstr(err, "1 (gray) or 3 (RGB) channels, not 2"));
    assert_int_equal(dm_png_grid(path, x, 0, 1, 2, 2, 2, 1, err), DM_E_INPUT);
    assert_int_equal(dm_png_grid(path, x, 2, 1, 2, 2, 0, 1, err), DM_E_INPUT);
    assert_int_equal(dm_png_grid(path, x, 2, 1, 2, 2, 2, 0, err), DM_E_INPUT);
    assert_int_equal(dm_png_grid(path, x, 2, 1, 2, 2, 2, 20000, err), DM_E_INPUT);
    assert_non_null(strstr(err, "exceeds 16384 pixels a side"));
    assert_int_equal(n_files(), 0);
    snprintf(path, sizeof path, "%s/no/such/folder/grid.png", dir);
    dm_status st = dm_png_grid(path, x, 2, 1, 2, 2, 2, 1, err);
    assert_int_not_equal(st, DM_OK);
    assert_non_null(strstr(err, "no/such/folder"));
    assert_int_equal(n_files(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray),
        cmocka_unit_test(test_rgb),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
