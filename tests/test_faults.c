/* Allocation failures in spec loading and run set-up: the k-th allocation fails, for every k up to
 * the number the operation makes (as SQLite's test_malloc does). Each failure must end in
 * DM_E_NOMEM with a message — not a crash, another status, or (under the ASan build's
 * LeakSanitizer) a leak — and the operation must succeed once k passes its last allocation. The
 * specs cover the plug-ins with the most set-up: a learned-variance DDPM with importance-sampled
 * t, a consistency-training run with its target network, CD from the analytic teacher, and an
 * analytic model. The message must name the allocation: "out of memory" (or a module's "cannot
 * allocate") and what for — never the bare phrase, and never an empty name ('') — and the k-th
 * failure of one operation must not say the same as every other. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "io/spec.h"
#include "train/schema.h"
#include "train/trainer.h"

static const char *const specs[] = {
    "name: a\nmodel: {type: mlp, width: 16, depth: 1, nfreq: 4}\n"
    "diffusion: {schedule: {type: cosine, T: 50}, loss: {type: vlb, variance: learned}}\n"
    "sampler: {type: ddpm, variance: learned, steps: 5}\ntrain: {batch: 16, n_data: 64}\n"
    "eval: {n_samples: 16, n_ref: 16}\n",
    "name: b\nmodel: {type: mlp, width: 16, depth: 1, nfreq: 4}\n"
    "diffusion: {schedule: {type: edm, time_input: cm}, param: consistency, loss: {type: ct, s1: 10}}\n"
    "sampler: {type: cm, steps: 2}\ntrain: {batch: 16, n_data: 64}\neval: {n_samples: 16, n_ref: 16}\n",
    "name: c\nmodel: {type: mlp, width: 16, depth: 1, nfreq: 4}\n"
    "diffusion: {schedule: {type: edm}, param: consistency, loss: {type: cd, n: 6, mu: 0.5}}\n"
    "distill: {teacher: analytic}\nsampler: {type: cm}\ntrain: {batch: 16, n_data: 64}\n"
    "eval: {n_samples: 16, n_ref: 16}\n",
    "name: d\nmodel: analytic\ndiffusion: {schedule: vp}\nsampler: {type: euler, steps: 4}\n"
    "eval: {n_samples: 16, n_ref: 16, nll: true, nll_n: 4}\n",
};

/* Load (with an override, to exercise that path too), check, set up, train two steps. */
static dm_status set_up(const char *text, char *err)
{
    dm_spec *spec = NULL;
    const char *over[1] = { "seed=3" };
    dm_status st = dm_spec_load_text(&dm_spec_schema, text, "<faults>", 1, over, &spec, err);
    if (!st)
        st = dm_trainer_check(spec, err);
    if (!st) {
        dm_trainer tr;
        dm_runrec rec;
        dm_runrec_init(&rec);
        st = dm_trainer_init(&tr, spec, &rec, err);
        if (!st) {
            double loss, gn;
            for (int i = 0; i < 2 && !st && dm_trainer_trains(&tr); i++)
                st = dm_trainer_step(&tr, &loss, &gn, err);
            dm_trainer_free(&tr);
        }
        dm_runrec_free(&rec);
    }
    dm_spec_free(spec);
    return st;
}

/* err names the failed allocation: after "out of memory" or "cannot allocate", a word of four
 * or more letters says what it was for ("for the spec", "building the YAML tree", "layer
 * tables"); no quoted name is empty. */
static int names_allocation(const char *err)
{
    static const char *const phrases[] = { "out of memory", "cannot allocate" };
    const char *p = NULL;
    for (size_t i = 0; i < 2 && !p; i++)
        if ((p = strstr(err, phrases[i])))
            p += strlen(phrases[i]);
    if (!p || strstr(err, "''"))
        return 0;
    for (size_t run = 0; *p; p++) {
        run = isalpha((unsigned char)*p) ? run + 1 : 0;
        if (run == 4)
            return 1;
    }
    return 0;
}

static void test_names_allocation(void **state)
{
    (void)state;
    assert_true(names_allocation("out of memory for the spec"));
    assert_true(names_allocation("<faults>: out of memory building the YAML tree"));
    assert_true(names_allocation("mlp: cannot allocate layer tables (3 layers)"));
    assert_false(names_allocation("out of memory"));
    assert_false(names_allocation("spec.yaml: out of memory"));
    assert_false(names_allocation("out of memory for a"));
    assert_false(names_allocation("out of memory for the options of ''"));
    assert_false(names_allocation("the spec could not be loaded"));
}

static void test_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        assert_int_equal(set_up(specs[s], err), DM_OK);
        long failures = 0, k;
        char first[DM_ERR_SIZE] = "";
        int all_same = 1;
        for (k = 1; k < 100000; k++) {
            err[0] = 0;
            dm_alloc_fail_at(k);
            const dm_status st = set_up(specs[s], err);
            const long used = dm_alloc_fail_at(0);
            if (st == DM_OK) {
                assert_true(used < k);   /* succeeded: the k-th allocation was never made */
                break;
            }
            if (st != DM_E_NOMEM)
                fail_msg("spec %zu, allocation %ld: status %d (%s), want DM_E_NOMEM", s, k, (int)st, err);
            if (!names_allocation(err))
                fail_msg("spec %zu, allocation %ld: the message does not name the allocation: '%s'", s, k, err);
            if (k == 1)
                snprintf(first, sizeof first, "%s", err);
            else if (strcmp(err, first) != 0)
                all_same = 0;
            failures++;
        }
        print_message("spec %zu: %ld allocations, each failure a clean DM_E_NOMEM naming it\n", s, failures);
        assert_true(failures > 20);
        assert_false(all_same);   /* a message that names nothing in particular says the same every time */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_allocation),
        cmocka_unit_test(test_every_allocation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
