/* test_plot.c — the SVG plot writer (io/plot.h): ticks and their labels on linear and log axes,
 * the parts of a plot (series, markers, error bars, legend, escaping), the legend's count of
 * points outside the view, categorical axes, refusals, and the scatter file's view (the bulk of
 * far-flung samples stays in the frame; the rest is counted). */
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

#include "core/status.h"
#include "io/plot.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The plot as a string (caller frees). */
static char *render(const dm_plot *p, const dm_plot_series *s, size_t ns, dm_status *st)
{
    char *buf = NULL, err[DM_ERR_SIZE] = "";
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    *st = dm_plot_svg(f, p, s, ns, err);
    fclose(f);
    return buf;
}

static void test_linear_ticks(void **state)
{
    (void)state;
    double t[16];
    size_t n = dm_plot_ticks(0, 1, 0, t, 16);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(t[i] - 0.2 * (double)i) < 1e-12);
    n = dm_plot_ticks(-3.7, 12.1, 0, t, 16); /* step 5: -0 must print as 0 */
    assert_int_equal(n, 3);
    assert_true(t[0] == 0 && t[1] == 5 && t[2] == 10 && !signbit(t[0]));
    n = dm_plot_ticks(-0.013, -0.002, 0, t, 16); /* step 0.002 */
    assert_true(n >= 5 && fabs(t[1] - t[0] - 0.002) < 1e-12 && t[0] >= -0.013 && t[n - 1] <= -0.002);
    assert_int_equal(dm_plot_ticks(1, 1, 0, t, 16), 0);

    char lab[32];
    dm_plot_tick_label(0.4, 0.2, 0, lab, sizeof lab);
    assert_string_equal(lab, "0.4");
    dm_plot_tick_label(15, 5, 0, lab, sizeof lab);
    assert_string_equal(lab, "15");
    dm_plot_tick_label(-0.004, 0.002, 0, lab, sizeof lab);
    assert_string_equal(lab, "-0.004");
    dm_plot_tick_label(250000, 50000, 0, lab, sizeof lab);
    assert_string_equal(lab, "2.5e+05");
}

static void test_log_ticks(void **state)
{
    (void)state;
    double t[16];
    char lab[32];
    size_t n = dm_plot_ticks(1e-3, 10, 1, t, 16); /* decades */
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(t[i] / pow(10, (double)i - 3) - 1) < 1e-12);
    n = dm_plot_ticks(1e-12, 1e12, 1, t, 16); /* 25 decades: every 4th at most 8 */
    assert_true(n >= 6 && n <= 8 && fabs(log10(t[1] / t[0]) - 4) < 1e-9);
    n = dm_plot_ticks(2, 7, 1, t, 16); /* inside a decade: 1-2-5 too sparse, so every digit */
    assert_int_equal(n, 6);
    assert_true(t[0] == 2 && t[5] == 7);
    n = dm_plot_ticks(15, 600, 1, t, 16); /* 1.6 decades: 100 alone is too few, so 1-2-5 */
    assert_true(n >= 3 && t[0] == 20 && t[1] == 50 && t[2] == 100);
    dm_plot_tick_label(1e5, 0, 1, lab, sizeof lab);
    assert_string_equal(lab, "1e5");
    dm_plot_tick_label(1e-6, 0, 1, lab, sizeof lab);
    assert_string_equal(lab, "1e-6");
    dm_plot_tick_label(1000, 0, 1, lab, sizeof lab);
    assert_string_equal(lab, "1000");
    dm_plot_tick_label(0.01, 0, 1, lab, sizeof lab);
    assert_string_equal(lab, "0.01");
}

/* Ranges a plot cannot place end at once, with no tick repeated and no NaN coordinate: infinite
 * or non-positive log bounds, a span below the values' resolution, values near the double's ends. */
static void test_extreme_ranges(void **state)
{
    (void)state;
    double t[16];
    assert_int_equal(dm_plot_ticks(0, 10, 1, t, 16), 0);
    assert_int_equal(dm_plot_ticks(1e300, INFINITY, 1, t, 16), 0);
    assert_int_equal(dm_plot_ticks(-1e-300, 1, 1, t, 16), 0);
    assert_int_equal(dm_plot_ticks(1, 1 + 2.3e-16, 0, t, 16), 0);
    const double x[2] = { 1, 2 };
    const double ys[4][2] = { { 1e300, 1e308 }, { 1e-320, 1 }, { 1, 1 + 2.3e-16 }, { -1e308, 1e308 } };
    for (int k = 0; k < 4; k++) {
        dm_plot p;
        dm_plot_init(&p);
        p.logy = k < 2;
        const dm_plot_series s = { .label = "s", .n = 2, .x = x, .y = ys[k] };
        dm_status st;
        char *svg = render(&p, &s, 1, &st);
        assert_int_equal(st, DM_OK);
        assert_null(strstr(svg, "nan"));
        assert_null(strstr(svg, "inf"));
        assert_true(count(svg, "class=\"tick\"") >= 2 && count(svg, "class=\"tick\"") <= 24);
        free(svg);
    }
}

static void test_lines_legend_errors(void **state)
{
    (void)state;
    const double x[4] = { 1, 2, 4, 8 }, y1[4] = { 0.5, 0.25, NAN, 0.1 }, e1[4] = { 0.05, NAN, 0.1, 0.02 };
    const double y2[4] = { 1, 0.5, -1, 0.2 }; /* -1: not on a log axis */
    dm_plot p;
    dm_plot_init(&p);
    p.title = "swd <vs> NFE & more";
    p.xlabel = "NFE";
    p.ylabel = "swd";
    p.logx = p.logy = 1;
    const dm_plot_series s[2] = {
        { .label = "heun", .n = 4, .x = x, .y = y1, .err = e1 },
        { .label = "euler \"a\"", .n = 4, .x = x, .y = y2 },
    };
    dm_status st;
    char *svg = render(&p, s, 2, &st);
    assert_int_equal(st, DM_OK);
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\""));
    assert_non_null(strstr(svg, "swd &lt;vs&gt; NFE &amp; more"));
    assert_non_null(strstr(svg, "euler &quot;a&quot;, 1 outside the view"));
    assert_null(strstr(svg, "heun, ")); /* its NaN is a missing value, not an outlier */
    assert_int_equal(count(svg, "class=\"series\""), 2);
    assert_int_equal(count(svg, "class=\"pt\""), 3 + 3);
    assert_int_equal(count(svg, "class=\"err\""), 2); /* the NaN bar and the NaN point have none */
    assert_int_equal(count(svg, "class=\"entry\""), 2);
    assert_true(count(svg, "class=\"tick\"") >= 4);
    /* The NaN breaks the line: heun's path has two moves. */
    const char *line = strstr(strstr(svg, "data-label=\"heun\""), "class=\"line\"");
    const char *end = strstr(line, "/>");
    size_t moves = 0;
    for (const char *c = line; c < end; c++)
        moves += *c == 'M';
    assert_int_equal(moves, 2);
    assert_string_equal(svg + strlen(svg) - 7, "</svg>\n");

    /* The same input gives the same bytes. */
    char *again = render(&p, s, 2, &st);
    assert_string_equal(svg, again);
    free(again);
    free(svg);
}

static void test_categorical_and_refusals(void **state)
{
    (void)state;
    const char *cats[3] = { "ddpm", "ddim", "heun" };
    const double x[3] = { 0, 1, 2 }, y[3] = { 3, 1, 2 };
    dm_plot p;
    dm_plot_init(&p);
    p.xcats = cats;
    p.n_xcats = 3;
    const dm_plot_series s = { .label = "swd", .n = 3, .x = x, .y = y };
    dm_status st;
    char *svg = render(&p, &s, 1, &st);
    assert_int_equal(st, DM_OK);
    assert_non_null(strstr(svg, ">ddim</text>"));
    assert_int_equal(count(svg, "class=\"pt\""), 3);
    free(svg);

    p.logx = 1;
    svg = render(&p, &s, 1, &st);
    assert_int_equal(st, DM_E_INPUT);
    free(svg);
    dm_plot_init(&p);
    p.logy = 1;
    p.view[2] = 0;
    svg = render(&p, &s, 1, &st);
    assert_int_equal(st, DM_E_INPUT);
    free(svg);
    dm_plot_init(&p);
    p.view[0] = 2;
    p.view[1] = 1;
    svg = render(&p, &s, 1, &st);
    assert_int_equal(st, DM_E_INPUT);
    free(svg);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Samples that fly off: 99% spread over [-50, 50]^2 around a reference set in [-1, 1]^2, 0.5% at
 * 1e6 and 0.5% NaN. The view follows the bulk, so the spread points are drawn, and the far and NaN
 * ones are counted, drawn or not. */
static void test_scatter_view(void **state)
{
    (void)state;
    enum { N = 5000, M = 1000 };
    static float x[N * 3], ref[M * 3]; /* d = 3: only the first two coordinates are drawn */
    for (size_t i = 0; i < M; i++)
        for (size_t c = 0; c < 3; c++)
            ref[i * 3 + c] = (float)(2.0 * (double)((i * 7 + c * 13) % 101) / 100.0 - 1.0);
    size_t far = 0, nan = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < 3; c++) {
            float v = (float)(100.0 * (double)((i * 31 + c * 17) % 997) / 996.0 - 50.0);
            if (i % 200 == 7)
                v = 1e6f;
            else if (i % 200 == 9)
                v = NAN;
            x[i * 3 + c] = v;
        }
    for (size_t i = 0; i < N; i++) {
        far += x[i * 3] == 1e6f;
        nan += isnan(x[i * 3]);
    }
    const char *base = getenv("DIFFLAB_TEST_TMP");
    char path[700], err[DM_ERR_SIZE] = "";
    mkdir(base && *base ? base : "/tmp", 0777);
    snprintf(path, sizeof path, "%s/scatter.%d.svg", base && *base ? base : "/tmp", (int)getpid());
    assert_int_equal(dm_plot_scatter_file(path, "ddpm_1000", x, N, "samples", ref, M, 3, 2000, err), DM_OK);
    char *svg = read_all(path);
    char want[128];
    snprintf(want, sizeof want, "samples (2000 of %d drawn), %zu outside the view", N, far + nan);
    assert_non_null(strstr(svg, want));
    assert_non_null(strstr(svg, "reference</text>")); /* 1000 < 2000: all drawn, none outside */
    assert_non_null(strstr(svg, "class=\"plot scatter\""));
    /* The view reaches past +-45 on x: a tick label of 40 or 50 (both signs). */
    assert_true((strstr(svg, ">40</text>") || strstr(svg, ">50</text>")) &&
                (strstr(svg, ">-40</text>") || strstr(svg, ">-50</text>")));
    /* Drawn: every drawn sample that is finite and not far: 2000 minus its far and NaN ones. */
    const char *dots = strstr(strstr(svg, "data-label=\"samples\""), "d=\"");
    const char *end = strchr(dots + 3, '"');
    size_t drawn = 0, want_drawn = 0;
    for (const char *c = dots; c < end; c++)
        drawn += *c == 'M';
    for (size_t i = 0; i < 2000; i++)
        want_drawn += isfinite(x[i * 3]) && x[i * 3] != 1e6f;
    assert_int_equal(drawn, want_drawn);
    free(svg);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_ticks),
        cmocka_unit_test(test_log_ticks),
        cmocka_unit_test(test_extreme_ranges),
        cmocka_unit_test(test_lines_legend_errors),
        cmocka_unit_test(test_categorical_and_refusals),
        cmocka_unit_test(test_scatter_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
