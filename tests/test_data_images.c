/* test_data_images.c — the image data plug-ins: the IDX reader on small files this test writes
 * (good, plain, wrong magic, truncated, cut gzip, longer than its header, missing), fashion_mnist
 * on such files (values, labels, padding, classes, subsets, count and size errors), fashion_mnist
 * on Debian's dataset-fashion-mnist when installed (under CI=true or DIFFLAB_REQUIRE_DATA=1 its
 * absence is a failure, elsewhere a SKIP line), the missing-package error, and image_mixture's
 * templates, moments and mixture. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "data/datasets.h"
#include "data/idx.h"

#define FM_PKG "/usr/share/datasets/fashion-mnist"

static char tmp_root[512];

/* A fresh folder under DIFFLAB_TEST_TMP (or /tmp). */
static void new_dir(char *dir, size_t size, const char *name)
{
    if (!tmp_root[0]) {
        const char *base = getenv("DIFFLAB_TEST_TMP");
        snprintf(tmp_root, sizeof tmp_root, "%s", base && *base ? base : "/tmp");
        mkdir(tmp_root, 0777);
    }
    snprintf(dir, size, "%s/%s.XXXXXX", tmp_root, name);
    assert_non_null(mkdtemp(dir));
}

/* Remove a folder new_dir made and the files in it. */
static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_int_equal(unlink(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

/* An IDX file: magic, rank big-endian dimensions, then n bytes of data; gzip or plain. */
static void write_idx(const char *path, int gz, unsigned type, int rank, const uint32_t *dims,
                      const uint8_t *data, size_t n)
{
    unsigned char head[16] = {0, 0, (unsigned char)type, (unsigned char)rank};
    for (int d = 0; d < rank; d++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    const size_t hn = 4 + 4 * (size_t)rank;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, head, (unsigned)hn), (int)hn);
        if (n)
            assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(head, 1, hn, f), hn);
        assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
}

/* Pixel p of tiny item i: a distinct first pixel per item, then a ramp through 0..255. */
static uint8_t tiny_pixel(size_t i, size_t p)
{
    return (uint8_t)(p == 0 ? 40 * i + 1 : (i * 37 + p) % 256);
}

/* A split of n 28x28 images (rows x cols) and n_labels labels in dir. */
static void write_split(const char *dir, const char *split, size_t n, uint32_t rows, uint32_t cols,
                        const uint8_t *labels, size_t n_labels)
{
    char path[700];
    uint8_t *im = malloc(n * rows * cols);
    assert_non_null(im);
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < (size_t)rows * cols; p++)
            im[i * rows * cols + p] = tiny_pixel(i, p);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, split);
    write_idx(path, 1, 0x08, 3, (uint32_t[]){(uint32_t)n, rows, cols}, im, n * rows * cols);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    write_idx(path, 1, 0x08, 1, (uint32_t[]){(uint32_t)n_labels}, labels, n_labels);
    free(im);
}

static const uint8_t tiny_train_labels[6] = {3, 7, 3, 1, 9, 0};
static const uint8_t tiny_test_labels[3] = {5, 5, 2};

static void write_tiny(const char *dir)
{
    write_split(dir, "train", 6, 28, 28, tiny_train_labels, 6);
    write_split(dir, "t10k", 3, 28, 28, tiny_test_labels, 3);
}

static dm_status fm_draw(const dm_fashion_mnist_opts *o, dm_data_split split, size_t n, uint64_t seed,
                         float *x, int32_t *labels, char *err)
{
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    dm_status st = dm_data_fashion_mnist.generate(o, split, n, &rng, x, labels, err);
    dm_rng_free(&rng);
    return st;
}

static dm_fashion_mnist_opts fm_opts(const char *dir, int64_t pad)
{
    dm_fashion_mnist_opts o = {.pad = pad};
    assert_true(strlen(dir) < sizeof o.dir); /* DIFFLAB_TEST_TMP is short enough */
    memcpy(o.dir, dir, strlen(dir) + 1);
    return o;
}

static void expect_err(dm_status st, dm_status want, const char *err, const char *part)
{
    if (st != want || !strstr(err, part)) {
        print_error("status %d (want %d), message \"%s\" (want it to contain \"%s\")\n", st, want, err, part);
        fail();
    }
}

/* ---- the IDX reader ------------------------------------------------------------------------- */

static void test_idx_reader(void **state)
{
    (void)state;
    char dir[600], path[700], err[DM_ERR_SIZE];
    new_dir(dir, sizeof dir, "idx");
    const uint8_t data[12] = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
    dm_idx idx;
    /* Good, gzip and plain: dimensions and bytes as written. */
    for (int gz = 0; gz < 2; gz++) {
        snprintf(path, sizeof path, "%s/good%d", dir, gz);
        write_idx(path, gz, 0x08, 3, (uint32_t[]){3, 2, 2}, data, 12);
        assert_int_equal(dm_idx_read(path, 3, &idx, err), DM_OK);
        assert_int_equal(idx.rank, 3);
        assert_true(idx.dims[0] == 3 && idx.dims[1] == 2 && idx.dims[2] == 2 && idx.size == 12);
        assert_memory_equal(idx.data, data, 12);
        dm_idx_free(&idx);
        assert_null(idx.data);
    }
    /* Wrong magic: another rank, another type, a non-zero first byte. */
    snprintf(path, sizeof path, "%s/good1", dir);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err, "magic 0x00000803, want 0x00000801");
    assert_non_null(strstr(err, path));
    assert_null(idx.data);
    snprintf(path, sizeof path, "%s/float", dir);
    write_idx(path, 1, 0x0D, 1, (uint32_t[]){3}, data, 12);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err, "not an IDX file of unsigned bytes");
    snprintf(path, sizeof path, "%s/text", dir);
    FILE *f = fopen(path, "w");
    fputs("hello world, not an IDX file", f);
    fclose(f);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err, "magic 0x68656c6c");
    /* Truncated: fewer items than the header says; a header cut short; a gzip stream cut. */
    snprintf(path, sizeof path, "%s/short", dir);
    write_idx(path, 1, 0x08, 3, (uint32_t[]){5, 2, 2}, data, 12);
    expect_err(dm_idx_read(path, 3, &idx, err), DM_E_INPUT, err,
               "truncated: the header says 5 x 2 x 2 = 20 bytes of data; only 12 follow");
    assert_non_null(strstr(err, path));
    assert_null(idx.data);
    snprintf(path, sizeof path, "%s/head", dir);
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, (const unsigned char[]){0, 0, 8, 3, 0, 0, 0, 5, 0, 0}, 10), 10);
    assert_int_equal(gzclose(g), Z_OK);
    expect_err(dm_idx_read(path, 3, &idx, err), DM_E_INPUT, err,
               "truncated: the header ends after 10 of its 16 bytes");
    uint8_t big[20000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    snprintf(path, sizeof path, "%s/cut", dir);
    write_idx(path, 1, 0x08, 1, (uint32_t[]){20000}, big, sizeof big);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err,
               "truncated: the header says 20000 = 20000 bytes");
    /* Damaged: one compressed byte changed (the gzip CRC or the deflate stream says so). */
    write_idx(path, 1, 0x08, 1, (uint32_t[]){20000}, big, sizeof big);
    assert_int_equal(stat(path, &sb), 0);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, sb.st_size / 2, SEEK_SET);
    const int byte = fgetc(f);
    fseek(f, sb.st_size / 2, SEEK_SET);
    fputc(byte ^ 0x5a, f);
    fclose(f);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_IO, err, "damaged gzip data (zlib: ");
    assert_null(idx.data);
    /* All the data, but the gzip trailer (CRC and length) cut off. */
    write_idx(path, 1, 0x08, 1, (uint32_t[]){20000}, big, sizeof big);
    assert_int_equal(truncate(path, sb.st_size - 4), 0);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err,
               "truncated: the gzip stream ends before its trailer");
    /* Longer than its header; a zero dimension; no file. */
    snprintf(path, sizeof path, "%s/long", dir);
    write_idx(path, 1, 0x08, 1, (uint32_t[]){11}, data, 12);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_INPUT, err,
               "holds more data than its header's 11 = 11 bytes");
    snprintf(path, sizeof path, "%s/zero", dir);
    write_idx(path, 1, 0x08, 3, (uint32_t[]){4, 0, 3}, data, 0);
    expect_err(dm_idx_read(path, 3, &idx, err), DM_E_INPUT, err, "dimension 1 of the header is 0");
    snprintf(path, sizeof path, "%s/absent", dir);
    expect_err(dm_idx_read(path, 1, &idx, err), DM_E_NOTFOUND, err, "cannot open");
    rm_dir(dir);
}

/* ---- fashion_mnist on small files ----------------------------------------------------------- */

static void test_fm_tiny(void **state)
{
    (void)state;
    char dir[600], err[DM_ERR_SIZE];
    new_dir(dir, sizeof dir, "fm_tiny");
    write_tiny(dir);
    dm_fashion_mnist_opts o = fm_opts(dir, 0);
    assert_int_equal(dm_data_fashion_mnist.check(&o, err), DM_OK);
    float x[6 * 784], x2[6 * 784];
    int32_t y[6], y2[6];
    /* The whole train split: a permutation of its items, each pixel 2 (v / 255) - 1. */
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 6, 11, x, y, err), DM_OK);
    int seen[6] = {0};
    size_t moved = 0;
    for (size_t i = 0; i < 6; i++) {
        size_t item = 6;
        for (size_t k = 0; k < 6; k++)
            if (x[i * 784] == (float)(2.0 * (tiny_pixel(k, 0) / 255.0) - 1.0))
                item = k;
        assert_true(item < 6 && !seen[item]);
        seen[item] = 1;
        moved += item != i;
        assert_int_equal(y[i], tiny_train_labels[item]);
        for (size_t p = 0; p < 784; p++)
            assert_true(x[i * 784 + p] == (float)(2.0 * (tiny_pixel(item, p) / 255.0) - 1.0));
    }
    assert_true(moved > 0); /* shuffled, not the file's order */
    /* Same seed, same bits; another seed, another order. */
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 6, 11, x2, y2, err), DM_OK);
    assert_memory_equal(x, x2, sizeof x);
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 6, 12, x2, y2, err), DM_OK);
    assert_memory_not_equal(x, x2, sizeof x);
    /* n beyond the split, named by the trainer's key. */
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 7, 1, x, y, err), DM_E_INPUT, err,
               "train.n_data = 7: the fashion_mnist train split holds 6 images");
    expect_err(fm_draw(&o, DM_DATA_TEST, 4, 1, x, y, err), DM_E_INPUT, err,
               "eval.n_ref = 4: the fashion_mnist test split holds 3 images");
    /* The test split comes from the t10k files. */
    assert_int_equal(fm_draw(&o, DM_DATA_TEST, 3, 1, x, y, err), DM_OK);
    int32_t ysum = 0;
    for (size_t i = 0; i < 3; i++)
        ysum += y[i];
    assert_int_equal(ysum, 5 + 5 + 2);
    /* classes: only garments 3 and 0 (items 0, 2, 5), labelled by their place in the list. */
    double keep[2] = {3, 0};
    o.classes = (dm_reals){keep, 2, 0};
    assert_int_equal(dm_data_fashion_mnist.n_classes(&o), 2);
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 3, 5, x, y, err), DM_OK);
    int32_t want[6] = {0, -1, 0, -1, -1, 1}; /* item -> label */
    for (size_t i = 0; i < 3; i++) {
        size_t item = (size_t)((x[i * 784] + 1.0f) * 127.5f + 0.5f) / 40;
        assert_true(item < 6 && want[item] >= 0);
        assert_int_equal(y[i], want[item]);
    }
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 4, 5, x, y, err), DM_E_INPUT, err,
               "holds 3 images of the classes in data.classes");
    /* Padding: a border of -1, the same items inside. */
    o = fm_opts(dir, 0);
    dm_fashion_mnist_opts o2 = fm_opts(dir, 2);
    float xp[4 * 1024];
    int c, h, w;
    dm_data_shape(&dm_data_fashion_mnist, &o2, &c, &h, &w);
    assert_true(c == 1 && h == 32 && w == 32 && dm_data_fashion_mnist.dim(&o2) == 1024);
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 4, 9, x, y, err), DM_OK);
    assert_int_equal(fm_draw(&o2, DM_DATA_TRAIN, 4, 9, xp, y2, err), DM_OK);
    for (size_t i = 0; i < 4; i++)
        for (size_t r = 0; r < 32; r++)
            for (size_t q = 0; q < 32; q++) {
                const float v = xp[i * 1024 + r * 32 + q];
                if (r < 2 || r >= 30 || q < 2 || q >= 30)
                    assert_true(v == -1.0f);
                else
                    assert_true(v == x[i * 784 + (r - 2) * 28 + q - 2]);
            }
    rm_dir(dir);
}

/* Files that do not belong together, or are not Fashion-MNIST's shape, are refused by name. */
static void test_fm_bad_files(void **state)
{
    (void)state;
    char dir[600], err[DM_ERR_SIZE];
    float x[784];
    new_dir(dir, sizeof dir, "fm_bad");
    write_tiny(dir);
    dm_fashion_mnist_opts o = fm_opts(dir, 0);
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 1, 1, x, NULL, err), DM_OK); /* cached now */
    /* Count mismatch: the cache sees the files changed and reads them again. */
    write_split(dir, "train", 6, 28, 28, tiny_train_labels, 5);
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 1, 1, x, NULL, err), DM_E_INPUT, err,
               "train-labels-idx1-ubyte.gz holds 5 labels but ");
    assert_non_null(strstr(err, "train-images-idx3-ubyte.gz holds 6 images"));
    write_split(dir, "train", 2, 27, 28, tiny_train_labels, 2);
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 1, 1, x, NULL, err), DM_E_INPUT, err,
               "train-images-idx3-ubyte.gz: images of 27x28 pixels; Fashion-MNIST's are 28x28");
    write_split(dir, "train", 2, 28, 28, (const uint8_t[]){4, 10}, 2);
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 1, 1, x, NULL, err), DM_E_INPUT, err,
               "train-labels-idx1-ubyte.gz: item 1 has label 10, outside 0..9");
    /* A wrong magic through the plug-in: the images file holds labels. */
    char path[700];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    write_idx(path, 1, 0x08, 1, (uint32_t[]){3}, tiny_test_labels, 3);
    expect_err(fm_draw(&o, DM_DATA_TEST, 1, 1, x, NULL, err), DM_E_INPUT, err,
               "magic 0x00000801, want 0x00000803");
    assert_non_null(strstr(err, path));
    /* Options the table cannot check. */
    o.pad = 1;
    expect_err(dm_data_fashion_mnist.check(&o, err), DM_E_INPUT, err, "data.pad = 1");
    o.pad = 0;
    double dup[2] = {4, 4}, frac[1] = {2.5};
    o.classes = (dm_reals){dup, 2, 0};
    expect_err(dm_data_fashion_mnist.check(&o, err), DM_E_INPUT, err, "data.classes[1] = 4: listed twice");
    o.classes = (dm_reals){frac, 1, 0};
    expect_err(dm_data_fashion_mnist.check(&o, err), DM_E_INPUT, err, "data.classes[0] = 2.5");
    rm_dir(dir);
}

/* No package: the error says which file and how to install it; check() says it before a run. */
static void test_fm_missing(void **state)
{
    (void)state;
    char dir[600], err[DM_ERR_SIZE], want[DM_ERR_SIZE];
    new_dir(dir, sizeof dir, "fm_empty");
    dm_fashion_mnist_opts o = fm_opts(dir, 0);
    snprintf(want, sizeof want,
             "data.type fashion_mnist: %s/train-images-idx3-ubyte.gz not found: install Debian's "
             "dataset-fashion-mnist (scripts/install-deps.sh)",
             dir);
    assert_int_equal(dm_data_fashion_mnist.check(&o, err), DM_E_NOTFOUND);
    assert_string_equal(err, want);
    float x[784];
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 1, 1, x, NULL, err), DM_E_NOTFOUND);
    assert_string_equal(err, want);
    /* Only the test split present: its check names the train file; its draw works. */
    write_split(dir, "t10k", 3, 28, 28, tiny_test_labels, 3);
    assert_int_equal(dm_data_fashion_mnist.check(&o, err), DM_E_NOTFOUND);
    assert_string_equal(err, want);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/nothing/here", dir);
    o = fm_opts(sub, 0);
    assert_int_equal(fm_draw(&o, DM_DATA_TEST, 1, 1, x, NULL, err), DM_E_NOTFOUND);
    assert_non_null(strstr(err, "nothing/here/train-images-idx3-ubyte.gz not found: install Debian's"));
    rm_dir(dir);
}

/* ---- fashion_mnist on Debian's package ------------------------------------------------------ */

/* The package is there, or: a failure under CI=true or DIFFLAB_REQUIRE_DATA=1, else a SKIP line. */
static int have_package(void)
{
    if (access(FM_PKG "/train-images-idx3-ubyte.gz", R_OK) == 0 &&
        access(FM_PKG "/t10k-images-idx3-ubyte.gz", R_OK) == 0)
        return 1;
    const char *ci = getenv("CI"), *req = getenv("DIFFLAB_REQUIRE_DATA");
    if ((ci && strcmp(ci, "true") == 0) || (req && strcmp(req, "1") == 0))
        fail_msg("Debian's dataset-fashion-mnist is not installed (" FM_PKG "): a failure, not a skip, under "
                 "CI=%s DIFFLAB_REQUIRE_DATA=%s; scripts/install-deps.sh installs it",
                 ci ? ci : "", req ? req : "");
    print_message("SKIP: fashion_mnist on the real data: " FM_PKG " missing (install Debian's "
                  "dataset-fashion-mnist; CI=true or DIFFLAB_REQUIRE_DATA=1 makes this a failure)\n");
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The byte a pixel value came from; fails unless the value is exactly 2 (v / 255) - 1. */
static unsigned byte_of(float v)
{
    const long b = lrint((v + 1.0) * 127.5);
    if (b < 0 || b > 255 || v != (float)(2.0 * (b / 255.0) - 1.0)) {
        print_error("pixel %.9g is not 2 (v / 255) - 1 for a byte v\n", (double)v);
        fail();
    }
    return (unsigned)b;
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Shapes, pixel levels, the whole test split as a permutation of the file's, 1000 per class,
 * padding; and the load time of the train split. */
static void test_fm_real(void **state)
{
    (void)state;
    if (!have_package())
        skip();
    char err[DM_ERR_SIZE];
    dm_fashion_mnist_opts o = fm_opts(FM_PKG, 0), o2 = fm_opts(FM_PKG, 2);
    assert_int_equal(dm_data_fashion_mnist.check(&o, err), DM_OK);
    int c, h, w;
    dm_data_shape(&dm_data_fashion_mnist, &o, &c, &h, &w);
    assert_true(c == 1 && h == 28 && w == 28 && dm_data_fashion_mnist.dim(&o) == 784);
    assert_int_equal(dm_data_fashion_mnist.n_classes(&o), 10);

    const size_t N = 10000;
    float *x = malloc(sizeof *x * N * 1024);
    int32_t *y = malloc(sizeof *y * N);
    assert_true(x && y);
    double t0 = now();
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 1000, 1, x, y, err), DM_OK);
    double t1 = now();
    assert_int_equal(fm_draw(&o, DM_DATA_TRAIN, 1000, 2, x, y, err), DM_OK);
    double t2 = now();
    print_message("fashion_mnist train split: first draw of 1000 (decode 60000 images, cache) %.3f s, "
                  "second draw %.2f ms\n",
                  t1 - t0, 1e3 * (t2 - t1));

    /* The whole test split. */
    t0 = now();
    assert_int_equal(fm_draw(&o, DM_DATA_TEST, N, 3, x, y, err), DM_OK);
    print_message("fashion_mnist test split: first draw of all 10000 %.3f s\n", now() - t0);
    size_t count[10] = {0};
    float lo = 1.0f, hi = -1.0f;
    uint8_t *img = malloc(784);
    uint64_t *hd = malloc(sizeof *hd * N), *hf = malloc(sizeof *hf * N);
    assert_true(img && hd && hf);
    for (size_t i = 0; i < N; i++) {
        assert_true(y[i] >= 0 && y[i] < 10);
        count[y[i]]++;
        for (size_t p = 0; p < 784; p++) {
            const float v = x[i * 784 + p];
            assert_true(v >= -1.0f && v <= 1.0f);
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            img[p] = (uint8_t)byte_of(v);
        }
        hd[i] = fnv(img, 784) ^ (uint64_t)y[i];
    }
    assert_true(lo == -1.0f && hi == 1.0f);
    for (int k = 0; k < 10; k++)
        assert_int_equal(count[k], 1000);
    /* As a multiset, the draw is the file's items with their labels. */
    dm_idx im, lb;
    assert_int_equal(dm_idx_read(FM_PKG "/t10k-images-idx3-ubyte.gz", 3, &im, err), DM_OK);
    assert_int_equal(dm_idx_read(FM_PKG "/t10k-labels-idx1-ubyte.gz", 1, &lb, err), DM_OK);
    assert_true(im.dims[0] == N && lb.dims[0] == N);
    for (size_t i = 0; i < N; i++)
        hf[i] = fnv(im.data + i * 784, 784) ^ lb.data[i];
    qsort(hd, N, sizeof *hd, cmp_u64);
    qsort(hf, N, sizeof *hf, cmp_u64);
    assert_memory_equal(hd, hf, sizeof *hd * N);
    dm_idx_free(&im);
    dm_idx_free(&lb);

    /* pad: 2 — the same items (same stream) inside a border of -1. */
    dm_data_shape(&dm_data_fashion_mnist, &o2, &c, &h, &w);
    assert_true(c == 1 && h == 32 && w == 32);
    float *xp = malloc(sizeof *xp * 500 * 1024);
    assert_non_null(xp);
    assert_int_equal(fm_draw(&o, DM_DATA_TEST, 500, 4, x, y, err), DM_OK);
    assert_int_equal(fm_draw(&o2, DM_DATA_TEST, 500, 4, xp, NULL, err), DM_OK);
    for (size_t i = 0; i < 500; i++)
        for (size_t r = 0; r < 32; r++)
            for (size_t q = 0; q < 32; q++) {
                const float v = xp[i * 1024 + r * 32 + q];
                if (r < 2 || r >= 30 || q < 2 || q >= 30)
                    assert_true(v == -1.0f);
                else
                    assert_true(v == x[i * 784 + (r - 2) * 28 + q - 2]);
            }
    free(xp), free(img), free(hd), free(hf), free(x), free(y);
}

/* Subsets: reproducible from the seed, another seed another subset, not the file's first n;
 * n beyond a split refused naming its size and the key; classes. */
static void test_fm_real_subsets(void **state)
{
    (void)state;
    if (!have_package())
        skip();
    char err[DM_ERR_SIZE];
    dm_fashion_mnist_opts o = fm_opts(FM_PKG, 0);
    const size_t n = 200;
    float *a = malloc(sizeof *a * n * 784), *b = malloc(sizeof *b * n * 784);
    int32_t ya[200], yb[200];
    assert_true(a && b);
    dm_idx im;
    assert_int_equal(dm_idx_read(FM_PKG "/t10k-images-idx3-ubyte.gz", 3, &im, err), DM_OK);
    for (int split = 0; split < 2; split++) {
        assert_int_equal(fm_draw(&o, (dm_data_split)split, n, 7, a, ya, err), DM_OK);
        assert_int_equal(fm_draw(&o, (dm_data_split)split, n, 7, b, yb, err), DM_OK);
        assert_memory_equal(a, b, sizeof *a * n * 784);
        assert_memory_equal(ya, yb, sizeof ya);
        assert_int_equal(fm_draw(&o, (dm_data_split)split, n, 8, b, yb, err), DM_OK);
        size_t same = 0;
        for (size_t i = 0; i < n; i++)
            same += memcmp(a + i * 784, b + i * 784, sizeof *a * 784) == 0;
        assert_true(same <= 2); /* the i-th items of two seeds agree with chance 1/10000 each */
    }
    /* Not the file's first n (the last draw above is of the test split). */
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        int eq = 1;
        for (size_t p = 0; p < 784 && eq; p++)
            eq = byte_of(b[i * 784 + p]) == im.data[i * 784 + p];
        first += eq;
    }
    assert_true(first <= 2);
    dm_idx_free(&im);
    free(a), free(b);

    /* Beyond a split: refused, naming the split's size and the trainer's key. */
    float *big = malloc(sizeof *big * 60001 * 784); /* never written: refused before the first item */
    assert_non_null(big);
    expect_err(fm_draw(&o, DM_DATA_TEST, 10001, 1, big, NULL, err), DM_E_INPUT, err,
               "eval.n_ref = 10001: the fashion_mnist test split holds 10000 images");
    expect_err(fm_draw(&o, DM_DATA_TRAIN, 60001, 1, big, NULL, err), DM_E_INPUT, err,
               "train.n_data = 60001: the fashion_mnist train split holds 60000 images");
    /* classes: sneakers (7) and ankle boots (9) as labels 0 and 1, 1000 of each in the test split. */
    double keep[2] = {7, 9};
    o.classes = (dm_reals){keep, 2, 0};
    int32_t *y = malloc(sizeof *y * 2000);
    assert_non_null(y);
    assert_int_equal(fm_draw(&o, DM_DATA_TEST, 2000, 1, big, y, err), DM_OK);
    size_t ones = 0;
    for (size_t i = 0; i < 2000; i++) {
        assert_true(y[i] == 0 || y[i] == 1);
        ones += (size_t)y[i];
    }
    assert_int_equal(ones, 1000);
    expect_err(
        fm_draw(&o, DM_DATA_TEST, 2001, 1, big, NULL, err), DM_E_INPUT, err,
        "eval.n_ref = 2001: the fashion_mnist test split holds 2000 images of the classes in data.classes");
    free(y), free(big);
}

/* ---- shapes of point data ------------------------------------------------------------------- */

static void test_point_shapes(void **state)
{
    (void)state;
    static double w2[1] = {1.0}, mu3[3] = {0.0, 1.0, 2.0}, s1[1] = {0.5};
    dm_gmm_opts g = {.weights = {w2, 1, 0}, .means = {mu3, 3, 1}, .stds = {s1, 1, 0}};
    dm_moons_opts m = {.noise = 0.1};
    int c, h, w;
    assert_null(dm_data_moons.shape);
    assert_null(dm_data_gmm_ops.shape);
    dm_data_shape(&dm_data_moons, &m, &c, &h, &w);
    assert_true(c == 2 && h == 1 && w == 1);
    dm_data_shape(&dm_data_gmm_ops, &g, &c, &h, &w);
    assert_true(c == 3 && h == 1 && w == 1);
    dm_image_mixture_opts im = {.c = 3, .h = 16, .w = 12, .k = 5, .std = 0.1};
    dm_data_shape(&dm_data_image_mixture, &im, &c, &h, &w);
    assert_true(c == 3 && h == 16 && w == 12);
    assert_int_equal(dm_data_image_mixture.dim(&im), 3 * 16 * 12);
    assert_int_equal(dm_data_image_mixture.n_classes(&im), 5);
}

/* ---- image_mixture -------------------------------------------------------------------------- */

static double *templates(const dm_image_mixture_opts *o)
{
    double *mu = malloc(sizeof *mu * (size_t)(o->k * o->c * o->h * o->w));
    assert_non_null(mu);
    dm_image_mixture_templates(o, mu);
    return mu;
}

/* Templates are -1/+1 images, pairwise far apart at every size and seed; the seed moves them;
 * colour channels follow the template's colour. */
static void test_im_templates(void **state)
{
    (void)state;
    const int64_t sizes[][2] = {{8, 8}, {8, 16}, {16, 16}, {28, 28}, {32, 32}};
    size_t worst = SIZE_MAX;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (int64_t seed = 0; seed < 6; seed++) {
            dm_image_mixture_opts o = {.c = 1,
                                       .h = sizes[z][0],
                                       .w = sizes[z][1],
                                       .k = DM_IMAGE_MIXTURE_KINDS,
                                       .std = 0.2,
                                       .seed = seed};
            const size_t d = (size_t)(o.h * o.w), k = (size_t)o.k;
            double *mu = templates(&o);
            for (size_t j = 0; j < k; j++) {
                size_t fg = 0;
                for (size_t p = 0; p < d; p++) {
                    assert_true(mu[j * d + p] == -1.0 || mu[j * d + p] == 1.0);
                    fg += mu[j * d + p] > 0;
                }
                assert_true(fg >= 4 && fg <= d - 4); /* a shape, on a background */
                for (size_t i = 0; i < j; i++) {
                    size_t diff = 0;
                    for (size_t p = 0; p < d; p++)
                        diff += mu[i * d + p] != mu[j * d + p];
                    if (diff < worst)
                        worst = diff;
                    if (diff < d / 16) {
                        print_error("%lldx%lld seed %lld: templates %zu and %zu differ in %zu pixels only\n",
                                    (long long)o.h, (long long)o.w, (long long)seed, i, j, diff);
                        fail();
                    }
                }
            }
            free(mu);
        }
    print_message("image_mixture: any two templates differ in at least %zu pixels\n", worst);
    /* The seed places them: two seeds, other templates; one seed, the same. */
    dm_image_mixture_opts a = {.c = 1, .h = 16, .w = 16, .k = 6, .std = 0.2, .seed = 0}, b = a;
    b.seed = 1;
    double *ma = templates(&a), *mb = templates(&b), *ma2 = templates(&a);
    assert_memory_equal(ma, ma2, sizeof *ma * 6 * 256);
    assert_memory_not_equal(ma, mb, sizeof *ma * 6 * 256);
    /* Colour: channel ch of template j is its gray shape where bit ch of (j mod 7) + 1 is set. */
    dm_image_mixture_opts col = a;
    col.c = 3;
    double *mc = templates(&col);
    for (size_t j = 0; j < 6; j++)
        for (size_t ch = 0; ch < 3; ch++)
            for (size_t p = 0; p < 256; p++) {
                const int on = (int)((j % 7 + 1) >> ch) & 1;
                assert_true(mc[(j * 3 + ch) * 256 + p] == (on ? ma[j * 256 + p] : -1.0));
            }
    free(ma), free(mb), free(ma2), free(mc);
}

static void im_draw(const dm_image_mixture_opts *o, size_t n, uint64_t seed, float *x, int32_t *y)
{
    char err[DM_ERR_SIZE];
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, seed, err), DM_OK);
    dm_status st = dm_data_image_mixture.generate(o, DM_DATA_TEST, n, &rng, x, y, err);
    if (st)
        fail_msg("%s", err);
    dm_rng_free(&rng);
}

/* Per template: its share of the points, and per pixel the mean (the template) and the std
 * (data.std), each within 4.5 standard errors. */
static void test_im_moments(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_image_mixture_opts o = {.c = 1, .h = 8, .w = 8, .k = 4, .std = 0.2, .seed = 3};
    const size_t N = 40000, d = 64, k = 4;
    float *x = malloc(sizeof *x * N * d), *x2 = malloc(sizeof *x2 * N * d);
    int32_t *y = malloc(sizeof *y * N), *y2 = malloc(sizeof *y2 * N);
    assert_true(x && x2 && y && y2);
    im_draw(&o, N, 5, x, y);
    im_draw(&o, N, 5, x2, y2);
    assert_memory_equal(x, x2, sizeof *x * N * d);
    assert_memory_equal(y, y2, sizeof *y * N);
    im_draw(&o, N, 6, x2, y2);
    assert_memory_not_equal(x, x2, sizeof *x * N * d);
    double *mu = templates(&o), *s1 = calloc(k * d, sizeof *s1), *s2 = calloc(k * d, sizeof *s2);
    size_t cnt[4] = {0};
    assert_true(s1 && s2);
    for (size_t i = 0; i < N; i++) {
        assert_true(y[i] >= 0 && y[i] < 4);
        cnt[y[i]]++;
        for (size_t p = 0; p < d; p++)
            s1[y[i] * d + p] += x[i * d + p];
    }
    for (size_t i = 0; i < N; i++)
        for (size_t p = 0; p < d; p++) {
            const double e = x[i * d + p] - s1[y[i] * d + p] / (double)cnt[y[i]];
            s2[y[i] * d + p] += e * e;
        }
    double worst_m = 0, worst_s = 0;
    for (size_t j = 0; j < k; j++) {
        const double nj = (double)cnt[j], p = 1.0 / (double)k;
        assert_true(fabs(nj / (double)N - p) <= 4.5 * sqrt(p * (1 - p) / (double)N));
        for (size_t q = 0; q < d; q++) {
            const double m = s1[j * d + q] / nj, sd = sqrt(s2[j * d + q] / (nj - 1));
            const double zm = fabs(m - mu[j * d + q]) / (o.std / sqrt(nj));
            const double zs = fabs(sd - o.std) / (o.std / sqrt(2 * nj));
            worst_m = fmax(worst_m, zm);
            worst_s = fmax(worst_s, zs);
        }
    }
    print_message(
        "image_mixture 8x8, k 4, std 0.2, %zu points: worst pixel mean %.2f se, worst pixel std %.2f se\n", N,
        worst_m, worst_s);
    assert_true(worst_m <= 4.5);
    assert_true(worst_s <= 4.5);
    free(mu), free(s1), free(s2), free(x), free(x2), free(y), free(y2);

    /* Options the table bounds say, checked again for callers without a spec. */
    const struct {
        dm_image_mixture_opts o;
        const char *msg;
    } bad[] = {
        {{.c = 4, .h = 8, .w = 8, .k = 4, .std = 0.2}, "data.c = 4"},
        {{.c = 1, .h = 7, .w = 8, .k = 4, .std = 0.2}, "data.h = 7"},
        {{.c = 1, .h = 8, .w = 33, .k = 4, .std = 0.2}, "data.w = 33"},
        {{.c = 1, .h = 8, .w = 8, .k = 13, .std = 0.2}, "data.k = 13"},
        {{.c = 1, .h = 8, .w = 8, .k = 4, .std = 0.0}, "data.std = 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_err(dm_data_image_mixture.check(&bad[i].o, err), DM_E_INPUT, err, bad[i].msg);
        float one[64];
        dm_rng rng;
        assert_int_equal(dm_rng_init(&rng, 1, err), DM_OK);
        expect_err(dm_data_image_mixture.generate(&bad[i].o, DM_DATA_TRAIN, 1, &rng, one, NULL, err),
                   DM_E_INPUT, err, bad[i].msg);
        dm_rng_free(&rng);
    }
}

/* The mixture handed to the analytic denoiser is the one the points come from: its means are the
 * templates, and under it every point's most likely component is the one that drew it, the mean
 * squared distance to it is std^2 per pixel. */
static void test_im_gmm(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_image_mixture_opts o = {.c = 1, .h = 16, .w = 16, .k = 10, .std = 0.3, .seed = 2};
    dm_gmm g;
    assert_int_equal(dm_data_gmm(&dm_data_image_mixture, &o, &g, err), DM_OK);
    const size_t k = 10, d = 256, N = 5000;
    assert_true(g.k == k && g.dim == d && g.n_classes == k);
    double *mu = templates(&o);
    assert_memory_equal(g.mu, mu, sizeof *mu * k * d);
    for (size_t j = 0; j < k; j++)
        assert_true(g.w[j] == 0.1 && g.s[j] == 0.3 && g.cls[j] == (int32_t)j);
    float *x = malloc(sizeof *x * N * d);
    int32_t *y = malloc(sizeof *y * N);
    assert_true(x && y);
    im_draw(&o, N, 9, x, y);
    double ss = 0;
    for (size_t i = 0; i < N; i++) {
        size_t best = 0;
        double best_lp = -INFINITY;
        for (size_t j = 0; j < g.k; j++) {
            double r2 = 0;
            for (size_t p = 0; p < d; p++) {
                const double e = x[i * d + p] - g.mu[j * d + p];
                r2 += e * e;
            }
            const double lp = log(g.w[j]) - 0.5 * r2 / (g.s[j] * g.s[j]) - (double)d * log(g.s[j]);
            if (lp > best_lp)
                best_lp = lp, best = j;
            if ((int32_t)j == y[i])
                ss += r2;
        }
        assert_int_equal(g.cls[best], y[i]);
    }
    /* sum of N d squared normals times std^2: relative standard error sqrt(2 / (N d)). */
    const double var = ss / (double)(N * d);
    assert_true(fabs(var / (0.3 * 0.3) - 1.0) <= 4.5 * sqrt(2.0 / (double)(N * d)));
    dm_gmm_free(&g);
    free(mu), free(x), free(y);
    /* Not a mixture of another shape: bad options are refused; each allocation failing is NOMEM. */
    o.k = 0;
    expect_err(dm_data_gmm(&dm_data_image_mixture, &o, &g, err), DM_E_INPUT, err, "data.k = 0");
    o.k = 10;
    for (long a = 1; a <= 4; a++) {
        dm_alloc_fail_at(a);
        dm_status st = dm_data_gmm(&dm_data_image_mixture, &o, &g, err);
        dm_alloc_fail_at(0);
        assert_int_equal(st, DM_E_NOMEM);
        assert_null(g.mu);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_reader),   cmocka_unit_test(test_fm_tiny),
        cmocka_unit_test(test_fm_bad_files), cmocka_unit_test(test_fm_missing),
        cmocka_unit_test(test_fm_real),      cmocka_unit_test(test_fm_real_subsets),
        cmocka_unit_test(test_point_shapes), cmocka_unit_test(test_im_templates),
        cmocka_unit_test(test_im_moments),   cmocka_unit_test(test_im_gmm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
