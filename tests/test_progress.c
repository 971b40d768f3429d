/* Progress display: a redrawn bar (with step, loss, steps/s, ETA) or plain periodic lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/progress.h"

static char *capture(dm_progress_mode mode, int64_t total, int64_t every)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    dm_progress p;
    dm_progress_init(&p, mode, f, 0, total, every);
    for (int64_t s = 1; s <= total; s++)
        dm_progress_update(&p, s, 0.5 + 1.0 / (double)s);
    dm_progress_done(&p);
    long n = ftell(f);
    char *buf = calloc((size_t)n + 1, 1);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
