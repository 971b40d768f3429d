/* Progress display: a redrawn bar (with step, loss, steps/s, ETA) or plain periodic lines led by
 * the run's id; phases (sampling, likelihoods, metrics) with their work done and wall time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/progress.h"

static char *slurp(FILE *f)
{
    long n = ftell(f);
    char *buf = calloc((size_t)n + 1, 1);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static char *capture_id(dm_progress_mode mode, const char *id, int64_t total, int64_t every)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    dm_progress p;
    dm_progress_init(&p, mode, f, id, 0, total, every);
    for (int64_t s = 1; s <= total; s++)
        dm_progress_update(&p, s, 0.5 + 1.0 / (double)s);
    dm_progress_done(&p);
    return slurp(f);
}

static char *capture(dm_progress_mode mode, int64_t total, int64_t every)
{
    return capture_id(mode, NULL, total, every);
}

static int count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void test_lines(void **state)
{
    (void)state;
    char *out = capture(DM_PROG_LINES, 10, 4);
    /* every 4 steps and the last one: steps 4, 8, 10 */
    assert_int_equal(count(out, "\n"), 3);
    assert_non_null(strstr(out, "step 4/10  loss 0.7500"));
    assert_non_null(strstr(out, "step 10/10  loss 0.6000"));
    assert_non_null(strstr(out, "steps/s  ETA "));
    assert_null(strchr(out, '\r'));
    free(out);
}

static void test_bar(void **state)
{
    (void)state;
    char *out = capture(DM_PROG_BAR, 5, 1);
    /* redrawn in place with carriage returns, the final state always drawn, one newline at the end */
    assert_true(count(out, "\r[") >= 1);
    assert_non_null(strstr(out, "[########################] step 5/5"));
    assert_int_equal(count(out, "\n"), 1);
    free(out);
}

static void test_none(void **state)
{
    (void)state;
    char *out = capture(DM_PROG_NONE, 5, 1);
    assert_string_equal(out, "");
    free(out);
}

/* Log lines carry the run's id (runs interleaved under make -j say whose each line is). */
static void test_lines_id(void **state)
{
    (void)state;
    char *out = capture_id(DM_PROG_LINES, "demo-0123456789-s0", 4, 2);
    assert_int_equal(count(out, "\n"), 2);
    assert_int_equal(count(out, "demo-0123456789-s0: step "), 2);
    assert_non_null(strstr(out, "demo-0123456789-s0: step 4/4  loss 0.7500"));
    free(out);
}

/* A phase: a line when it starts and one when it ends (its wall time and the work done; a failed
 * one "stopped after"); a phase begun while another is open ends that one first; no work: no
 * count. */
static void test_phase_lines(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    dm_phase p = { 0 };
    dm_phase_add(&p, 5); /* no phase open: nothing */
    dm_phase_begin(&p, DM_PROG_LINES, f, "r-s0", 300, "network evaluations", "sampling %s, %d samples", "ddpm", 100);
    for (int i = 0; i < 3; i++)
        dm_phase_add(&p, 100);
    dm_phase_begin(&p, DM_PROG_LINES, f, "r-s0", 0, "network evaluations", "metrics");
    dm_phase_end(&p);
    dm_phase_end(&p); /* closed: nothing */
    dm_phase_begin(&p, DM_PROG_LINES, f, "r-s0", 0, "network evaluations", "likelihood");
    dm_phase_add(&p, 7);
    dm_phase_close(&p, 0); /* failed */
    char *out = slurp(f);
    assert_int_equal(count(out, "\n"), 6);
    assert_non_null(strstr(out, "r-s0: likelihood: stopped after "));
    assert_non_null(strstr(out, " s (7 network evaluations)\n"));
    assert_non_null(strstr(out, "r-s0: sampling ddpm, 100 samples ...\n"));
    assert_non_null(strstr(out, "r-s0: sampling ddpm, 100 samples: done in "));
    assert_non_null(strstr(out, " s (300 network evaluations)\n"));
    assert_non_null(strstr(out, "r-s0: metrics ...\n"));
    assert_non_null(strstr(out, "r-s0: metrics: done in "));
    assert_null(strstr(out, "(0 network evaluations"));
    free(out);
}

/* On a terminal the phase redraws one line and ends it; NONE is silent but still counts. */
static void test_phase_bar_none(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    dm_phase p = { 0 };
    dm_phase_begin(&p, DM_PROG_BAR, f, "r-s0", 10, "network evaluations", "likelihood");
    dm_phase_add(&p, 10);
    dm_phase_end(&p);
    char *out = slurp(f);
    assert_non_null(strstr(out, "\rlikelihood: 10 network evaluations"));
    assert_int_equal(count(out, "\n"), 1);
    free(out);
    f = tmpfile();
    assert_non_null(f);
    dm_phase_begin(&p, DM_PROG_NONE, f, "r-s0", 10, "network evaluations", "likelihood");
    dm_phase_add(&p, 7);
    assert_int_equal(p.done, 7);
    dm_phase_end(&p);
    out = slurp(f);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_lines_id),
        cmocka_unit_test(test_phase_lines),
        cmocka_unit_test(test_phase_bar_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
