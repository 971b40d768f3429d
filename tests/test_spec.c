/* Tests of io/spec (and io/yaml_tree): loading, every error kind, aliases and alias bombs,
 * overrides, the canonical text and its hash, the typed key walk, the key reference, and
 * failure of every allocation. */
#include <errno.h>
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

#include <cmocka.h>

#include "core/alloc.h"
#include "io/spec.h"

/* ---- a small schema: top level, a fixed section, a plug-in section, a REALS-rows section ---- */

typedef struct top_opts {
    char name[DM_OPT_STR_MAX];
    int64_t seed;
} top_opts;

static const dm_param_desc top_params[] = {
    {"name", DM_OPT_STR, "run", 0, 0, NULL, DM_OPT_NOHASH, offsetof(top_opts, name), "short name of the run"},
    {"seed", DM_OPT_INT, "0", 0, 1e9, NULL, DM_OPT_SEED, offsetof(top_opts, seed), "master seed"},
    DM_OPT_END,
};
static const dm_plugin top_plugin = {"top", "top-level keys", top_params, sizeof(top_opts)};

typedef struct train_opts {
    int64_t steps;
    double lr;
    double lr_min;
    bool ema;
    int optimizer;
    int64_t log_every;
    dm_reals weights;
} train_opts;

static const char *const optimizers[] = {"adam", "adamw", "sgd", NULL};

static const dm_param_desc train_params[] = {
    {"steps", DM_OPT_INT, "1000", 1, 1e7, NULL, 0, offsetof(train_opts, steps), "training steps"},
    {"lr", DM_OPT_REAL, "1e-3", 0, 1, NULL, 0, offsetof(train_opts, lr), "learning rate"},
    {"lr_min", DM_OPT_REAL, "1e-5", 0, 0, NULL, 0, offsetof(train_opts, lr_min), "final learning rate"},
    {"ema", DM_OPT_BOOL, "true", 0, 0, NULL, 0, offsetof(train_opts, ema), "keep an EMA copy"},
    {"optimizer", DM_OPT_CHOICE, "adam", 0, 0, optimizers, 0, offsetof(train_opts, optimizer), "optimizer"},
    {"log_every", DM_OPT_INT, "100", 1, 1e9, NULL, DM_OPT_NOHASH, offsetof(train_opts, log_every),
     "log interval"},
    {"weights", DM_OPT_REALS, "[0.5, 0.5]", 0, 1, NULL, 0, offsetof(train_opts, weights), "mixture weights"},
    DM_OPT_END,
};
static const dm_plugin train_plugin = {"train", "training loop", train_params, sizeof(train_opts)};

typedef struct data_opts {
    dm_reals means;
    char path[DM_OPT_STR_MAX];
} data_opts;

static const dm_param_desc data_params[] = {
    {"means", DM_OPT_REALS, "[[0, 0], [1, 1]]", 0, 0, NULL, 0, offsetof(data_opts, means), "component means"},
    {"path", DM_OPT_STR, NULL, 0, 0, NULL, 0, offsetof(data_opts, path), "data file"},
    DM_OPT_END,
};
static const dm_plugin data_plugin = {"data", "toy data", data_params, sizeof(data_opts)};

typedef struct linear_opts {
    int64_t T;
    double beta_1, beta_T;
} linear_opts;

static const dm_param_desc linear_params[] = {
    {"T", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(linear_opts, T), "number of steps"},
    {"beta_1", DM_OPT_REAL, "1e-4", 0, 1, NULL, 0, offsetof(linear_opts, beta_1), "first beta"},
    {"beta_T", DM_OPT_REAL, "0.02", 0, 1, NULL, 0, offsetof(linear_opts, beta_T), "last beta"},
    DM_OPT_END,
};
static const dm_plugin sched_linear = {"ddpm_linear", "linear betas", linear_params, sizeof(linear_opts)};

typedef struct cosine_opts {
    int64_t T;
    double s;
} cosine_opts;

static const dm_param_desc cosine_params[] = {
    {"T", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(cosine_opts, T), "number of steps"},
    {"s", DM_OPT_REAL, "0.008", 0, 1, NULL, 0, offsetof(cosine_opts, s), "offset"},
    DM_OPT_END,
};
static const dm_plugin sched_cosine = {"cosine", "cosine alpha-bar", cosine_params, sizeof(cosine_opts)};

static const dm_plugin *const schedules[] = {&sched_linear, &sched_cosine, NULL};

static const dm_section_desc sections[] = {
    {"", "top level", &top_plugin, NULL, NULL, NULL},
    {"train", "training", &train_plugin, NULL, NULL, NULL},
    {"data", "data", &data_plugin, NULL, NULL, NULL},
    {"diffusion.schedule", "noise schedule", NULL, schedules, "ddpm_linear", "schedule"},
};
static const dm_schema schema = {sections, sizeof sections / sizeof *sections};

/* The same with a plug-in section that has no default type. */
static const dm_section_desc sections_req[] = {
    {"", "top level", &top_plugin, NULL, NULL, NULL},
    {"diffusion.schedule", "noise schedule", NULL, schedules, NULL, "schedule"},
};
static const dm_schema schema_req = {sections_req, 2};

/* ---- helpers ---- */

static dm_spec *load_ok(const char *text, int n, const char *const *ov)
{
    char err[DM_ERR_SIZE] = "";
    dm_spec *s = NULL;
    dm_status st = dm_spec_load_text(&schema, text, "spec.yaml", n, ov, &s, err);
    if (st != DM_OK)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(st, DM_OK);
    assert_non_null(s);
    return s;
}

/* Loads and expects DM_E_INPUT with every given substring in the message. */
static void expect_error(const dm_schema *sc, const char *text, int n, const char *const *ov, ...)
{
    char err[DM_ERR_SIZE] = "";
    dm_spec *s = (dm_spec *)1;
    dm_status st = dm_spec_load_text(sc, text, "spec.yaml", n, ov, &s, err);
    if (st != DM_E_INPUT)
        print_error("text <<%s>>: status %d, message: %s\n", text, st, err);
    assert_int_equal(st, DM_E_INPUT);
    assert_null(s);
    assert_null(strchr(err, '\n'));
    va_list ap;
    va_start(ap, ov);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(err, want))
            print_error("message '%s' lacks '%s'\n", err, want);
        assert_non_null(strstr(err, want));
    }
    va_end(ap);
}

#define EXPECT(text, ...) expect_error(&schema, text, 0, NULL, __VA_ARGS__, NULL)
#define EXPECT_OV(text, n, ov, ...) expect_error(&schema, text, n, ov, __VA_ARGS__, NULL)

static char *canonical(const dm_spec *s, int for_hash)
{
    char err[DM_ERR_SIZE], *t = NULL;
    assert_int_equal(dm_spec_canonical(s, for_hash, &t, err), DM_OK);
    return t;
}

static const char *tmp_dir(void)
{
    const char *d = getenv("DIFFLAB_TEST_TMP");
    if (!d)
        return "/tmp";
    mkdir(d, 0777); /* may exist already */
    return d;
}

/* ---- loading ---- */

static void test_defaults(void **state)
{
    (void)state;
    dm_spec *s = load_ok("name: x\n", 0, NULL);
    const top_opts *top = dm_spec_opts(s, "");
    assert_string_equal(top->name, "x");
    assert_int_equal(top->seed, 0);
    const train_opts *tr = dm_spec_opts(s, "train");
    assert_int_equal(tr->steps, 1000);
    assert_true(tr->lr == 1e-3);
    assert_true(tr->lr_min == 1e-5);
    assert_true(tr->ema);
    assert_int_equal(tr->optimizer, 0);
    assert_int_equal(tr->weights.n, 2);
    assert_int_equal(tr->weights.rows, 0);
    assert_true(tr->weights.v[0] == 0.5 && tr->weights.v[1] == 0.5);
    const data_opts *da = dm_spec_opts(s, "data");
    assert_int_equal(da->means.n, 4);
    assert_int_equal(da->means.rows, 2);
    assert_true(da->means.v[2] == 1.0);
    assert_string_equal(da->path, "");
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_linear);
    assert_ptr_equal(dm_spec_plugin(s, "train"), &train_plugin);
    const linear_opts *li = dm_spec_opts(s, "diffusion.schedule");
    assert_int_equal(li->T, 1000);
    assert_true(li->beta_1 == 1e-4 && li->beta_T == 0.02);
    assert_null(dm_spec_plugin(s, "diffusion"));
    assert_null(dm_spec_opts(s, "nope"));
    assert_ptr_equal(dm_spec_get_schema(s), &schema);
    dm_spec_free(s);
}

static void test_values(void **state)
{
    (void)state;
    dm_spec *s = load_ok("# a spec\n"
                         "seed: 3\n"
                         "train:\n"
                         "  steps: +42\n"
                         "  lr: .5\n"
                         "  lr_min: -2\n"
                         "  ema: False\n"
                         "  optimizer: sgd\n"
                         "  weights: []\n"
                         "data:\n"
                         "  means:\n"
                         "    - [1, 2.5]\n"
                         "    - [3e0, -4]\n"
                         "    - [5, 6]\n"
                         "  path: 'x: \"y\"'\n"
                         "diffusion:\n"
                         "  schedule: cosine\n",
                         0, NULL);
    const top_opts *top = dm_spec_opts(s, "");
    assert_string_equal(top->name, "run");
    assert_int_equal(top->seed, 3);
    const train_opts *tr = dm_spec_opts(s, "train");
    assert_int_equal(tr->steps, 42);
    assert_true(tr->lr == 0.5 && tr->lr_min == -2.0);
    assert_false(tr->ema);
    assert_int_equal(tr->optimizer, 2);
    assert_int_equal(tr->weights.n, 0);
    const data_opts *da = dm_spec_opts(s, "data");
    assert_int_equal(da->means.rows, 3);
    assert_int_equal(da->means.n, 6);
    assert_true(da->means.v[1] == 2.5 && da->means.v[2] == 3.0 && da->means.v[3] == -4.0);
    assert_string_equal(da->path, "x: \"y\"");
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    const cosine_opts *co = dm_spec_opts(s, "diffusion.schedule");
    assert_true(co->s == 0.008 && co->T == 1000);
    dm_spec_free(s);

    /* empty sections are all defaults; a mapping may be written in flow style */
    s = load_ok("train:\ndiffusion: {schedule: {type: ddpm_linear, T: 10}}\n", 0, NULL);
    assert_int_equal(((const linear_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 10);
    dm_spec_free(s);
}

static void test_file(void **state)
{
    (void)state;
    char path[512], err[DM_ERR_SIZE], want[600];
    dm_spec *s = NULL;
    snprintf(path, sizeof path, "%s/test_spec_%ld.yaml", tmp_dir(), (long)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("train:\n  steps: 5\n  lr: abc\n", f);
    fclose(f);
    assert_int_equal(dm_spec_load_file(&schema, path, 0, NULL, &s, err), DM_E_INPUT);
    snprintf(want, sizeof want, "%s:3:7: train.lr: expected a real number, got 'abc'", path);
    assert_string_equal(err, want);
    assert_null(s);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("train:\n  steps: 5\n", f);
    fclose(f);
    assert_int_equal(dm_spec_load_file(&schema, path, 0, NULL, &s, err), DM_OK);
    assert_int_equal(((const train_opts *)dm_spec_opts(s, "train"))->steps, 5);
    dm_spec_free(s);
    remove(path);

    s = (dm_spec *)1;
    assert_int_equal(dm_spec_load_file(&schema, "/nonexistent/x.yaml", 0, NULL, &s, err), DM_E_INPUT);
    assert_string_equal(err, "cannot read spec '/nonexistent/x.yaml': No such file or directory");
    assert_null(s);
    assert_int_equal(dm_spec_load_file(&schema, tmp_dir(), 0, NULL, &s, err), DM_E_INPUT);
    assert_non_null(strstr(err, "cannot read spec"));
}

static void test_syntax_errors(void **state)
{
    (void)state;
    EXPECT("train:\n  lr: [1, 2\n", "spec.yaml:3:1: ", "did not find expected ',' or ']'");
    EXPECT("a: b: c\n", "spec.yaml:1:5: ", "mapping values are not allowed");
    EXPECT("train:\n  lr: 1\n  - x\n", "spec.yaml:3:3: ");
    EXPECT("name: a\n---\nname: b\n", "spec.yaml:2:1: ", "more than one YAML document");
    EXPECT("", "spec.yaml:1:1: ", "empty");
    EXPECT("# nothing here\n", "empty");
    EXPECT("---\n", "empty");
    EXPECT("- 1\n- 2\n", "spec.yaml:1:1: ", "expected a mapping", "a sequence");
    EXPECT("42\n", "expected a mapping", "'42'");
    EXPECT("train:\n  lr: 0.1\n  steps: 5\n  lr: 0.2\n",
           "spec.yaml:4:3: ", "duplicate key 'train.lr' (first at line 2)");
    EXPECT("name: a\nname: b\n", "spec.yaml:2:1: ", "duplicate key 'name' (first at line 1)");
    EXPECT("[a]: 1\n", "a mapping key must be a scalar");
    EXPECT("name: x\nseed: \"\\x01\xff\"\n", "spec.yaml:2:12: ", "invalid leading UTF-8 octet");
}

static void test_key_errors(void **state)
{
    (void)state;
    EXPECT("train:\n  lrr: 0.1\n", "spec.yaml:2:3: ", "unknown key 'train.lrr'", "did you mean: train.lr");
    EXPECT("trian:\n  lr: 0.1\n", "spec.yaml:1:1: ", "unknown key 'trian'", "did you mean: train?");
    EXPECT("train:\n  stpes: 3\n", "did you mean: train.steps?");
    EXPECT("train:\n  xyzzy: 3\n", "unknown key 'train.xyzzy'");
    EXPECT("train.lr: 0.1\n", "unknown key 'train.lr'", "nested mappings");
    EXPECT("diffusion:\n  schedul: {}\n", "unknown key 'diffusion.schedul'", "diffusion.schedule");
    EXPECT("diffusion:\n  schedule:\n    s: 0.1\n", "spec.yaml:3:5: ",
           "unknown key 'diffusion.schedule.s' for schedule 'ddpm_linear' (a key of: cosine)");
    EXPECT("diffusion:\n  schedule:\n    type: cosine\n    tt: 1\n", "for schedule 'cosine'",
           "did you mean: diffusion.schedule.T");
    EXPECT("base: &b {lr: 0.1}\ntrain:\n  <<: *b\n", "spec.yaml:1:1: base: base files are read only from a spec file");
    EXPECT("train:\n  <<: {lr: 0.1}\n", "merge keys are not supported");
}

static void test_value_errors(void **state)
{
    (void)state;
    EXPECT("train:\n  lr: abc\n", "spec.yaml:2:7: train.lr: expected a real number, got 'abc'");
    EXPECT("train:\n  lr: 0x10\n", "expected a real number");
    EXPECT("train:\n  lr: \"0.1\"\n", "train.lr: expected a real number, got the string \"0.1\"");
    EXPECT("train:\n  lr:\n", "train.lr: expected a real number, got nothing");
    EXPECT("train:\n  lr: .nan\n", "train.lr: expected a finite real number, got '.nan'");
    EXPECT("train:\n  lr_min: -.inf\n", "train.lr_min: expected a finite real number");
    EXPECT("train:\n  lr_min: 1e999\n", "train.lr_min: 1e999 is too large");
    EXPECT("train:\n  lr: 5\n", "spec.yaml:2:7: train.lr: 5 is out of range [0, 1]");
    EXPECT("train:\n  lr: -1e-9\n", "train.lr: -1e-9 is out of range [0, 1]");
    EXPECT("train:\n  steps: 1.5\n", "train.steps: expected an integer, got '1.5'");
    EXPECT("train:\n  steps: \"3\"\n", "train.steps: expected an integer, got the string \"3\"");
    EXPECT("train:\n  steps: 0\n", "train.steps: 0 is out of range [1, 10000000]");
    EXPECT("train:\n  steps: 99999999999999999999\n", "too large for an integer");
    EXPECT("train:\n  steps: [1]\n", "expected an integer, got a sequence");
    EXPECT("train:\n  ema: yes\n", "train.ema: expected true or false, got 'yes'");
    EXPECT("train:\n  ema: \"true\"\n", "expected true or false");
    EXPECT("train:\n  optimizer: rmsprop\n",
           "train.optimizer: unknown choice 'rmsprop'; valid: adam, adamw, sgd");
    EXPECT("train:\n  weights: 0.5\n", "train.weights: expected a sequence of numbers, got '0.5'");
    EXPECT("train:\n  weights: [0.5, x]\n",
           "spec.yaml:2:18: train.weights[1]: expected a real number, got 'x'");
    EXPECT("train:\n  weights: [0.5, 2]\n", "train.weights[1]: 2 is out of range [0, 1]");
    EXPECT("train:\n  weights: [0.5, [1]]\n", "train.weights[1]: expected a number, got a sequence");
    EXPECT("data:\n  means: [[1, 2], [3]]\n",
           "spec.yaml:2:19: ", "data.means: rows of different lengths (2 and 1)");
    EXPECT("data:\n  means: [[1, 2], 3]\n", "data.means[1]: expected a sequence of numbers (a row)");
    EXPECT("data:\n  means: [[]]\n", "data.means[0]: a row may not be empty");
    EXPECT("data:\n  means: [[1, a]]\n", "data.means[0][1]: expected a real number, got 'a'");
    EXPECT("data:\n  path: [a]\n", "data.path: expected a string, got a sequence");
    EXPECT("train: 5\n", "spec.yaml:1:8: train: expected a mapping, got '5'");
    EXPECT("train: [1]\n", "train: expected a mapping, got a sequence");
    EXPECT("diffusion: 3\n", "diffusion: expected a mapping, got '3'");
    EXPECT("diffusion:\n  schedule:\n    type: foo\n",
           "spec.yaml:3:11: ", "diffusion.schedule.type: unknown schedule 'foo'; valid: ddpm_linear, cosine");
    EXPECT("diffusion:\n  schedule: foo\n",
           "spec.yaml:2:13: ", "diffusion.schedule.type: unknown schedule 'foo'; valid: ddpm_linear, cosine");
    EXPECT("diffusion:\n  schedule: [1]\n", "diffusion.schedule: expected a mapping");
    EXPECT("diffusion:\n  schedule: {type: [a]}\n", "diffusion.schedule.type: expected a schedule name");

    char long_name[300];
    snprintf(long_name, sizeof long_name, "name: %0*d\n", DM_OPT_STR_MAX, 7);
    EXPECT(long_name, "name: string is longer than 127 bytes");
    EXPECT("name: \"a\\0b\"\n", "name: string contains a NUL");

    expect_error(&schema_req, "name: x\n", 0, NULL,
                 "diffusion.schedule.type is required; valid: ddpm_linear, cosine", NULL);
    expect_error(&schema_req, "diffusion:\n  schedule:\n    T: 5\n", 0, NULL,
                 "spec.yaml:3:5: diffusion.schedule.type is required", NULL);
    dm_spec *s = NULL;
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_spec_load_text(&schema_req, "diffusion: {schedule: cosine}\n", "x", 0, NULL, &s, err),
                     DM_OK);
    dm_spec_free(s);
}

static void test_aliases(void **state)
{
    (void)state;
    dm_spec *s = load_ok("train: &t\n"
                         "  lr: &lr 0.25\n"
                         "  weights: &w [0.1, 0.2]\n"
                         "data:\n"
                         "  means: [*w, *w, [*lr, *lr]]\n",
                         0, NULL);
    const data_opts *da = dm_spec_opts(s, "data");
    assert_int_equal(da->means.rows, 3);
    assert_true(da->means.v[2] == 0.1 && da->means.v[3] == 0.2 && da->means.v[5] == 0.25);
    dm_spec_free(s);
    EXPECT("train:\n  lr: *nope\n", "spec.yaml:2:7: ", "unknown alias '*nope'");
    EXPECT("train: &a\n  x: *a\n", "unknown alias '*a'");
    /* an error inside an alias copy names the key where the alias is used */
    EXPECT("train:\n  weights: &w [0.5]\n  lr: *w\n", "spec.yaml:3:7: train.lr: expected a real number");
}

static void test_alias_bomb(void **state)
{
    (void)state;
    const char *bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                       "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                       "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                       "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    clock_t t0 = clock();
    EXPECT(bomb, "spec.yaml:", "alias", "an alias bomb?");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);

    /* few nodes but many bytes: a 1 MiB string aliased 40 times */
    size_t big = 1u << 20, n = big + 512;
    char *text = malloc(n);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, n, "x: &s ");
    memset(text + used, 'y', big);
    used += big;
    used += (size_t)snprintf(text + used, n - used,
                             "\nl: [*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s,*s]\n");
    EXPECT(text, "bytes of text");
    free(text);

    /* nesting */
    char deep[1000];
    size_t k = 0;
    deep[k++] = 'a', deep[k++] = ':', deep[k++] = ' ';
    for (int i = 0; i < 300; i++)
        deep[k++] = '[';
    deep[k] = '\0';
    EXPECT(deep, "nesting deeper than");
}

/* ---- overrides ---- */

static void test_overrides(void **state)
{
    (void)state;
    const char *ov1[] = {"train.lr=0.5", "name=hello world", "train.weights=[0.25, 0.75]", "seed=9"};
    dm_spec *s = load_ok("train:\n  lr: 0.1\n", 4, ov1);
    const train_opts *tr = dm_spec_opts(s, "train");
    assert_true(tr->lr == 0.5);
    assert_true(tr->weights.n == 2 && tr->weights.v[1] == 0.75);
    assert_string_equal(((const top_opts *)dm_spec_opts(s, ""))->name, "hello world");
    dm_spec_free(s);

    /* type switch, then a key of the new plug-in */
    const char *ov2[] = {"diffusion.schedule.type=cosine", "diffusion.schedule.s=0.01"};
    s = load_ok("name: x\n", 2, ov2);
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    assert_true(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->s == 0.01);
    dm_spec_free(s);

    /* into a shorthand, through a null, creating missing mappings */
    const char *ov3[] = {"diffusion.schedule.s=0.02", "train.steps=7", "data.path=p"};
    s = load_ok("diffusion:\n  schedule: cosine\ntrain:\n", 3, ov3);
    assert_true(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->s == 0.02);
    assert_int_equal(((const train_opts *)dm_spec_opts(s, "train"))->steps, 7);
    assert_string_equal(((const data_opts *)dm_spec_opts(s, "data"))->path, "p");
    dm_spec_free(s);

    /* a whole section as a shorthand, and an empty value for a string */
    const char *ov4[] = {"diffusion.schedule=cosine", "data.path="};
    s = load_ok("diffusion:\n  schedule: {type: ddpm_linear, T: 5}\ndata: {path: q}\n", 2, ov4);
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    assert_int_equal(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 1000);
    assert_string_equal(((const data_opts *)dm_spec_opts(s, "data"))->path, "");
    dm_spec_free(s);
}

/* A type switch drops the old plug-in's keys (even those the new one also has: T) and is applied
 * before the other overrides; setting the type a section has keeps its keys. */
static void test_type_switch(void **state)
{
    (void)state;
    const char *text = "diffusion:\n  schedule: {type: ddpm_linear, T: 5, beta_T: 0.5}\n";
    const char *sw[] = {"diffusion.schedule.type=cosine"};
    dm_spec *s = load_ok(text, 1, sw);
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    assert_int_equal(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 1000);
    dm_spec_free(s);

    const char *after[] = {"diffusion.schedule.T=9", "diffusion.schedule.type=cosine"};
    s = load_ok(text, 2, after);
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    assert_int_equal(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 9);
    dm_spec_free(s);

    const char *same[] = {"diffusion.schedule.type=ddpm_linear"};
    s = load_ok(text, 1, same);
    assert_int_equal(((const linear_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 5);
    assert_true(((const linear_opts *)dm_spec_opts(s, "diffusion.schedule"))->beta_T == 0.5);
    dm_spec_free(s);

    /* No `type` given: the section's default (ddpm_linear) is the plug-in it has. */
    const char *dflt[] = {"diffusion.schedule.type=ddpm_linear"};
    s = load_ok("diffusion:\n  schedule: {T: 5}\n", 1, dflt);
    assert_int_equal(((const linear_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 5);
    dm_spec_free(s);
    const char *dflt2[] = {"diffusion.schedule.type=cosine"};
    s = load_ok("diffusion:\n  schedule: {T: 5}\n", 1, dflt2);
    assert_int_equal(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 1000);
    dm_spec_free(s);

    /* A key of the old plug-in given explicitly with the switch is still an error. */
    const char *bad[] = {"diffusion.schedule.type=cosine", "diffusion.schedule.beta_T=0.1"};
    expect_error(&schema, text, 2, bad, "unknown key 'diffusion.schedule.beta_T'", NULL);
}

static void test_override_errors(void **state)
{
    (void)state;
    const char *a[] = {"train.lrr=1"};
    EXPECT_OV("name: x\n", 1, a, "override 'train.lrr=1': unknown key 'train.lrr'", "did you mean: train.lr");
    const char *b[] = {"train.lr=abc"};
    EXPECT_OV("name: x\n", 1, b, "override 'train.lr=abc': train.lr: expected a real number, got 'abc'");
    const char *c[] = {"train.lr"};
    EXPECT_OV("name: x\n", 1, c, "override 'train.lr': expected KEY=VALUE");
    const char *d[] = {"diffusion.schedule.type=cosine", "diffusion.schedule.beta_1=0.1"};
    EXPECT_OV("name: x\n", 2, d,
              "override 'diffusion.schedule.beta_1=0.1': unknown key 'diffusion.schedule.beta_1' for "
              "schedule 'cosine'",
              "a key of: ddpm_linear");
    /* (A switch to another type drops the file's keys: test_type_switch. Naming the type the
     * section has keeps them, so a wrong one is still found where the file gives it.) */
    const char *e[] = {"diffusion.schedule.type=ddpm_linear"};
    EXPECT_OV("diffusion:\n  schedule:\n    s: 0.1\n", 1, e,
              "spec.yaml:3:5: unknown key 'diffusion.schedule.s'",
              "chosen by override 'diffusion.schedule.type=ddpm_linear'");
    const char *f[] = {"diffusion.schedule.type=foo"};
    EXPECT_OV("name: x\n", 1, f,
              "override 'diffusion.schedule.type=foo': diffusion.schedule.type: unknown schedule 'foo'; "
              "valid: ddpm_linear, cosine");
    const char *g[] = {"train..lr=1"};
    EXPECT_OV("name: x\n", 1, g, "override 'train..lr=1': empty component");
    const char *h[] = {"train.lr.x=1"};
    EXPECT_OV("train:\n  lr: 0.1\n", 1, h, "override 'train.lr.x=1': cannot set a key under 'train.lr'");
    const char *i[] = {"train.weights=[1, 2"};
    EXPECT_OV("name: x\n", 1, i, "override 'train.weights=[1, 2': ");
    const char *j[] = {"trian.lr=1"};
    EXPECT_OV("name: x\n", 1, j, "override 'trian.lr=1': unknown key 'trian'", "did you mean: train?");
    const char *k[] = {"train.steps=5", "train.lr=9"};
    EXPECT_OV("name: x\n", 2, k, "override 'train.lr=9': train.lr: 9 is out of range [0, 1]");
}

/* ---- output ---- */

static const char *const default_canonical = "data:\n"
                                             "  means: [[0.0, 0.0], [1.0, 1.0]]\n"
                                             "  path: \"\"\n"
                                             "diffusion:\n"
                                             "  schedule:\n"
                                             "    T: 1000\n"
                                             "    beta_1: 0.0001\n"
                                             "    beta_T: 0.02\n"
                                             "    type: \"ddpm_linear\"\n"
                                             "name: \"run\"\n"
                                             "seed: 0\n"
                                             "train:\n"
                                             "  ema: true\n"
                                             "  log_every: 100\n"
                                             "  lr: 0.001\n"
                                             "  lr_min: 1.0e-05\n"
                                             "  optimizer: \"adam\"\n"
                                             "  steps: 1000\n"
                                             "  weights: [0.5, 0.5]\n";

static void test_canonical(void **state)
{
    (void)state;
    dm_spec *s = load_ok("{}\n", 0, NULL);
    char *c = canonical(s, 0);
    assert_string_equal(c, default_canonical);
    dm_free(c);
    dm_spec_free(s);

    const char *text = "name: \"q\\\"uo\\\\te\\n\\t\\x01 σ \\u0085 é\"\n"
                       "seed: 12345\n"
                       "train:\n"
                       "  lr: 0.30000000000000004\n"
                       "  lr_min: -1e300\n"
                       "  steps: 7\n"
                       "  ema: false\n"
                       "  optimizer: adamw\n"
                       "  weights: [0.1, 1, 0.0, 5e-324]\n"
                       "data:\n"
                       "  means: [[1e20, -0.0, 2.5]]\n"
                       "diffusion:\n"
                       "  schedule: {type: cosine, s: 0.125}\n";
    s = load_ok(text, 0, NULL);
    char *c1 = canonical(s, 0);
    assert_non_null(strstr(c1, "  lr: 0.30000000000000004\n"));
    assert_non_null(strstr(c1, "  lr_min: -1.0e+300\n"));
    assert_non_null(strstr(c1, "  weights: [0.1, 1.0, 0.0, 5.0e-324]\n"));
    assert_non_null(strstr(c1, "  means: [[1.0e+20, -0.0, 2.5]]\n"));
    assert_non_null(strstr(c1, "name: \"q\\\"uo\\\\te\\n\\t\\x01 σ \\u0085 é\"\n"));
    assert_non_null(strstr(c1, "diffusion:\n  schedule:\n    T: 1000\n    s: 0.125\n    type: \"cosine\"\n"));
    dm_spec *s2 = load_ok(c1, 0, NULL);
    char *c2 = canonical(s2, 0);
    assert_string_equal(c1, c2);
    const top_opts *t1 = dm_spec_opts(s, ""), *t2 = dm_spec_opts(s2, "");
    assert_string_equal(t1->name, t2->name);
    assert_int_equal(
        memcmp(dm_spec_opts(s, "train"), dm_spec_opts(s2, "train"), offsetof(train_opts, weights)), 0);
    char *h1 = canonical(s, 1);
    assert_null(strstr(h1, "seed"));
    assert_null(strstr(h1, "name"));
    assert_null(strstr(h1, "log_every"));
    assert_non_null(strstr(h1, "  lr: 0.30000000000000004\n"));
    dm_free(h1);
    dm_free(c1);
    dm_free(c2);
    dm_spec_free(s);
    dm_spec_free(s2);
}

static void hash_of(const char *text, int n, const char *const *ov, char hex[65])
{
    char err[DM_ERR_SIZE];
    dm_spec *s = load_ok(text, n, ov);
    assert_int_equal(dm_spec_config_hash(s, hex, err), DM_OK);
    assert_int_equal(strlen(hex), 64);
    dm_spec_free(s);
}

static void test_config_hash(void **state)
{
    (void)state;
    char h0[65], h[65];
    hash_of("name: a\nseed: 1\n", 0, NULL, h0);
    hash_of("name: b\nseed: 2\ntrain: {log_every: 7}\n", 0, NULL, h);
    assert_string_equal(h0, h);
    hash_of("train: {lr: 0.001}\ndiffusion: {schedule: ddpm_linear}\n", 0, NULL, h);
    assert_string_equal(h0, h); /* defaults written out or not: the same inputs */
    const char *ov[] = {"train.lr=0.002"};
    hash_of("name: a\n", 1, ov, h);
    assert_string_not_equal(h0, h);
    hash_of("diffusion: {schedule: cosine}\n", 0, NULL, h);
    assert_string_not_equal(h0, h);
}

typedef struct seen {
    int n;
    char keys[32][64];
} seen;

static dm_status collect_kv(void *ctx, const dm_spec_kv *kv, char *err)
{
    seen *s = ctx;
    assert_true(s->n < 32);
    snprintf(s->keys[s->n++], 64, "%s", kv->key);
    assert_non_null(kv->text);
    if (strcmp(kv->key, "diffusion.schedule.type") == 0) {
        assert_int_equal(kv->type, DM_OPT_STR);
        assert_string_equal(kv->text, "cosine");
        assert_int_equal(kv->flags, 0);
    } else if (strcmp(kv->key, "train.lr") == 0) {
        assert_int_equal(kv->type, DM_OPT_REAL);
        assert_true(kv->r == 0.25);
        assert_string_equal(kv->text, "0.25");
    } else if (strcmp(kv->key, "train.optimizer") == 0) {
        assert_int_equal(kv->type, DM_OPT_CHOICE);
        assert_int_equal(kv->i, 1);
        assert_string_equal(kv->text, "adamw");
    } else if (strcmp(kv->key, "train.ema") == 0) {
        assert_int_equal(kv->type, DM_OPT_BOOL);
        assert_int_equal(kv->i, 0);
    } else if (strcmp(kv->key, "seed") == 0) {
        assert_int_equal(kv->type, DM_OPT_INT);
        assert_int_equal(kv->i, 77);
        assert_int_equal(kv->flags, DM_OPT_SEED);
    } else if (strcmp(kv->key, "name") == 0) {
        assert_int_equal(kv->type, DM_OPT_STR);
        assert_string_equal(kv->text, "n \"1\"");
        assert_int_equal(kv->flags, DM_OPT_NOHASH);
    } else if (strcmp(kv->key, "data.means") == 0) {
        assert_int_equal(kv->type, DM_OPT_REALS);
        assert_string_equal(kv->text, "[[0.0, 0.0], [1.0, 1.0]]");
    }
    return dm_err(err, DM_OK, "ok");
}

static dm_status stop_at_third(void *ctx, const dm_spec_kv *kv, char *err)
{
    (void)kv;
    return ++*(int *)ctx == 3 ? dm_err(err, DM_E_IO, "stop") : DM_OK;
}

static void test_foreach(void **state)
{
    (void)state;
    static const char *const want[] = {"data.means",
                                       "data.path",
                                       "diffusion.schedule.T",
                                       "diffusion.schedule.s",
                                       "diffusion.schedule.type",
                                       "name",
                                       "seed",
                                       "train.ema",
                                       "train.log_every",
                                       "train.lr",
                                       "train.lr_min",
                                       "train.optimizer",
                                       "train.steps",
                                       "train.weights"};
    char err[DM_ERR_SIZE];
    dm_spec *s = load_ok("name: n \"1\"\nseed: 77\ntrain: {lr: 0.25, optimizer: adamw, ema: false}\n"
                         "diffusion: {schedule: cosine}\n",
                         0, NULL);
    seen sn = {0};
    assert_int_equal(dm_spec_foreach(s, collect_kv, &sn, err), DM_OK);
    assert_int_equal(sn.n, sizeof want / sizeof *want);
    for (int i = 0; i < sn.n; i++)
        assert_string_equal(sn.keys[i], want[i]);
    int calls = 0;
    assert_int_equal(dm_spec_foreach(s, stop_at_third, &calls, err), DM_E_IO);
    assert_int_equal(calls, 3);
    assert_string_equal(err, "stop");
    dm_spec_free(s);
}

static char *keys_text(const char *filter, dm_status want)
{
    char err[DM_ERR_SIZE], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(dm_spec_print_keys(&schema, filter, f, err), want);
    fclose(f);
    if (want != DM_OK) {
        free(buf);
        return strdup(err);
    }
    return buf;
}

/* The column at which `word` starts on the line that starts with `key`. */
static long column_of(const char *text, const char *key, const char *word)
{
    size_t n = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, n) == 0 && l[n] == ' ') {
            const char *w = strstr(l + n, word);
            return w ? (long)(w - l) : -1;
        }
    }
    return -1;
}

static void test_print_keys(void **state)
{
    (void)state;
    char *all = keys_text(NULL, DM_OK);
    assert_non_null(strstr(all, "diffusion.schedule.type"));
    assert_non_null(strstr(all, "{ddpm_linear, cosine}"));
    assert_non_null(strstr(all, "(ddpm_linear) number of steps"));
    assert_non_null(strstr(all, "(cosine) offset"));
    assert_non_null(strstr(all, "{adam, adamw, sgd}"));
    assert_non_null(strstr(all, "[1, 100000]"));
    assert_non_null(strstr(all, "[0, 1]"));
    assert_non_null(strstr(all, "master seed"));
    long c1 = column_of(all, "train.lr", "real"), c2 = column_of(all, "diffusion.schedule.beta_1", "real"),
         c3 = column_of(all, "seed", "int");
    assert_true(c1 > 0);
    assert_int_equal(c1, c2);
    assert_int_equal(c1, c3);
    assert_int_equal(column_of(all, "train.lr", "1e-3"), column_of(all, "diffusion.schedule.T", "1000"));
    assert_non_null(strstr(all, "\n"));
    free(all);

    char *cos = keys_text("cosine", DM_OK);
    assert_non_null(strstr(cos, "diffusion.schedule.s"));
    assert_non_null(strstr(cos, "(cosine)"));
    assert_null(strstr(cos, "(ddpm_linear)"));
    assert_null(strstr(cos, "train."));
    free(cos);

    char *tr = keys_text("train", DM_OK);
    assert_non_null(strstr(tr, "train.weights"));
    assert_null(strstr(tr, "diffusion"));
    free(tr);

    char *dif = keys_text("diffusion", DM_OK);
    assert_non_null(strstr(dif, "(ddpm_linear)"));
    assert_non_null(strstr(dif, "(cosine)"));
    free(dif);

    char *bad = keys_text("nope", DM_E_INPUT);
    assert_non_null(strstr(bad, "'nope'"));
    assert_non_null(strstr(bad, "train"));
    assert_non_null(strstr(bad, "diffusion.schedule"));
    assert_non_null(strstr(bad, "cosine"));
    free(bad);
}

/* ---- every allocation failing in turn ---- */

static dm_status full_cycle(const char *text, int n, const char *const *ov)
{
    char err[DM_ERR_SIZE], hex[65], *c = NULL;
    dm_spec *s = NULL, *s2 = NULL;
    int calls = 0;
    dm_status st = dm_spec_load_text(&schema, text, "spec.yaml", n, ov, &s, err);
    if (st == DM_OK)
        st = dm_spec_canonical(s, 0, &c, err);
    if (st == DM_OK)
        st = dm_spec_load_text(&schema, c, "canonical", 0, NULL, &s2, err);
    if (st == DM_OK)
        st = dm_spec_config_hash(s2, hex, err);
    if (st == DM_OK)
        st = dm_spec_foreach(s2, stop_at_third, &calls, err) == DM_E_IO ? DM_OK : DM_E_NOMEM;
    dm_free(c);
    dm_spec_free(s);
    dm_spec_free(s2);
    return st;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "name: &n a\ntrain:\n  weights: &w [0.1, 0.2]\n  lr: 0.1\n"
                       "data: {means: [*w, *w]}\ndiffusion:\n  schedule: cosine\n";
    const char *ov[] = {"diffusion.schedule.s=0.5", "train.steps=9", "data.path=x"};
    dm_alloc_fail_at(0);
    assert_int_equal(full_cycle(text, 3, ov), DM_OK);
    long total = dm_alloc_fail_at(0);
    assert_true(total > 20);
    for (long k = 1; k <= total + 1; k++) {
        dm_alloc_fail_at(k);
        dm_status st = full_cycle(text, 3, ov);
        dm_alloc_fail_at(0);
        if (k <= total && st != DM_E_NOMEM)
            print_error("allocation %ld of %ld: status %d\n", k, total, st);
        assert_int_equal(st, k <= total ? DM_E_NOMEM : DM_OK);
    }

    /* the same on a path that ends in an input error */
    const char *bad_text = "train:\n  lr: 0.1\n  weights: [0.5]\ndata: {means: [[1, 2]]}\nzz: 1\n";
    full_cycle(bad_text, 0, NULL);
    total = dm_alloc_fail_at(0);
    for (long k = 1; k <= total + 1; k++) {
        dm_alloc_fail_at(k);
        dm_status st = full_cycle(bad_text, 0, NULL);
        dm_alloc_fail_at(0);
        assert_true(st == DM_E_NOMEM || st == DM_E_INPUT);
        if (k > total)
            assert_int_equal(st, DM_E_INPUT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_values),
        cmocka_unit_test(test_file),           cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_key_errors),     cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_aliases),        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_overrides),      cmocka_unit_test(test_type_switch),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_canonical),      cmocka_unit_test(test_config_hash),
        cmocka_unit_test(test_foreach),        cmocka_unit_test(test_print_keys),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
