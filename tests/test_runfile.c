/* test_runfile.c — run files as untrusted input (io/runfile_vet.h, io/runstore.h): a damaged
 * run.h5 or checkpoint.h5 (truncated, zeroed blocks, a poisoned global heap) is an error naming
 * the file within the time limit, never a hang; a read that fails leaves no HDF5 object open. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "core/alloc.h"
#include "io/runfile_vet.h"
#include "io/runlog.h"
#include "io/runrec.h"
#include "io/runstore.h"

/* ------------------------------------------------------------------ temp folder ---- */

typedef struct fixture {
    char dir[512];
    char run[600];     /* a good run.h5 */
    char ckpt[600];    /* a good checkpoint.h5 */
    char bad[600];     /* the damaged copy under test */
} fixture;

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static dm_status build_record(dm_runrec *r, char *err)
{
    dm_status st;
    dm_series *s;
    float x[4 * 2] = {0.5f, -1.25f, 3.0f, 4.5f, 0.0f, 1.0f, 2.0f, 3.0f};
    dm_runrec_init(r);
    /* Root attributes are vlen strings: they live in the file's global heap. */
    if ((st = dm_runrec_set_attr(r, "run_id", "demo-0123456789-s0", err)) ||
        (st = dm_runrec_set_attr(r, "status", "finished", err)) ||
        (st = dm_runrec_set_attr(r, "spec_path", "configs/methods/demo.yaml", err)) ||
        (st = dm_runrec_set_attr(r, "host", "node-1", err)) ||
        (st = dm_runrec_set_attr(r, "git_commit", "0123456789abcdef0123456789abcdef01234567", err)))
        return st;
    if (!(r->config_yaml = dm_strdup("name: demo\nseed: 0\ndata: {type: moons}\n")) ||
        !(r->data_name = dm_strdup("moons")))
        return DM_E_NOMEM;
    memset(r->config_hash, 'a', 64);
    memset(r->group_hash, 'b', 64);
    r->seed = 7;
    r->data_n_train = 100;
    r->data_dim = 2;
    if ((st = dm_runrec_add_seed(r, "data.train", 11, err)) ||
        (st = dm_runrec_add_seed(r, "train.noise", 12, err)) ||
        (st = dm_runrec_series(r, "loss", &s, err)))
        return st;
    for (int i = 0; i < 50 && !st; ++i)
        st = dm_series_push(s, i, 0.01 * i, 1.0 / (i + 1), err);
    if (st || (st = dm_runrec_add_samples(r, "ddpm", 5, "{}", 4, 2, x, NULL, err)) ||
        (st = dm_runrec_add_eval(r, "swd", "ddpm", 5, "{}", 4, 0.25, err)) ||
        (st = dm_runrec_add_eval(r, "mmd2", "ddpm", 5, "{}", 4, 0.01, err)))
        return st;
    return DM_OK;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("DIFFLAB_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(f->dir, sizeof f->dir, "%s/runfile.XXXXXX", base);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->run, sizeof f->run, "%s/run.h5", f->dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/checkpoint.h5", f->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.h5", f->dir);
    char err[DM_ERR_SIZE];
    dm_runrec r;
    float params[300];
    for (int i = 0; i < 300; ++i)
        params[i] = 0.01f * (float)i;
    int64_t n = 3;
    dm_ckpt_entry e[] = {{"params", DM_CKPT_F32, 300, params}, {"ema", DM_CKPT_F32, 300, params},
                         {"log/n", DM_CKPT_I64, 1, &n}};
    dm_ckpt c = {.step = 30, .entries = e, .n = 3};
    if (build_record(&r, err) || dm_runlog_write(f->run, &r, err) || dm_ckpt_write(f->ckpt, &c, err)) {
        fprintf(stderr, "setup: %s\n", err);
        dm_runrec_free(&r);
        free(f);
        return -1;
    }
    dm_runrec_free(&r);
    setenv("DIFFLAB_READ_SECONDS", "1", 1);
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
    unsetenv("DIFFLAB_READ_SECONDS");
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Copy src to dst, then zero n bytes at off (n = 0: none) and cut it to size (< 0: keep). */
static void damage(const char *src, const char *dst, long off, long n, long size)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, k, out), k);
    fclose(in);
    if (n > 0) {
        char *z = calloc(1, (size_t)n);
        assert_non_null(z);
        assert_int_equal(fseek(out, off, SEEK_SET), 0);
        assert_int_equal(fwrite(z, 1, (size_t)n, out), (size_t)n);
        free(z);
    }
    assert_int_equal(fclose(out), 0);
    if (size >= 0)
        assert_int_equal(truncate(dst, size), 0);
}

/* Offset of the first global heap collection ("GCOL") of the file, or -1. */
static long gcol_offset(const char *path)
{
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    long off = -1, pos = 0;
    int c, match = 0;
    while (off < 0 && (c = fgetc(in)) != EOF) {
        match = c == "GCOL"[match] ? match + 1 : c == 'G';
        pos++;
        if (match == 4)
            off = pos - 4;
    }
    fclose(in);
    return off;
}

/* ------------------------------------------------- open objects after a read ---- */

/* HDF5 numbers the ids of each type in sequence, so an id of the read that is still valid
 * between a probe taken before it and one taken after is one it left open. Files, groups,
 * datasets, attributes and named types count via H5Fget_obj_count; dataspaces, datatypes and
 * property lists (which no file holds) via the probe. */
typedef struct probe {
    hid_t id[3];
} probe;

static probe take_probe(void)
{
    probe p = {{H5Screate(H5S_SCALAR), H5Tcopy(H5T_NATIVE_INT), H5Pcreate(H5P_FILE_ACCESS)}};
    H5Sclose(p.id[0]);
    H5Tclose(p.id[1]);
    H5Pclose(p.id[2]);
    return p;
}

static long open_between(probe a, probe b)
{
    long n = 0;
    for (int k = 0; k < 3; ++k)
        for (hid_t id = a.id[k] + 1; id < b.id[k]; ++id)
            n += H5Iis_valid(id) > 0;
    return n + (long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

/* In a child (its HDF5 may leak internally on a bad file, and a hang must not hang the test):
 * read path in this process as the callers do after vetting, and check that the read gives the
 * vetted status and message and leaves nothing open. The child's exit status: 0 good, 1 another
 * answer, 2 objects left open. */
static int read_in_child(const char *path, dm_runfile_kind kind, dm_status want, const char *want_err)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        char err[DM_ERR_SIZE] = "";
        dm_status st;
        probe a = take_probe();
        if (kind == DM_RUNFILE_RUN) {
            dm_runrec r;
            if (!(st = dm_runlog_read(path, &r, err)))
                dm_runrec_free(&r);
        } else {
            dm_ckpt c;
            if (!(st = dm_ckpt_read(path, &c, err)))
                dm_ckpt_free(&c);
        }
        long left = open_between(a, take_probe());
        if (st != want || (st && strcmp(err, want_err) != 0)) {
            fprintf(stderr, "in-process read: %d '%s'; vetted: %d '%s'\n", st, err, want, want_err);
            _exit(1);
        }
        if (left) {
            fprintf(stderr, "%s: %ld HDF5 objects left open after the read (%s)\n", path, left, err);
            _exit(2);
        }
        _exit(0);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 100 + WTERMSIG(ws);
}

/* ------------------------------------------------------------------ tests ---- */

static void test_good_files(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", p[700];
    dm_runrec r;
    dm_ckpt c;
    assert_int_equal(dm_runfile_vet(NULL, f->run, DM_RUNFILE_RUN, err), DM_OK);
    assert_int_equal(dm_runfile_vet(NULL, f->ckpt, DM_RUNFILE_CKPT, err), DM_OK);
    assert_int_equal(dm_runstore_read_file(NULL, f->run, &r, err), DM_OK);
    assert_string_equal(dm_runrec_attr(&r, "spec_path"), "configs/methods/demo.yaml");
    assert_int_equal(r.n_evals, 2);
    dm_runrec_free(&r);
    assert_int_equal(dm_runstore_read_ckpt(f->ckpt, &c, err), DM_OK);
    assert_int_equal(c.step, 30);
    assert_int_equal(c.n, 3);
    dm_ckpt_free(&c);
    /* A good read leaves nothing open either (the probe itself is sound). */
    assert_int_equal(read_in_child(f->run, DM_RUNFILE_RUN, DM_OK, ""), 0);
    assert_int_equal(read_in_child(f->ckpt, DM_RUNFILE_CKPT, DM_OK, ""), 0);

    /* The child's message is the reader's, status included. */
    snprintf(p, sizeof p, "%s/missing.h5", f->dir);
    assert_int_equal(dm_runfile_vet(NULL, p, DM_RUNFILE_RUN, err), DM_E_NOTFOUND);
    assert_non_null(strstr(err, p));
    assert_int_equal(dm_runstore_read_file(NULL, f->ckpt, &r, err), DM_E_IO); /* a checkpoint is no run file */
    assert_non_null(strstr(err, "not a valid run file"));
    assert_non_null(strstr(err, "/config"));
    assert_int_equal(r.n_attrs + r.n_series, 0);
    assert_int_equal(dm_runstore_read_ckpt(p, &c, err), DM_E_NOTFOUND);
    assert_null(c.entries);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

/* The reproduction: 1,536 zero bytes from 16 bytes after the first "GCOL" make HDF5 spin
 * in H5HG_read for ever when it reads a root attribute. */
static void test_poisoned_heap(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "";
    dm_runrec r;
    long g = gcol_offset(f->run);
    assert_true(g > 0);
    damage(f->run, f->bad, g + 16, 1536, -1);
    double t0 = now_s();
    assert_int_equal(dm_runfile_vet(NULL, f->bad, DM_RUNFILE_RUN, err), DM_E_IO);
    double t = now_s() - t0;
    assert_true(t >= 0.9 && t < 4);
    assert_non_null(strstr(err, f->bad));
    assert_non_null(strstr(err, "reading it took more than 1 s"));
    t0 = now_s();
    assert_int_equal(dm_runstore_read_file(NULL, f->bad, &r, err), DM_E_IO);
    assert_true(now_s() - t0 < 4);
    assert_non_null(strstr(err, "took more than"));
    assert_int_equal(r.n_attrs + r.n_series, 0);
    /* The child is gone (killed and reaped), and nothing of HDF5 is open here. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    /* The limit is the environment's. */
    setenv("DIFFLAB_READ_SECONDS", "0.3", 1);
    t0 = now_s();
    assert_int_equal(dm_runfile_vet(NULL, f->bad, DM_RUNFILE_RUN, err), DM_E_IO);
    assert_true(now_s() - t0 < 2);
    assert_non_null(strstr(err, "more than 0.3 s"));
}

/* A kept reader child serves file after file; a file that hangs costs that child, the next file
 * gets a new one; the child holds none of our descriptors (so none of our flocks). */
static void test_kept_child(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE] = "", lock[700], p[700];
    dm_runfile_vetter v = DM_RUNFILE_VETTER_INIT;
    snprintf(lock, sizeof lock, "%s/run.lock", f->dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);

    assert_int_equal(dm_runfile_vet(&v, f->run, DM_RUNFILE_RUN, err), DM_OK);
    pid_t first = v.pid;
    assert_true(first > 0);
    close(fd); /* our lock goes; the child's copy of the descriptor must not keep it */
    fd = open(lock, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);

    assert_int_equal(dm_runfile_vet(&v, f->ckpt, DM_RUNFILE_CKPT, err), DM_OK);
    snprintf(p, sizeof p, "%s/missing.h5", f->dir);
    assert_int_equal(dm_runfile_vet(&v, p, DM_RUNFILE_RUN, err), DM_E_NOTFOUND);
    assert_int_equal(v.pid, first);

    long g = gcol_offset(f->run);
    damage(f->run, f->bad, g + 16, 1536, -1);
    double t0 = now_s();
    assert_int_equal(dm_runfile_vet(&v, f->bad, DM_RUNFILE_RUN, err), DM_E_IO);
    assert_true(now_s() - t0 < 4);
    assert_non_null(strstr(err, "took more than 1 s"));
    assert_int_equal(v.pid, 0);
    assert_true(kill(first, 0) != 0 && errno == ESRCH); /* killed and reaped */

    assert_int_equal(dm_runfile_vet(&v, f->run, DM_RUNFILE_RUN, err), DM_OK);
    assert_true(v.pid > 0 && v.pid != first);
    dm_runfile_vetter_end(&v);
    assert_int_equal(v.pid, 0);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* Every damaged copy: truncated at each eighth, and a 512-byte zeroed block at every multiple of
 * 512. The vetted read ends within the limit with DM_OK or an error naming the file; when it
 * ends without the limit, reading in-process gives the same answer and leaves nothing open. */
static void sweep_damage(fixture *f, const char *good, dm_runfile_kind kind)
{
    char err[DM_ERR_SIZE];
    long size = file_size(good);
    int n_err = 0, n_ok = 0, n_limit = 0;
    dm_runfile_vetter vetter = DM_RUNFILE_VETTER_INIT;
    assert_true(size > 1024);
    for (long v = 1; v < 8 + size / 512; ++v) {
        if (v < 8)
            damage(good, f->bad, 0, 0, size * v / 8);
        else
            damage(good, f->bad, (v - 8) * 512, 512, -1);
        err[0] = '\0';
        double t0 = now_s();
        /* One reader child for the series (as reindex), a fresh one for every other copy. */
        dm_status st = dm_runfile_vet(v % 2 ? &vetter : NULL, f->bad, kind, err);
        assert_true(now_s() - t0 < 4);
        if (st && !strstr(err, f->bad))
            fail_msg("damaged copy %ld: the message does not name the file: %s", v, err);
        if (st && strstr(err, "took more than")) {
            n_limit++;
            continue;
        }
        assert_true(st == DM_OK || st == DM_E_IO);
        st ? n_err++ : n_ok++;
        int rc = read_in_child(f->bad, kind, st, err);
        if (rc)
            fail_msg("damaged copy %ld of %s: in-process read failed the check (%d)", v, good, rc);
    }
    dm_runfile_vetter_end(&vetter);
    printf("%s: %d damaged copies: %d errors, %d read anyway, %d stopped at the time limit\n", good,
           n_err + n_ok + n_limit, n_err, n_ok, n_limit);
    assert_true(n_err > 0);
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static void test_damaged_run_files(void **state)
{
    fixture *f = *state;
    sweep_damage(f, f->run, DM_RUNFILE_RUN);
}

static void test_damaged_checkpoints(void **state)
{
    fixture *f = *state;
    sweep_damage(f, f->ckpt, DM_RUNFILE_CKPT);
}

/* ------------------------------------------- files of the wrong shape ---- */

/* Valid HDF5 files whose content is wrong in one place: each reaches an error path of the reader
 * with objects open (a dataset and its dataspace, an attribute and its type, a group). */
typedef void (*edit_fn)(hid_t file);

static void replace_dataset(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims,
                            const void *buf)
{
    if (H5Lexists(file, name, H5P_DEFAULT) > 0)
        assert_true(H5Ldelete(file, name, H5P_DEFAULT) >= 0);
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

/* Attribute name of object obj replaced by one of type (n elements of buf). */
static void replace_attr(hid_t file, const char *obj, const char *name, hid_t type, hsize_t n, const void *buf)
{
    hid_t o = H5Oopen(file, obj, H5P_DEFAULT);
    assert_true(o >= 0);
    if (H5Aexists(o, name) > 0)
        assert_true(H5Adelete(o, name) >= 0);
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(o, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, type, buf) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(o);
}

static hid_t vlen_str(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    return t;
}

static void metric_rank2(hid_t f)
{
    double v[4] = {0};
    hsize_t dims[2] = {2, 2};
    replace_dataset(f, "/metrics/loss", H5T_NATIVE_DOUBLE, 2, dims, v);
}

static void metric_of_strings(hid_t f)
{
    const char *v[2] = {"a", "b"};
    hsize_t n = 2;
    hid_t t = vlen_str();
    replace_dataset(f, "/metrics/loss", t, 1, &n, v);
    H5Tclose(t);
}

static void eval_of_doubles(hid_t f)
{
    double v[3] = {1, 2, 3};
    hsize_t n = 3;
    replace_dataset(f, "/eval/swd", H5T_NATIVE_DOUBLE, 1, &n, v);
}

static void samples_rank1(hid_t f)
{
    float v[4] = {0};
    hsize_t n = 4;
    replace_dataset(f, "/samples/ddpm_5", H5T_NATIVE_FLOAT, 1, &n, v);
}

static void samples_without_sampler(hid_t f)
{
    hid_t d = H5Dopen2(f, "/samples/ddpm_5", H5P_DEFAULT);
    assert_true(d >= 0 && H5Adelete(d, "sampler") >= 0);
    H5Dclose(d);
}

static void samples_nfe_string(hid_t f)
{
    const char *v = "five";
    hid_t t = vlen_str();
    replace_attr(f, "/samples/ddpm_5", "nfe", t, 1, &v);
    H5Tclose(t);
}

static void samples_of_strings(hid_t f)
{
    const char *v[4] = {"a", "b", "c", "d"};
    hsize_t dims[2] = {2, 2};
    hid_t t = vlen_str();
    replace_dataset(f, "/samples/ddpm_5", t, 2, dims, v);
    H5Tclose(t);
    hid_t d = H5Dopen2(f, "/samples/ddpm_5", H5P_DEFAULT);
    const char *sampler = "ddpm", *settings = "{}";
    int64_t nfe = 5;
    hid_t a, sp = H5Screate(H5S_SCALAR), st = vlen_str();
    a = H5Acreate2(d, "sampler", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &sampler);
    H5Aclose(a);
    a = H5Acreate2(d, "settings", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &settings);
    H5Aclose(a);
    a = H5Acreate2(d, "nfe", H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &nfe);
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
    H5Dclose(d);
}

static void root_attr_array(hid_t f)
{
    const char *v[2] = {"finished", "running"};
    hid_t t = vlen_str();
    replace_attr(f, "/", "status", t, 2, v);
    H5Tclose(t);
}

static void n_params_float(hid_t f)
{
    double v = 149250.0;
    replace_attr(f, "/", "n_params", H5T_NATIVE_DOUBLE, 1, &v);
}

static void config_hash_long(hid_t f)
{
    char buf[100];
    memset(buf, 'f', 99);
    buf[99] = '\0';
    const char *v = buf;
    hid_t t = vlen_str();
    replace_attr(f, "/config", "config_hash", t, 1, &v);
    H5Tclose(t);
}

static void config_yaml_integer(hid_t f)
{
    int64_t v = 3;
    replace_attr(f, "/config", "yaml", H5T_NATIVE_INT64, 1, &v);
}

static void config_missing(hid_t f)
{
    assert_true(H5Ldelete(f, "/config", H5P_DEFAULT) >= 0);
}

static void data_dim_float_array(hid_t f)
{
    double v[2] = {1, 2};
    replace_attr(f, "/data", "dim", H5T_NATIVE_DOUBLE, 2, v);
}

static void seed_two_values(hid_t f)
{
    uint64_t v[2] = {1, 2};
    hsize_t n = 2;
    replace_dataset(f, "/seeds/train.noise", H5T_NATIVE_UINT64, 1, &n, v);
}

static void seed_master_float(hid_t f)
{
    double v = 1.5;
    replace_attr(f, "/seeds", "master", H5T_NATIVE_FLOAT, 1, &v);
}

static void metric_is_group(hid_t f)
{
    assert_true(H5Ldelete(f, "/metrics/loss", H5P_DEFAULT) >= 0);
    hid_t g = H5Gcreate2(f, "/metrics/loss", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    H5Gclose(g);
}

static void ckpt_int16(hid_t f)
{
    int16_t v[3] = {1, 2, 3};
    hsize_t n = 3;
    replace_dataset(f, "/params", H5T_NATIVE_INT16, 1, &n, v);
}

static void ckpt_no_step(hid_t f)
{
    assert_true(H5Adelete(f, "step") >= 0);
}

static void ckpt_compound(hid_t f)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(t, "x", 0, H5T_NATIVE_DOUBLE);
    double v[2] = {1, 2};
    hsize_t n = 2;
    replace_dataset(f, "/log/n", t, 1, &n, v);
    H5Tclose(t);
}

static void ckpt_too_deep(hid_t f)
{
    char path[400] = "";
    for (int i = 0; i < 40; ++i) {
        strcat(path, "/g");
        hid_t g = H5Gcreate2(f, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(g >= 0);
        H5Gclose(g);
    }
}

typedef struct shape_case {
    const char *what;
    dm_runfile_kind kind;
    edit_fn edit;
    const char *msg; /* in the error */
} shape_case;

static const shape_case shape_cases[] = {
    {"a metric of rank 2", DM_RUNFILE_RUN, metric_rank2, "dataset 'loss' has the wrong rank"},
    {"a metric of strings", DM_RUNFILE_RUN, metric_of_strings, "reading metric 'loss' failed"},
    {"a metric that is a group", DM_RUNFILE_RUN, metric_is_group, "opening dataset 'loss' failed"},
    {"an eval of doubles", DM_RUNFILE_RUN, eval_of_doubles, "reading eval 'swd' failed"},
    {"a sample set of rank 1", DM_RUNFILE_RUN, samples_rank1, "dataset 'ddpm_5' has the wrong rank"},
    {"a sample set without its sampler", DM_RUNFILE_RUN, samples_without_sampler, "'sampler' is missing"},
    {"a sample set's nfe a string", DM_RUNFILE_RUN, samples_nfe_string, "'nfe' has the wrong type"},
    {"a sample set of strings", DM_RUNFILE_RUN, samples_of_strings, "reading sample set 'ddpm_5' failed"},
    {"a root attribute of two strings", DM_RUNFILE_RUN, root_attr_array, "'status' has the wrong type or shape"},
    {"n_params a float (int64 or a string)", DM_RUNFILE_RUN, n_params_float, "'n_params' has the wrong type"},
    {"a config hash of 99 characters", DM_RUNFILE_RUN, config_hash_long, "longer than 64"},
    {"the spec an integer", DM_RUNFILE_RUN, config_yaml_integer, "'yaml' has the wrong type"},
    {"no /config", DM_RUNFILE_RUN, config_missing, "no /config group"},
    {"the data's dim two doubles", DM_RUNFILE_RUN, data_dim_float_array, "'dim' has the wrong type or shape"},
    {"a seed of two values", DM_RUNFILE_RUN, seed_two_values, "does not hold one value"},
    {"the master seed a float", DM_RUNFILE_RUN, seed_master_float, "'master' has the wrong type"},
    {"a checkpoint array of int16", DM_RUNFILE_CKPT, ckpt_int16, "'params' has an unsupported type"},
    {"a checkpoint without its step", DM_RUNFILE_CKPT, ckpt_no_step, "'step'"},
    {"a checkpoint array of compounds", DM_RUNFILE_CKPT, ckpt_compound, "unsupported type"},
    {"checkpoint groups 40 deep", DM_RUNFILE_CKPT, ckpt_too_deep, "deeper than 32 levels"},
};

static void test_wrong_shapes(void **state)
{
    fixture *f = *state;
    char err[DM_ERR_SIZE];
    for (size_t i = 0; i < sizeof shape_cases / sizeof *shape_cases; ++i) {
        const shape_case *c = &shape_cases[i];
        damage(c->kind == DM_RUNFILE_RUN ? f->run : f->ckpt, f->bad, 0, 0, -1);
        hid_t file = H5Fopen(f->bad, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(file >= 0);
        c->edit(file);
        assert_true(H5Fclose(file) >= 0);
        err[0] = '\0';
        dm_status st = dm_runfile_vet(NULL, f->bad, c->kind, err);
        if (st != DM_E_IO || !strstr(err, f->bad) || !strstr(err, c->msg))
            fail_msg("%s: %d '%s' (want DM_E_IO naming the file and '%s')", c->what, st, err, c->msg);
        int rc = read_in_child(f->bad, c->kind, st, err);
        if (rc)
            fail_msg("%s: the in-process read failed the check (%d)", c->what, rc);
    }
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poisoned_heap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_run_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shapes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
