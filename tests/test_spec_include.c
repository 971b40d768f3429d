/* Tests of io/spec_include.c: `base:` in spec files. The merge (deep, a plug-in section of
 * another type replacing the base's, shorthands, empty sections), paths relative to the naming
 * file, lists of bases, cycles and nesting refused with the chain, errors placed in the file where
 * they are, the same canonical text and hash as the flat spec, base: refused where there is no
 * file, every allocation failing, and `base` reserved in difflab's own schema. */
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

#include "core/alloc.h"
#include "io/spec.h"
#include "train/schema.h"

/* ---- a small schema: top level, a fixed section, a plug-in section ---- */

typedef struct top_opts {
    char name[DM_OPT_STR_MAX];
    int64_t seed;
} top_opts;

static const dm_param_desc top_params[] = {
    {"name", DM_OPT_STR, "run", 0, 0, NULL, DM_OPT_NOHASH, offsetof(top_opts, name), "short name"},
    {"seed", DM_OPT_INT, "0", 0, 1e9, NULL, DM_OPT_SEED, offsetof(top_opts, seed), "master seed"},
    DM_OPT_END,
};
static const dm_plugin top_plugin = {"top", "top-level keys", top_params, sizeof(top_opts)};

typedef struct train_opts {
    int64_t steps;
    double lr;
    dm_reals weights;
} train_opts;

static const dm_param_desc train_params[] = {
    {"steps", DM_OPT_INT, "1000", 1, 1e7, NULL, 0, offsetof(train_opts, steps), "training steps"},
    {"lr", DM_OPT_REAL, "1e-3", 0, 1, NULL, 0, offsetof(train_opts, lr), "learning rate"},
    {"weights", DM_OPT_REALS, "[0.5, 0.5]", 0, 1, NULL, 0, offsetof(train_opts, weights), "weights"},
    DM_OPT_END,
};
static const dm_plugin train_plugin = {"train", "training loop", train_params, sizeof(train_opts)};

typedef struct linear_opts {
    int64_t T;
    double beta_1;
} linear_opts;

static const dm_param_desc linear_params[] = {
    {"T", DM_OPT_INT, "1000", 1, 100000, NULL, 0, offsetof(linear_opts, T), "number of steps"},
    {"beta_1", DM_OPT_REAL, "1e-4", 0, 1, NULL, 0, offsetof(linear_opts, beta_1), "first beta"},
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
    {"diffusion.schedule", "noise schedule", NULL, schedules, "ddpm_linear", "schedule"},
};
static const dm_schema schema = {sections, sizeof sections / sizeof *sections};

/* ---- files in a scratch folder ---- */

static char root[512];

static const char *P(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

static void put(const char *name, const char *text)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", P(name));
    for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(dir, 0777);
        *s = '/';
    }
    FILE *f = fopen(P(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("DIFFLAB_TEST_TMP");
    if (t)
        mkdir(t, 0777);
    snprintf(root, sizeof root, "%s/test_spec_include_%ld", t ? t : "/tmp", (long)getpid());
    mkdir(root, 0777);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static dm_spec *load_ok(const char *name, int n, const char *const *ov)
{
    char err[DM_ERR_SIZE] = "";
    dm_spec *s = NULL;
    dm_status st = dm_spec_load_file(&schema, P(name), n, ov, &s, err);
    if (st != DM_OK)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(st, DM_OK);
    return s;
}

/* Loads and expects DM_E_INPUT with the message `want` (every "@" replaced by the scratch folder). */
static void expect_error(const char *name, const char *want)
{
    char err[DM_ERR_SIZE] = "", full[DM_ERR_SIZE] = "";
    dm_spec *s = (dm_spec *)1;
    dm_status st = dm_spec_load_file(&schema, P(name), 0, NULL, &s, err);
    for (size_t used = 0; *want && used + 1 < sizeof full; want++) {
        if (*want == '@')
            used += (size_t)snprintf(full + used, sizeof full - used, "%s", root);
        else
            full[used++] = *want;
        full[used < sizeof full ? used : sizeof full - 1] = '\0';
    }
    if (st != DM_E_INPUT || strcmp(err, full) != 0)
        print_error("status %d\n got: %s\nwant: %s\n", st, err, full);
    assert_int_equal(st, DM_E_INPUT);
    assert_null(s);
    assert_string_equal(err, full);
}

static char *canonical(const dm_spec *s)
{
    char err[DM_ERR_SIZE], *t = NULL;
    assert_int_equal(dm_spec_canonical(s, 0, &t, err), DM_OK);
    return t;
}

/* The spec file `name` resolves to the same canonical text and config hash as the flat `text`. */
static void same_as_flat(const char *name, const char *text)
{
    char err[DM_ERR_SIZE], h1[65], h2[65];
    dm_spec *a = load_ok(name, 0, NULL), *b = NULL;
    assert_int_equal(dm_spec_load_text(&schema, text, "flat.yaml", 0, NULL, &b, err), DM_OK);
    char *ca = canonical(a), *cb = canonical(b);
    assert_string_equal(ca, cb);
    assert_int_equal(dm_spec_config_hash(a, h1, err), DM_OK);
    assert_int_equal(dm_spec_config_hash(b, h2, err), DM_OK);
    assert_string_equal(h1, h2);
    dm_free(ca);
    dm_free(cb);
    dm_spec_free(a);
    dm_spec_free(b);
}

/* ---- tests ---- */

static void test_merge(void **state)
{
    (void)state;
    put("m/base.yaml", "name: base\nseed: 3\ntrain: {steps: 5, lr: 0.1, weights: [0.2, 0.8]}\n"
                       "diffusion:\n  schedule: {type: ddpm_linear, T: 10, beta_1: 0.001}\n");
    put("m/a.yaml", "base: base.yaml\nname: a\ntrain: {lr: 0.2, weights: [1]}\ndiffusion: {schedule: {T: 20}}\n");
    dm_spec *s = load_ok("m/a.yaml", 0, NULL);
    const train_opts *tr = dm_spec_opts(s, "train");
    assert_int_equal(tr->steps, 5);               /* the base's */
    assert_true(tr->lr == 0.2);                   /* the includer's */
    assert_int_equal(tr->weights.n, 1);           /* a sequence replaces, never appends */
    assert_string_equal(((const top_opts *)dm_spec_opts(s, ""))->name, "a");
    assert_int_equal(((const top_opts *)dm_spec_opts(s, ""))->seed, 3);
    const linear_opts *li = dm_spec_opts(s, "diffusion.schedule");
    assert_int_equal(li->T, 20);
    assert_true(li->beta_1 == 0.001);
    /* where a key was given: the base's keys name the base file */
    char where[600];
    dm_spec_where(s, "train.steps", where, sizeof where);
    assert_string_equal(where, P("m/base.yaml:3:16"));
    dm_spec_where(s, "train.lr", where, sizeof where);
    assert_string_equal(where, P("m/a.yaml:3:13"));
    dm_spec_free(s);
    same_as_flat("m/a.yaml", "name: a\nseed: 3\ntrain: {steps: 5, lr: 0.2, weights: [1]}\n"
                             "diffusion: {schedule: {type: ddpm_linear, T: 20, beta_1: 0.001}}\n");

    /* overrides apply to the merged tree, as to a flat spec */
    const char *ov[] = {"train.steps=7", "diffusion.schedule.type=cosine"};
    s = load_ok("m/a.yaml", 2, ov);
    assert_int_equal(((const train_opts *)dm_spec_opts(s, "train"))->steps, 7);
    assert_ptr_equal(dm_spec_plugin(s, "diffusion.schedule"), &sched_cosine);
    assert_int_equal(((const cosine_opts *)dm_spec_opts(s, "diffusion.schedule"))->T, 1000);
    dm_spec_free(s);

    /* an empty section keeps the base's; a list of bases merges in order, the later winning */
    put("m/empty.yaml", "base: base.yaml\ntrain:\n");
    same_as_flat("m/empty.yaml", "name: base\nseed: 3\ntrain: {steps: 5, lr: 0.1, weights: [0.2, 0.8]}\n"
                                 "diffusion: {schedule: {T: 10, beta_1: 0.001}}\n");
    put("m/second.yaml", "train: {steps: 6}\nseed: 4\n");
    put("m/list.yaml", "base: [base.yaml, second.yaml]\nseed: 5\n");
    same_as_flat("m/list.yaml", "name: base\nseed: 5\ntrain: {steps: 6, lr: 0.1, weights: [0.2, 0.8]}\n"
                                "diffusion: {schedule: {T: 10, beta_1: 0.001}}\n");
}

static void test_type_switch(void **state)
{
    (void)state;
    put("t/base.yaml", "diffusion:\n  schedule: {type: ddpm_linear, T: 10, beta_1: 0.001}\n");
    /* another plug-in: the base's section goes whole (its T and beta_1 mean nothing to cosine) */
    put("t/other.yaml", "base: base.yaml\ndiffusion: {schedule: {type: cosine, s: 0.01}}\n");
    same_as_flat("t/other.yaml", "diffusion: {schedule: {type: cosine, s: 0.01}}\n");
    put("t/short.yaml", "base: base.yaml\ndiffusion: {schedule: cosine}\n");
    same_as_flat("t/short.yaml", "diffusion: {schedule: cosine}\n");
    /* the same plug-in, given by shorthand or by type: merged key by key */
    put("t/same.yaml", "base: base.yaml\ndiffusion: {schedule: ddpm_linear}\n");
    same_as_flat("t/same.yaml", "diffusion: {schedule: {T: 10, beta_1: 0.001}}\n");
    put("t/same2.yaml", "base: base.yaml\ndiffusion: {schedule: {type: ddpm_linear, T: 30}}\n");
    same_as_flat("t/same2.yaml", "diffusion: {schedule: {T: 30, beta_1: 0.001}}\n");
    /* a shorthand in the base is {type: X} */
    put("t/cos.yaml", "diffusion: {schedule: cosine}\n");
    put("t/cos2.yaml", "base: cos.yaml\ndiffusion: {schedule: {s: 0.02}}\n");
    same_as_flat("t/cos2.yaml", "diffusion: {schedule: {type: cosine, s: 0.02}}\n");
    /* a base without a type has the section's default type: a switch from it replaces */
    put("t/dflt.yaml", "diffusion: {schedule: {T: 7}}\n");
    put("t/dflt2.yaml", "base: dflt.yaml\ndiffusion: {schedule: {type: cosine}}\n");
    same_as_flat("t/dflt2.yaml", "diffusion: {schedule: cosine}\n");
    put("t/dflt3.yaml", "base: dflt.yaml\ndiffusion: {schedule: {type: ddpm_linear, beta_1: 0.002}}\n");
    same_as_flat("t/dflt3.yaml", "diffusion: {schedule: {T: 7, beta_1: 0.002}}\n");
    /* a section's own base, of another type than the section says: the section's keys alone */
    put("t/sched.yaml", "type: ddpm_linear\nT: 12\n");
    put("t/sec.yaml", "diffusion: {schedule: {base: sched.yaml, type: cosine}}\n");
    same_as_flat("t/sec.yaml", "diffusion: {schedule: cosine}\n");
}

static void test_relative_paths(void **state)
{
    (void)state;
    /* Each path is relative to the file that names it: x/a.yaml names ../y/b.yaml, which names
     * sched.yaml: y/sched.yaml, not x/sched.yaml nor one in the working folder. */
    put("r/x/sched.yaml", "type: ddpm_linear\nT: 111\n");
    put("r/y/sched.yaml", "type: ddpm_linear\nT: 222\n");
    put("r/y/b.yaml", "name: b\ndiffusion: {schedule: {base: sched.yaml, beta_1: 0.003}}\n");
    put("r/x/a.yaml", "base: ../y/b.yaml\ntrain: {steps: 9}\n");
    same_as_flat("r/x/a.yaml", "name: b\ntrain: {steps: 9}\ndiffusion: {schedule: {T: 222, beta_1: 0.003}}\n");
    /* a section's base in the including file itself, next to it */
    put("r/x/c.yaml", "diffusion:\n  schedule:\n    base: sched.yaml\n");
    same_as_flat("r/x/c.yaml", "diffusion: {schedule: {T: 111}}\n");
    /* a container's base holds that container's keys; an absolute path is taken as it is */
    char text[1200];
    snprintf(text, sizeof text, "diffusion: {base: %s}\n", P("r/y/diff.yaml"));
    put("r/y/diff.yaml", "schedule: {type: cosine, T: 50}\n");
    put("r/abs.yaml", text);
    same_as_flat("r/abs.yaml", "diffusion: {schedule: {type: cosine, T: 50}}\n");
    /* two sections naming one file is not a cycle */
    put("r/d/t.yaml", "steps: 3\n");
    put("r/d/both.yaml", "train: {base: t.yaml}\nbase: one.yaml\n");
    put("r/d/one.yaml", "train: {base: t.yaml, lr: 0.5}\n");
    same_as_flat("r/d/both.yaml", "train: {steps: 3, lr: 0.5}\n");
}

static void test_cycles(void **state)
{
    (void)state;
    put("c/a.yaml", "name: a\nbase: b.yaml\n");
    put("c/b.yaml", "base: a.yaml\n");
    expect_error("c/a.yaml", "@/c/b.yaml:1:7: base: include cycle: @/c/a.yaml -> @/c/b.yaml -> @/c/a.yaml");
    put("c/self.yaml", "train: {steps: 2}\nbase: self.yaml\n");
    expect_error("c/self.yaml", "@/c/self.yaml:2:7: base: include cycle: @/c/self.yaml -> @/c/self.yaml");
    /* through a section and another spelling of the same file */
    put("c/s/sec.yaml", "base: ../s/sec.yaml\n");
    put("c/sec_top.yaml", "train: {base: s/sec.yaml}\n");
    expect_error("c/sec_top.yaml",
                 "@/c/s/sec.yaml:1:7: base: include cycle: @/c/sec_top.yaml -> @/c/s/sec.yaml -> @/c/s/../s/sec.yaml");
    /* 17 files deep: more than the bound */
    char name[64], text[64];
    for (int i = 0; i < 17; i++) {
        snprintf(name, sizeof name, "c/deep%d.yaml", i);
        snprintf(text, sizeof text, "base: deep%d.yaml\n", i + 1);
        put(name, text);
    }
    put("c/deep17.yaml", "seed: 1\n");
    expect_error("c/deep0.yaml", "@/c/deep16.yaml:1:7: base: more than 16 nested base files");
    put("c/deep1.yaml", "base: deep17.yaml\n");
    dm_spec_free(load_ok("c/deep0.yaml", 0, NULL));
}

static void test_errors(void **state)
{
    (void)state;
    put("e/missing.yaml", "name: x\ntrain: {base: nope.yaml}\n");
    expect_error("e/missing.yaml", "@/e/missing.yaml:2:15: base: cannot read '@/e/nope.yaml': No such file or directory");
    put("e/dir.yaml", "base: sub\n");
    put("e/sub/x.yaml", "seed: 1\n");
    expect_error("e/dir.yaml", "@/e/dir.yaml:1:7: base: '@/e/sub' is not a file");
    /* errors inside a base file name that file, its line and column */
    put("e/bad_type.yaml", "train:\n  steps: 4\n  lr: fast\n");
    put("e/uses_bad.yaml", "seed: 2\nbase: bad_type.yaml\n");
    expect_error("e/uses_bad.yaml", "@/e/bad_type.yaml:3:7: train.lr: expected a real number, got 'fast'");
    put("e/bad_key.yaml", "stepz: 4\n");
    put("e/uses_key.yaml", "train: {base: bad_key.yaml}\n");
    expect_error("e/uses_key.yaml",
                 "@/e/bad_key.yaml:1:1: unknown key 'train.stepz'; did you mean: train.steps?");
    put("e/syntax.yaml", "train: {steps: [1, 2}\n");
    put("e/uses_syntax.yaml", "name: s\nbase: syntax.yaml\n");
    expect_error("e/uses_syntax.yaml", "@/e/syntax.yaml:1:21: did not find expected ',' or ']' (while parsing a "
                                       "flow sequence at line 1) (the base named at @/e/uses_syntax.yaml:2:7)");
    put("e/seq.yaml", "- 1\n");
    put("e/uses_seq.yaml", "train: {base: seq.yaml}\n");
    expect_error("e/uses_seq.yaml", "@/e/seq.yaml:1:1: expected a mapping of train keys, got a sequence (the base "
                                    "named at @/e/uses_seq.yaml:1:15)");
    put("e/empty.yaml", "# nothing\n");
    put("e/uses_empty.yaml", "base: empty.yaml\n");
    expect_error("e/uses_empty.yaml", "@/e/empty.yaml:1:1: the base file is empty (expected a mapping of keys) (the "
                                      "base named at @/e/uses_empty.yaml:1:7)");
    put("e/not_path.yaml", "base: {a: 1}\n");
    expect_error("e/not_path.yaml",
                 "@/e/not_path.yaml:1:7: base: expected the path of a spec file (or a list of paths), got a mapping");
    put("e/empty_list.yaml", "base: []\n");
    expect_error("e/empty_list.yaml", "@/e/empty_list.yaml:1:7: base: an empty list (give a path, or leave base out)");
    put("e/null.yaml", "base:\n");
    expect_error("e/null.yaml",
                 "@/e/null.yaml:1:6: base: expected the path of a spec file (or a list of paths), got nothing");
    /* a key merged from a base is checked where it stands: a base's train.steps out of range */
    put("e/range.yaml", "train: {steps: 0}\n");
    put("e/uses_range.yaml", "base: range.yaml\ntrain: {lr: 0.5}\n");
    expect_error("e/uses_range.yaml", "@/e/range.yaml:1:16: train.steps: 0 is out of range [1, 10000000]");

    /* no file to resolve against: refused, in a text load and in an override's value */
    char err[DM_ERR_SIZE];
    dm_spec *s = (dm_spec *)1;
    assert_int_equal(dm_spec_load_text(&schema, "seed: 1\nbase: x.yaml\n", "<run r/config>", 0, NULL, &s, err),
                     DM_E_INPUT);
    assert_string_equal(err, "<run r/config>:2:1: base: base files are read only from a spec file (difflab run "
                             "FILE), not from an override or a recorded spec");
    assert_null(s);
    const char *ov[] = {"train={base: t.yaml}"};
    put("e/ok.yaml", "seed: 1\n");
    assert_int_equal(dm_spec_load_file(&schema, P("e/ok.yaml"), 1, ov, &s, err), DM_E_INPUT);
    assert_string_equal(err, "override 'train={base: t.yaml}': train.base: base files are read only from a spec "
                             "file (difflab run FILE), not from an override or a recorded spec");
}

/* Every allocation of a load with bases, failed in turn: DM_E_NOMEM each time, no leak (ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    put("f/sched.yaml", "type: ddpm_linear\nT: 12\n");
    put("f/base.yaml", "name: b\ntrain: {steps: 5, weights: [0.1, 0.2]}\ndiffusion: {schedule: {base: sched.yaml}}\n");
    put("f/a.yaml", "base: [base.yaml]\ntrain: {lr: 0.2}\ndiffusion: {schedule: ddpm_linear}\n");
    const char *ov[] = {"train.steps=6"};
    char err[DM_ERR_SIZE];
    dm_spec *s = NULL;
    dm_alloc_fail_at(0);
    assert_int_equal(dm_spec_load_file(&schema, P("f/a.yaml"), 1, ov, &s, err), DM_OK);
    dm_spec_free(s);
    const long total = dm_alloc_fail_at(0);
    assert_true(total > 20);
    for (long k = 1; k <= total + 1; k++) {
        s = NULL;
        dm_alloc_fail_at(k);
        dm_status st = dm_spec_load_file(&schema, P("f/a.yaml"), 1, ov, &s, err);
        dm_alloc_fail_at(0);
        if (k <= total && st != DM_E_NOMEM)
            print_error("allocation %ld of %ld: status %d (%s)\n", k, total, st, err);
        assert_int_equal(st, k <= total ? DM_E_NOMEM : DM_OK);
        dm_spec_free(s);
    }
}

/* `base` is reserved: no section or option of difflab's schema may be called so. */
static void test_base_reserved(void **state)
{
    (void)state;
    const dm_schema *sc = &dm_spec_schema;
    for (size_t i = 0; i < sc->n_sections; i++) {
        const dm_section_desc *d = &sc->sections[i];
        const char *last = strrchr(d->path, '.');
        assert_string_not_equal(last ? last + 1 : d->path, "base");
        const dm_plugin *one[2] = {d->fixed, NULL};
        const dm_plugin *const *reg = d->registry ? d->registry : one;
        for (size_t r = 0; reg[r]; r++)
            for (const dm_param_desc *p = reg[r]->params; p && p->name; p++)
                if (strcmp(p->name, "base") == 0)
                    fail_msg("%s: plug-in '%s' has an option named 'base', the key of base files", d->path,
                             reg[r]->name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),          cmocka_unit_test(test_type_switch),
        cmocka_unit_test(test_relative_paths), cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_base_reserved),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
