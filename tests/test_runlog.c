/* test_runlog.c — run record helpers, run.h5 and checkpoint.h5 round trips, atomic replacement,
 * corrupt files, and allocation failures (each must end in a clean error, no leak). */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
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
#include <hdf5.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "io/atomic.h"
#include "io/runlog.h"
#include "io/runrec.h"

/* ------------------------------------------------------------------ temp folder ---- */

typedef struct fixture {
    char dir[512];
    char path[600];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("DIFFLAB_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0777); /* ctest's folder may not exist yet */
    snprintf(f->dir, sizeof f->dir, "%s/runlog.XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/run.h5", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        char p[1200];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Number of files in dir whose name contains ".tmp." (leftover temporaries). */
static int count_tmp(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            ++n;
    closedir(d);
    return n;
}

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* ------------------------------------------------------------- a full record ---- */

static dm_status build_record(dm_runrec *r, char *err)
{
    dm_status st;
    dm_series *s;
    float x[3 * 2] = {0.5f, -1.25f, 3.0f, 4.5f, -0.0f, 1e-30f};
    float y[1 * 2] = {7.0f, 8.0f};
    dm_runrec_init(r);
    if ((st = dm_runrec_set_attr(r, "run_id", "demo-0123456789-s1", err)) ||
        (st = dm_runrec_set_attr(r, "status", "running", err)) ||
        (st = dm_runrec_set_attr(r, "host", "node-ü-1", err)) ||
        (st = dm_runrec_set_attr(r, "git_dirty", "0", err)) ||
        (st = dm_runrec_set_attr(r, "n_params", "149250", err)) ||
        (st = dm_runrec_set_attr(r, "wall_s", "9.407", err)) ||
        (st = dm_runrec_set_attr(r, "empty", "", err)) ||
        (st = dm_runrec_set_attr(r, "status", "finished", err)))
        return st;
    r->config_yaml = dm_strdup("diffusion:\n  schedule:\n    T: 1000\nname: \"démo\"\n");
    if (!r->config_yaml)
        return DM_E_NOMEM;
    memset(r->config_hash, 'a', 64);
    memset(r->group_hash, 'b', 64);
    r->seed = UINT64_MAX - 5;
    if ((st = dm_runrec_add_seed(r, "master", 1, err)) ||
        (st = dm_runrec_add_seed(r, "train.batch", 0x123456789abcdefULL, err)) ||
        (st = dm_runrec_add_seed(r, "eval", 42, err)))
        return st;
    r->data_name = dm_strdup("moons");
    if (!r->data_name)
        return DM_E_NOMEM;
    r->data_n_train = 10000;
    r->data_n_test = 2000;
    r->data_dim = 2;
    r->data_c = 2;
    r->data_h = r->data_w = 1;
    memset(r->data_sha256, 'c', 64);
    r->data_std = 0.8125;
    if ((st = dm_runrec_series(r, "loss", &s, err)))
        return st;
    for (int i = 0; i < 100 && !st; ++i)
        st = dm_series_push(s, i * 10, i * 0.5, 1.0 / (i + 1), err);
    if (st || (st = dm_runrec_series(r, "empty_series", &s, err)) ||
        (st = dm_runrec_series(r, "lr", &s, err)) || (st = dm_series_push(s, 0, 0.0, 1e-3, err)) ||
        (st = dm_series_push(s, 10, 0.1, NAN, err)))
        return st;
    if ((st = dm_runrec_add_samples(r, "ddpm", 1000, "{\"variance\":\"beta\"}", 3, 2, x, NULL, err)) ||
        (st = dm_runrec_add_samples(r, "ddim", 50, NULL, 1, 2, y, NULL, err)) ||
        (st = dm_runrec_add_samples(r, "heun", 18, "{}", 0, 2, NULL, NULL, err)))
        return st;
    if ((st = dm_runrec_add_eval(r, "swd", "ddpm", 1000, "{\"variance\":\"beta\"}", 3, 0.25, err)) ||
        (st = dm_runrec_add_eval(r, "mmd2", "ddpm", 1000, "{}", 3, -1e-3, err)) ||
        (st = dm_runrec_add_eval(r, "swd", "ddim", 50, "{\"eta\":0}", 1, 0.5, err)))
        return st;
    return DM_OK;
}

static const dm_eval *find_eval(const dm_runrec *r, const dm_eval *e)
{
    for (size_t i = 0; i < r->n_evals; ++i) {
        const dm_eval *o = &r->evals[i];
        if (!strcmp(o->metric, e->metric) && !strcmp(o->sampler, e->sampler) &&
            o->nfe == e->nfe && !strcmp(o->settings_json, e->settings_json))
            return o;
    }
    return NULL;
}

static void same_double(double a, double b)
{
    if (isnan(a))
        assert_true(isnan(b));
    else
        assert_memory_equal(&a, &b, sizeof a);
}

static void assert_records_equal(const dm_runrec *a, const dm_runrec *b)
{
    assert_int_equal(a->n_attrs, b->n_attrs);
    for (size_t i = 0; i < a->n_attrs; ++i) {
        assert_string_equal(a->attrs[i].key, b->attrs[i].key);
        assert_string_equal(a->attrs[i].value, b->attrs[i].value);
    }
    assert_string_equal(a->config_yaml, b->config_yaml);
    assert_string_equal(a->config_hash, b->config_hash);
    assert_string_equal(a->group_hash, b->group_hash);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->n_seeds, b->n_seeds);
    for (size_t i = 0; i < a->n_seeds; ++i) {
        assert_string_equal(a->seeds[i].stream, b->seeds[i].stream);
        assert_true(a->seeds[i].seed == b->seeds[i].seed);
    }
    assert_string_equal(a->data_name, b->data_name);
    assert_int_equal(a->data_n_train, b->data_n_train);
    assert_int_equal(a->data_n_test, b->data_n_test);
    assert_int_equal(a->data_dim, b->data_dim);
    assert_int_equal(a->data_c, b->data_c);
    assert_int_equal(a->data_h, b->data_h);
    assert_int_equal(a->data_w, b->data_w);
    assert_string_equal(a->data_sha256, b->data_sha256);
    same_double(a->data_std, b->data_std);
    assert_int_equal(a->n_series, b->n_series);
    for (size_t i = 0; i < a->n_series; ++i) {
        const dm_series *s = &a->series[i], *t = &b->series[i];
        assert_string_equal(s->name, t->name);
        assert_int_equal(s->n, t->n);
        for (size_t k = 0; k < s->n; ++k) {
            assert_int_equal(s->step[k], t->step[k]);
            same_double(s->wall_s[k], t->wall_s[k]);
            same_double(s->value[k], t->value[k]);
        }
    }
    assert_int_equal(a->n_samples, b->n_samples);
    for (size_t i = 0; i < a->n_samples; ++i) {
        const dm_sample_set *s = &a->samples[i], *t = &b->samples[i];
        assert_string_equal(s->name, t->name);
        assert_string_equal(s->sampler, t->sampler);
        assert_string_equal(s->settings_json, t->settings_json);
        assert_int_equal(s->nfe, t->nfe);
        assert_int_equal(s->n, t->n);
        assert_int_equal(s->d, t->d);
        assert_memory_equal(s->shape, t->shape, sizeof s->shape);
        if (s->n > 0 && s->d > 0)
            assert_memory_equal(s->x, t->x, (size_t)(s->n * s->d) * sizeof(float));
    }
    /* evals come back grouped by metric (one dataset per metric): compare as a set */
    assert_int_equal(a->n_evals, b->n_evals);
    for (size_t i = 0; i < a->n_evals; ++i) {
        const dm_eval *o = find_eval(b, &a->evals[i]);
        assert_non_null(o);
        assert_int_equal(o->n_samples, a->evals[i].n_samples);
        same_double(o->value, a->evals[i].value);
    }
}

/* ----------------------------------------------------------------------- tests ---- */

static void test_runrec_semantics(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_runrec r;
    dm_series *s;
    float x[2] = {1, 2}, y[2] = {3, 4};
    dm_runrec_init(&r);
    assert_int_equal(dm_runrec_set_attr(&r, "a", "1", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&r, "b", "2", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&r, "a", "3", err), DM_OK);
    assert_int_equal(r.n_attrs, 2);
    assert_string_equal(dm_runrec_attr(&r, "a"), "3");
    assert_null(dm_runrec_attr(&r, "zz"));
    assert_int_equal(dm_runrec_add_seed(&r, "m", 1, err), DM_OK);
    assert_int_equal(dm_runrec_add_seed(&r, "m", 2, err), DM_OK);
    assert_int_equal(r.n_seeds, 1);
    assert_true(r.seeds[0].seed == 2);

    assert_int_equal(dm_runrec_series(&r, "loss", &s, err), DM_OK);
    for (int i = 1; i <= 200; ++i)
        assert_int_equal(dm_series_push(s, i, i, i, err), DM_OK);
    assert_int_equal(dm_runrec_series(&r, "loss", &s, err), DM_OK);
    assert_int_equal(r.n_series, 1);
    dm_series_truncate(s, 150);
    assert_int_equal(s->n, 150);
    assert_int_equal(s->step[149], 150);

    const char *name = NULL;
    assert_int_equal(dm_runrec_add_samples(&r, "ddim", 50, NULL, 1, 2, x, &name, err), DM_OK);
    assert_string_equal(name, "ddim_50");
    /* other settings at the same NFE: a set of its own, named by a hash of the settings */
    assert_int_equal(dm_runrec_add_samples(&r, "ddim", 50, "{\"eta\":1}", 1, 2, y, &name, err), DM_OK);
    char hex[65], want[32];
    dm_sha256_hex("{\"eta\":1}", 9, hex);
    snprintf(want, sizeof want, "ddim_50-%.8s", hex);
    assert_string_equal(name, want);
    /* the same settings again replace their set */
    assert_int_equal(dm_runrec_add_samples(&r, "ddim", 50, "{}", 1, 2, y, &name, err), DM_OK);
    assert_string_equal(name, "ddim_50");
    assert_int_equal(dm_runrec_add_samples(&r, "ddim", 10, NULL, 1, 2, y, NULL, err), DM_OK);
    assert_int_equal(r.n_samples, 3);
    assert_string_equal(r.samples[0].name, "ddim_50");
    assert_string_equal(r.samples[0].settings_json, "{}");
    assert_true(r.samples[0].x[0] == 3.0f);
    assert_string_equal(r.samples[1].settings_json, "{\"eta\":1}");

    assert_int_equal(dm_runrec_add_eval(&r, "swd", "ddim", 50, NULL, 100, 0.5, err), DM_OK);
    assert_int_equal(dm_runrec_add_eval(&r, "swd", "ddim", 50, "{}", 200, 0.25, err), DM_OK);
    assert_int_equal(dm_runrec_add_eval(&r, "swd", "ddim", 50, "{\"eta\":1}", 1, 1, err), DM_OK);
    assert_int_equal(dm_runrec_add_eval(&r, "swd", "ddim", 20, "{}", 1, 1, err), DM_OK);
    assert_int_equal(r.n_evals, 3);
    assert_int_equal(r.evals[0].n_samples, 200);
    assert_true(r.evals[0].value == 0.25);
    dm_runrec_free(&r);
}

static void test_roundtrip(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_runrec a, b;
    H5E_auto2_t before_fn = NULL, after_fn = NULL;
    void *before_data = NULL, *after_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &before_fn, &before_data);

    assert_int_equal(build_record(&a, err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_records_equal(&a, &b);
    assert_int_equal(count_tmp(f->dir), 0);

    /* HDF5's error printing is ours to silence only during a call */
    H5Eget_auto2(H5E_DEFAULT, &after_fn, &after_data);
    assert_ptr_equal((void *)before_fn, (void *)after_fn);
    assert_ptr_equal(before_data, after_data);

    /* what was read writes again to the same content */
    char path2[700];
    dm_runrec c;
    snprintf(path2, sizeof path2, "%s/again.h5", f->dir);
    assert_int_equal(dm_runlog_write(path2, &b, err), DM_OK);
    assert_int_equal(dm_runlog_read(path2, &c, err), DM_OK);
    assert_records_equal(&b, &c);
    dm_runrec_free(&a);
    dm_runrec_free(&b);
    dm_runrec_free(&c);
}

/* An image sample set: stored (n, C, H, W), one chunk per image, compressed; read back with its
 * shape beside a set of points. */
static void test_image_samples(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    enum { N = 3, C = 2, H = 3, W = 4, D = C * H * W };
    float x[N * D], p[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < N * D; i++)
        x[i] = 0.25f * (float)i - 3.0f;
    const int32_t shape[3] = { C, H, W };
    dm_runrec a, b;
    dm_runrec_init(&a);
    const char *name = NULL;
    assert_int_equal(dm_runrec_add_image_samples(&a, "heun", 35, NULL, N, shape, x, &name, err), DM_OK);
    assert_string_equal(name, "heun_35");
    assert_int_equal(dm_runrec_add_samples(&a, "ddim", 10, NULL, 2, 2, p, NULL, err), DM_OK);
    const int32_t bad[3] = { 0, 3, 4 };
    assert_int_equal(dm_runrec_add_image_samples(&a, "heun", 35, NULL, N, bad, x, NULL, err), DM_E_INPUT);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_int_equal(b.n_samples, 2);
    assert_int_equal(b.samples[0].n, N);
    assert_int_equal(b.samples[0].d, D);
    assert_int_equal(b.samples[0].shape[0], C);
    assert_int_equal(b.samples[0].shape[1], H);
    assert_int_equal(b.samples[0].shape[2], W);
    assert_memory_equal(b.samples[0].x, x, sizeof x);
    assert_int_equal(b.samples[1].shape[0], 0);
    assert_int_equal(b.samples[1].d, 2);

    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t d = H5Dopen2(file, "/samples/heun_35", H5P_DEFAULT), sp = H5Dget_space(d), pl = H5Dget_create_plist(d);
    hsize_t dims[4], chunk[4];
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 4);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    assert_true(dims[0] == N && dims[1] == C && dims[2] == H && dims[3] == W);
    assert_int_equal(H5Pget_layout(pl), H5D_CHUNKED);
    assert_int_equal(H5Pget_chunk(pl, 4, chunk), 4);
    assert_true(chunk[0] == 1 && chunk[1] == C && chunk[2] == H && chunk[3] == W);
    unsigned flags = 0;
    size_t nv = 0;
    assert_true(H5Pget_filter_by_id2(pl, H5Z_FILTER_DEFLATE, &flags, &nv, NULL, 0, NULL, NULL) >= 0);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(file);

    /* written again from what was read: the same shape */
    dm_runrec c;
    assert_int_equal(dm_runlog_write(f->path, &b, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &c, err), DM_OK);
    assert_int_equal(c.samples[0].shape[2], W);
    assert_memory_equal(c.samples[0].x, x, sizeof x);
    dm_runrec_free(&a);
    dm_runrec_free(&b);
    dm_runrec_free(&c);
}

static void test_empty_record(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_runrec a, b;
    dm_runrec_init(&a);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_int_equal(b.n_attrs, 0);
    assert_null(b.config_yaml);
    assert_null(b.data_name);
    assert_string_equal(b.config_hash, "");
    assert_int_equal(b.n_series + b.n_samples + b.n_evals + b.n_seeds, 0);
    dm_runrec_free(&b);
}

/* ------------------------------------------------- typed root attributes ---- */

/* The HDF5 type of attribute name of the root of path: class, size (H5T_VARIABLE for a vlen
 * string), whether a string is UTF-8. */
typedef struct attr_kind {
    H5T_class_t cls;
    size_t size;
    int utf8;
} attr_kind;

static attr_kind root_attr_kind(const char *path, const char *name)
{
    attr_kind k = {H5T_NO_CLASS, 0, 0};
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t a = H5Aopen(file, name, H5P_DEFAULT), t = H5Aget_type(a);
    assert_true(a >= 0 && t >= 0);
    k.cls = H5Tget_class(t);
    k.size = k.cls == H5T_STRING && H5Tis_variable_str(t) > 0 ? H5T_VARIABLE : H5Tget_size(t);
    k.utf8 = k.cls == H5T_STRING && H5Tget_cset(t) == H5T_CSET_UTF8;
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(file);
    return k;
}

static void assert_root_attr(const char *path, const char *name, H5T_class_t cls)
{
    attr_kind k = root_attr_kind(path, name);
    if (k.cls != cls)
        fail_msg("root attribute '%s' has class %d (want %d)", name, (int)k.cls, (int)cls);
    if (cls == H5T_STRING && (k.size != H5T_VARIABLE || !k.utf8))
        fail_msg("root attribute '%s' is not a vlen UTF-8 string", name);
    if (cls != H5T_STRING && k.size != 8)
        fail_msg("root attribute '%s' has %zu bytes (want 8)", name, k.size);
}

/* Numbers by meaning as int64 / float64, every other root attribute a vlen UTF-8 string; a
 * numeric attribute whose text is no number of its type stays a string; all read back as text. */
static void test_typed_root_attrs(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_runrec a, b;
    assert_int_equal(build_record(&a, err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "blas_threads", "2", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "slurm_job_id", "-4242", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "slurm_array_job_id", " 7", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "slurm_array_task_id", "unknown", err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "version", "12", err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    const char *ints[] = {"n_params", "git_dirty", "blas_threads", "slurm_job_id"};
    for (size_t i = 0; i < 4; ++i)
        assert_root_attr(f->path, ints[i], H5T_INTEGER);
    assert_root_attr(f->path, "wall_s", H5T_FLOAT);
    const char *strs[] = {"run_id", "status", "host", "empty", "version", "slurm_array_job_id",
                          "slurm_array_task_id"};
    for (size_t i = 0; i < 7; ++i)
        assert_root_attr(f->path, strs[i], H5T_STRING);
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t np = 0;
    double wall = 0;
    hid_t at = H5Aopen(file, "n_params", H5P_DEFAULT);
    assert_true(H5Aread(at, H5T_NATIVE_INT64, &np) >= 0);
    H5Aclose(at);
    at = H5Aopen(file, "wall_s", H5P_DEFAULT);
    assert_true(H5Aread(at, H5T_NATIVE_DOUBLE, &wall) >= 0);
    H5Aclose(at);
    H5Fclose(file);
    assert_int_equal(np, 149250);
    assert_true(wall == 9.407);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_records_equal(&a, &b);
    dm_runrec_free(&b);
    /* a float64 reads back as the shortest text of its double */
    assert_int_equal(dm_runrec_set_attr(&a, "wall_s", "12.300", err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_string_equal(dm_runrec_attr(&b, "wall_s"), "12.3");
    dm_runrec_free(&b);
    dm_runrec_free(&a);
}

/* Every root attribute of path rewritten as a vlen UTF-8 string in r's order: run.h5 as difflab
 * wrote it before its numbers were typed. */
static void write_old_root_attrs(const char *path, const dm_runrec *r)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    assert_true(file >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0);
    for (size_t i = 0; i < r->n_attrs; ++i)
        assert_true(H5Adelete(file, r->attrs[i].key) >= 0);
    for (size_t i = 0; i < r->n_attrs; ++i) {
        hid_t at = H5Acreate2(file, r->attrs[i].key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(at >= 0 && H5Awrite(at, t, &r->attrs[i].value) >= 0);
        H5Aclose(at);
    }
    H5Sclose(sp);
    H5Tclose(t);
    assert_true(H5Fclose(file) >= 0);
}

/* Files written before numbers were typed still read, to the same record; so does a number
 * another tool wrote as a fixed-length string; a number of a name difflab does not know is
 * skipped; written again, the record's numbers are typed. */
static void test_old_string_attrs(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", path2[700];
    dm_runrec a, b;
    assert_int_equal(build_record(&a, err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "wall_s", "12.300", err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    write_old_root_attrs(f->path, &a);
    assert_root_attr(f->path, "n_params", H5T_STRING);
    assert_root_attr(f->path, "wall_s", H5T_STRING);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_records_equal(&a, &b); /* "12.300" too: a string is read as it is */
    dm_runrec_free(&b);

    hid_t file = H5Fopen(f->path, H5F_ACC_RDWR, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
    hid_t sp = H5Screate(H5S_SCALAR);
    assert_true(H5Tset_size(t, 6) >= 0 && H5Adelete(file, "n_params") >= 0);
    hid_t at = H5Acreate2(file, "n_params", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(at >= 0 && H5Awrite(at, t, "149250") >= 0);
    H5Aclose(at);
    int64_t x = 5;
    at = H5Acreate2(file, "extra", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(at >= 0 && H5Awrite(at, H5T_NATIVE_INT64, &x) >= 0);
    H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(t);
    assert_true(H5Fclose(file) >= 0);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_string_equal(dm_runrec_attr(&b, "n_params"), "149250");
    assert_null(dm_runrec_attr(&b, "extra"));
    assert_int_equal(b.n_attrs, a.n_attrs);

    snprintf(path2, sizeof path2, "%s/again.h5", f->dir);
    assert_int_equal(dm_runlog_write(path2, &b, err), DM_OK);
    assert_root_attr(path2, "n_params", H5T_INTEGER);
    assert_root_attr(path2, "wall_s", H5T_FLOAT);
    dm_runrec_free(&b);
    dm_runrec_free(&a);
}

static void test_atomic_replacement(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", bad[700];
    dm_runrec a, b;
    assert_int_equal(build_record(&a, err), DM_OK);

    /* a folder that does not exist: clean DM_E_IO naming the path, no temporary anywhere */
    snprintf(bad, sizeof bad, "%s/no/such/folder/run.h5", f->dir);
    assert_int_equal(dm_runlog_write(bad, &a, err), DM_E_IO);
    assert_non_null(strstr(err, bad));
    assert_int_equal(count_tmp(f->dir), 0);

    /* two successful writes: the second content wins, nothing left over */
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(dm_runrec_set_attr(&a, "status", "second", err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    assert_int_equal(count_tmp(f->dir), 0);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_string_equal(dm_runrec_attr(&b, "status"), "second");
    dm_runrec_free(&b);

    /* a write that fails half-way (two series of one name: HDF5 refuses the second dataset)
     * leaves the old file as it was and removes its temporary */
    dm_series *s;
    assert_int_equal(dm_runrec_series(&a, "dup", &s, err), DM_OK);
    assert_int_equal(dm_runrec_series(&a, "dup2", &s, err), DM_OK);
    char *keep = a.series[a.n_series - 1].name;
    a.series[a.n_series - 1].name = a.series[a.n_series - 2].name;
    assert_int_equal(dm_runrec_set_attr(&a, "status", "third", err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_E_IO);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "dup"));
    a.series[a.n_series - 1].name = keep;
    assert_int_equal(count_tmp(f->dir), 0);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_OK);
    assert_string_equal(dm_runrec_attr(&b, "status"), "second");
    dm_runrec_free(&b);

    /* a name HDF5 cannot hold is bad input, caught before anything is written */
    assert_int_equal(dm_runrec_series(&a, "a/b", &s, err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_E_INPUT);
    assert_non_null(strstr(err, "a/b"));
    assert_int_equal(count_tmp(f->dir), 0);
    dm_runrec_free(&a);
}

static void test_write_file_atomic(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", p[700], buf[64] = "";
    snprintf(p, sizeof p, "%s/marker.txt", f->dir);
    assert_int_equal(dm_write_file_atomic(p, "first\n", 6, err), DM_OK);
    assert_int_equal(dm_write_file_atomic(p, "second\n", 7, err), DM_OK);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    assert_int_equal(n, 7);
    assert_string_equal(buf, "second\n");
    assert_int_equal(count_tmp(f->dir), 0);
    snprintf(p, sizeof p, "%s/missing/marker.txt", f->dir);
    assert_int_equal(dm_write_file_atomic(p, "x", 1, err), DM_E_IO);
    assert_non_null(strstr(err, p));
}

static void test_corrupt_files(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", p[700];
    dm_runrec a, b;
    dm_ckpt c;

    snprintf(p, sizeof p, "%s/missing.h5", f->dir);
    assert_int_equal(dm_runlog_read(p, &b, err), DM_E_NOTFOUND);
    assert_non_null(strstr(err, p));
    assert_int_equal(dm_ckpt_read(p, &c, err), DM_E_NOTFOUND);

    assert_int_equal(build_record(&a, err), DM_OK);
    assert_int_equal(dm_runlog_write(f->path, &a, err), DM_OK);
    long size = file_size(f->path);
    assert_true(size > 0);
    assert_int_equal(truncate(f->path, size / 2), 0);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_E_IO);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "not a valid run file"));
    assert_int_equal(b.n_attrs + b.n_series, 0);
    dm_runrec_free(&a);

    /* not HDF5 at all */
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; ++i)
        fputc((i * 7919) & 0xff, fp);
    fclose(fp);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_E_IO);
    assert_non_null(strstr(err, "not a valid run file"));
    assert_int_equal(dm_ckpt_read(f->path, &c, err), DM_E_IO);
    assert_non_null(strstr(err, "not a valid checkpoint file"));

    /* a valid HDF5 file that is a checkpoint, not a run file */
    double v = 1;
    dm_ckpt_entry e = {"params", DM_CKPT_F64, 1, &v};
    dm_ckpt w = {.step = 3, .entries = &e, .n = 1};
    assert_int_equal(dm_ckpt_write(f->path, &w, err), DM_OK);
    assert_int_equal(dm_runlog_read(f->path, &b, err), DM_E_IO);
    assert_non_null(strstr(err, "/config"));

    /* a truncated checkpoint */
    size = file_size(f->path);
    assert_int_equal(truncate(f->path, size / 2), 0);
    assert_int_equal(dm_ckpt_read(f->path, &c, err), DM_E_IO);
    assert_non_null(strstr(err, "not a valid checkpoint file"));
}

static void test_checkpoint(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", p[700];
    float params[5] = {1, 2, 3, 4, 5};
    double ema[3] = {0.1, -0.2, 1e300};
    int64_t order[4] = {3, 1, 0, INT64_MIN};
    uint8_t rng[7] = {0, 1, 2, 3, 255, 128, 7};
    dm_ckpt_entry e[] = {
        {"params", DM_CKPT_F32, 5, params},
        {"ema", DM_CKPT_F64, 3, ema},
        {"data/order", DM_CKPT_I64, 4, order},
        {"rng/train.batch", DM_CKPT_U8, 7, rng},
        {"rng/deep/er/eval", DM_CKPT_U8, 3, rng},
        {"opt/empty", DM_CKPT_F32, 0, NULL},
    };
    size_t ne = sizeof e / sizeof e[0];
    dm_ckpt w = {.step = 123456789012LL, .entries = e, .n = ne}, c;
    snprintf(p, sizeof p, "%s/checkpoint.h5", f->dir);
    assert_int_equal(dm_ckpt_write(p, &w, err), DM_OK);
    assert_int_equal(dm_ckpt_write(p, &w, err), DM_OK);
    assert_int_equal(count_tmp(f->dir), 0);
    assert_int_equal(dm_ckpt_read(p, &c, err), DM_OK);
    assert_true(c.owns);
    assert_int_equal(c.step, 123456789012LL);
    assert_int_equal(c.n, ne);
    for (size_t i = 0; i < ne; ++i) {
        const dm_ckpt_entry *r = dm_ckpt_find(&c, e[i].name);
        assert_non_null(r);
        assert_int_equal(r->type, e[i].type);
        assert_int_equal(r->count, e[i].count);
        size_t size = e[i].type == DM_CKPT_F32 ? 4 : e[i].type == DM_CKPT_U8 ? 1 : 8;
        if (e[i].count)
            assert_memory_equal(r->data, e[i].data, e[i].count * size);
    }
    assert_null(dm_ckpt_find(&c, "rng"));
    dm_ckpt_free(&c);

    dm_ckpt_entry bad = {"rng//x", DM_CKPT_U8, 1, rng};
    dm_ckpt wb = {.step = 1, .entries = &bad, .n = 1};
    assert_int_equal(dm_ckpt_write(p, &wb, err), DM_E_INPUT);
    bad.name = "a/../b";
    assert_int_equal(dm_ckpt_write(p, &wb, err), DM_E_INPUT);
    /* the good checkpoint is still there */
    assert_int_equal(dm_ckpt_read(p, &c, err), DM_OK);
    assert_int_equal(c.n, ne);
    dm_ckpt_free(&c);
}

/* Fail the k-th allocation for k = 1, 2, ... over record building, write and read: every
 * outcome is success or a clean error (ASan reports any leak at exit). */
static void test_alloc_failures(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE], p[700];
    snprintf(p, sizeof p, "%s/ckpt.h5", f->dir);
    int failures = 0;
    for (long k = 1; k < 100000; ++k) {
        dm_runrec a, b;
        dm_ckpt c;
        double v[2] = {1, 2};
        dm_ckpt_entry e[2] = {{"a/b", DM_CKPT_F64, 2, v}, {"c", DM_CKPT_F64, 1, v}};
        dm_ckpt w = {.step = 1, .entries = e, .n = 2};
        dm_alloc_fail_at(k);
        dm_status st = build_record(&a, err);
        if (!st)
            st = dm_runlog_write(f->path, &a, err);
        if (!st) {
            st = dm_runlog_read(f->path, &b, err);
            if (!st) {
                assert_records_equal(&a, &b);
                dm_runrec_free(&b);
            }
        }
        dm_runrec_free(&a);
        if (!st)
            st = dm_ckpt_write(p, &w, err);
        if (!st && !(st = dm_ckpt_read(p, &c, err)))
            dm_ckpt_free(&c);
        long used = dm_alloc_fail_at(0);
        if (st) {
            assert_int_equal(st, DM_E_NOMEM);
            ++failures;
        } else if (used < k) {
            break; /* every allocation point has been failed once */
        }
        assert_int_equal(count_tmp(f->dir), 0);
    }
    assert_true(failures > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runrec_semantics),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_root_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_string_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replacement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
