/* fashion_mnist.c — the `fashion_mnist` data plug-in: Zalando's Fashion-MNIST from Debian's
 * dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, four gzipped IDX files).
 *
 *   data: {type: fashion_mnist, pad: 0, classes: []}
 *
 * Items are (1, 28, 28) images, or (1, 32, 32) with pad: 2 (a border of 2 pixels of the
 * background -1), pixel v in 0..255 scaled to 2 (v / 255) - 1 in [-1, 1]; labels are the ten
 * garments 0..9 (T-shirt/top, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle
 * boot), or with `classes` the position of the garment in that list (classes: [7, 9] makes
 * sneakers 0 and ankle boots 1). The train split is the file's 60000 training images, the test
 * split its 10000 test images (the trainer's reference set).
 *
 * n items of a split are drawn without replacement by a partial Fisher-Yates shuffle of the
 * split's item indices (those of the kept classes, in file order): draw i swaps position i with
 * i + dm_rng_int(rng, m - i). So a subset is reproducible from the stream, not the file's first n,
 * and n = m is a permutation of the whole split. n beyond the split's size is refused.
 *
 * Each split is decoded once per process and cached, keyed by its folder and its files' identity
 * (device, inode, size, mtime); the cache's images are read-only, its index array is the shuffle's
 * scratch (under a lock), so a call allocates nothing beyond its output. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data/datasets.h"
#include "data/idx.h"

#define FM_DIR "/usr/share/datasets/fashion-mnist"
#define FM_SIDE 28
#define FM_CLASSES 10

/* One decoded split and the identity of the files it came from. */
typedef struct fm_split {
    char dir[DM_OPT_STR_MAX];
    struct stat id[2]; /* images, labels */
    size_t n;
    uint8_t *images; /* (n, 28, 28) */
    uint8_t *labels; /* (n) */
    uint32_t *order; /* (n) the shuffle's scratch */
} fm_split;

static fm_split cache[2]; /* DM_DATA_TRAIN, DM_DATA_TEST */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const split_file[2] = {"train", "t10k"};
static const char *const split_name[2] = {"train", "test"};
static const char *const split_key[2] = {"train.n_data", "eval.n_ref"};

static void file_path(char *buf, size_t size, const char *dir, dm_data_split split, int labels)
{
    snprintf(buf, size, "%s/%s-%s", dir, split_file[split],
             labels ? "labels-idx1-ubyte.gz" : "images-idx3-ubyte.gz");
}

/* stat the file, or the error a missing package deserves. */
static dm_status find_file(const char *path, struct stat *sb, char *err)
{
    if (stat(path, sb) == 0)
        return DM_OK;
    if (errno == ENOENT || errno == ENOTDIR)
        return dm_err(err, DM_E_NOTFOUND,
                      "data.type fashion_mnist: %s not found: install Debian's dataset-fashion-mnist "
                      "(scripts/install-deps.sh)",
                      path);
    return dm_err(err, DM_E_IO, "data.type fashion_mnist: %s: %s", path, strerror(errno));
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void split_free(fm_split *s)
{
    dm_free(s->images);
    dm_free(s->labels);
    dm_free(s->order);
    memset(s, 0, sizeof *s);
}

/* The images and labels files of a split, checked against each other; under cache_lock. */
static dm_status split_load(const char *dir, dm_data_split split, char *err)
{
    char path[2][DM_OPT_STR_MAX + 64];
    struct stat id[2];
    dm_status st;
    for (int f = 0; f < 2; f++) {
        file_path(path[f], sizeof path[f], dir, split, f);
        if ((st = find_file(path[f], &id[f], err)))
            return st;
    }
    fm_split *c = &cache[split];
    if (c->images && strcmp(c->dir, dir) == 0 && same_file(&c->id[0], &id[0]) && same_file(&c->id[1], &id[1]))
        return DM_OK;
    dm_idx im, lb;
    if ((st = dm_idx_read(path[0], 3, &im, err)))
        return st;
    if ((st = dm_idx_read(path[1], 1, &lb, err))) {
        dm_idx_free(&im);
        return st;
    }
    if (im.dims[1] != FM_SIDE || im.dims[2] != FM_SIDE)
        st = dm_err(err, DM_E_INPUT, "%s: images of %ux%u pixels; Fashion-MNIST's are %dx%d", path[0],
                    im.dims[1], im.dims[2], FM_SIDE, FM_SIDE);
    else if (lb.dims[0] != im.dims[0])
        st = dm_err(err, DM_E_INPUT,
                    "%s holds %u labels but %s holds %u images: the files do not belong together", path[1],
                    lb.dims[0], path[0], im.dims[0]);
    for (size_t i = 0; st == DM_OK && i < lb.size; i++)
        if (lb.data[i] >= FM_CLASSES)
            st = dm_err(err, DM_E_INPUT, "%s: item %zu has label %u, outside 0..%d", path[1], i, lb.data[i],
                        FM_CLASSES - 1);
    uint32_t *order = st == DM_OK ? dm_malloc(sizeof *order * lb.size) : NULL;
    if (st == DM_OK && !order)
        st = dm_err(err, DM_E_NOMEM, "out of memory for the index of %zu images", lb.size);
    if (st != DM_OK) {
        dm_idx_free(&im);
        dm_idx_free(&lb);
        return st;
    }
    split_free(c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    c->id[0] = id[0];
    c->id[1] = id[1];
    c->n = lb.size;
    c->images = im.data;
    c->labels = lb.data;
    c->order = order;
    return DM_OK;
}

static dm_status fm_check(const void *opts, char *err)
{
    const dm_fashion_mnist_opts *o = opts;
    if (o->pad != 0 && o->pad != 2)
        return dm_err(err, DM_E_INPUT, "data.pad = %lld: 0 (28x28) or 2 (32x32, a border of -1)",
                      (long long)o->pad);
    const dm_reals *c = &o->classes;
    if (c->rows != 0)
        return dm_err(err, DM_E_INPUT,
                      "data.classes: a flat list of garment labels 0..9, not a list of rows");
    for (size_t j = 0; j < c->n; j++) {
        if (!(c->v[j] >= 0.0 && c->v[j] < FM_CLASSES && c->v[j] == (double)(int)c->v[j]))
            return dm_err(err, DM_E_INPUT, "data.classes[%zu] = %g: garment labels are integers 0..9", j,
                          c->v[j]);
        for (size_t i = 0; i < j; i++)
            if (c->v[i] == c->v[j])
                return dm_err(err, DM_E_INPUT, "data.classes[%zu] = %g: listed twice (also at [%zu])", j,
                              c->v[j], i);
    }
    if (!o->dir[0])
        return dm_err(err, DM_E_INPUT, "data.dir: empty; the folder of the IDX files (default " FM_DIR ")");
    /* A missing package stops the run before anything is written. */
    for (int s = 0; s < 2; s++)
        for (int f = 0; f < 2; f++) {
            char path[DM_OPT_STR_MAX + 64];
            struct stat sb;
            file_path(path, sizeof path, o->dir, (dm_data_split)s, f);
            dm_status st = find_file(path, &sb, err);
            if (st)
                return st;
        }
    return DM_OK;
}

static size_t fm_side(const void *opts)
{
    const dm_fashion_mnist_opts *o = opts;
    return FM_SIDE + 2 * (size_t)(o->pad > 0 ? o->pad : 0);
}

static size_t fm_dim(const void *opts)
{
    return fm_side(opts) * fm_side(opts);
}

static size_t fm_n_classes(const void *opts)
{
    const dm_fashion_mnist_opts *o = opts;
    return o->classes.n ? o->classes.n : FM_CLASSES;
}

static void fm_shape(const void *opts, int *c, int *h, int *w)
{
    *c = 1;
    *h = *w = (int)fm_side(opts);
}

/* Draw order: one dm_rng_int per item (the partial Fisher-Yates shuffle), nothing else. */
static dm_status fm_generate(const void *opts, dm_data_split split, size_t n, dm_rng *rng, float *x,
                             int32_t *labels, char *err)
{
    if (!opts || (n > 0 && !x) || (split != DM_DATA_TRAIN && split != DM_DATA_TEST))
        return dm_err(err, DM_E_INTERNAL, "fashion_mnist generator called with a bad argument");
    const dm_fashion_mnist_opts *o = opts;
    dm_status st = fm_check(o, err);
    if (st)
        return st;
    int32_t map[FM_CLASSES]; /* garment -> label, -1: not kept */
    for (int g = 0; g < FM_CLASSES; g++)
        map[g] = o->classes.n ? -1 : g;
    for (size_t j = 0; j < o->classes.n; j++)
        map[(int)o->classes.v[j]] = (int32_t)j;
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)(2.0 * (v / 255.0) - 1.0);
    const size_t side = fm_side(o), pad = (size_t)o->pad, dim = side * side;

    pthread_mutex_lock(&cache_lock);
    if ((st = split_load(o->dir, split, err)))
        goto out;
    const fm_split *c = &cache[split];
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++)
        if (map[c->labels[i]] >= 0)
            c->order[m++] = (uint32_t)i;
    if (n > m) {
        st = dm_err(err, DM_E_INPUT,
                    "%s = %zu: the fashion_mnist %s split holds %zu images%s; draw at most that many",
                    split_key[split], n, split_name[split], m,
                    o->classes.n ? " of the classes in data.classes" : "");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const size_t j = i + (size_t)dm_rng_int(rng, (unsigned long)(m - i));
        const uint32_t item = c->order[j];
        c->order[j] = c->order[i];
        c->order[i] = item;
        const uint8_t *src = c->images + (size_t)item * FM_SIDE * FM_SIDE;
        float *dst = x + i * dim;
        for (size_t p = 0; p < dim; p++)
            dst[p] = -1.0f;
        for (size_t y = 0; y < FM_SIDE; y++)
            for (size_t q = 0; q < FM_SIDE; q++)
                dst[(y + pad) * side + q + pad] = lut[src[y * FM_SIDE + q]];
        if (labels)
            labels[i] = map[c->labels[item]];
    }
out:
    pthread_mutex_unlock(&cache_lock);
    return st;
}

static const dm_param_desc fm_params[] = {
    {"dir", DM_OPT_STR, FM_DIR, 0, 0, NULL, 0, offsetof(dm_fashion_mnist_opts, dir),
     "folder of {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (Debian's dataset-fashion-mnist)"},
    {"pad", DM_OPT_INT, "0", 0, 2, NULL, 0, offsetof(dm_fashion_mnist_opts, pad),
     "0: 28x28; 2: 32x32 with a border of 2 background pixels (-1)"},
    {"classes", DM_OPT_REALS, "[]", 0.0, 9.0, NULL, 0, offsetof(dm_fashion_mnist_opts, classes),
     "garments to keep (0..9; label = position in this list); empty: all ten"},
    DM_OPT_END,
};

const dm_data_ops dm_data_fashion_mnist = {
    .info =
        {"fashion_mnist",
         "Fashion-MNIST 28x28 grayscale garments in [-1, 1] (Debian's dataset-fashion-mnist); train split "
         "60000, test split (the reference set) 10000; label = garment 0..9",
         fm_params, sizeof(dm_fashion_mnist_opts)},
    .dim = fm_dim,
    .n_classes = fm_n_classes,
    .check = fm_check,
    .generate = fm_generate,
    .shape = fm_shape,
};
