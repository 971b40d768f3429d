/* table_stats.c — the test behind a table's best mark. In each column the cell with the best
 * mean is marked only when it beats the runner-up (the next best mean) by a one-sided t-test at
 * DM_TABLE_ALPHA across seeds:
 *   - when the two cells hold the same runs (samplers or NFEs evaluated on one set of runs, which
 *     share the model's training noise and, by common random numbers, the samples' noise), a
 *     paired t-test over the differences of the seeds whose run is the same in both cells (the
 *     others left out), never over samples;
 *   - otherwise Welch's t-test (unequal variances), Welch–Satterthwaite degrees of freedom.
 * Both need two or more values a side (pairs); a cell with n < 2 is never marked. The p-value is
 * GSL's upper tail of Student's t (gsl_cdf_tdist_Q). Formulas: B. L. Welch, "The generalization
 * of 'Student's' problem when several different population variances are involved", Biometrika
 * 34 (1947); F. E. Satterthwaite, Biometrics Bulletin 2 (1946).
 *
 * The direction is the one the means chose, so in a column of two identical cells the mark comes
 * up about twice as often as α (≈ 9 % at n = 5: both orders can win); with three or more rows the
 * runner-up is the best of the others and the rate falls below α (tests/test_table.c measures it). */
#include "report/table_internal.h"

#include <gsl/gsl_cdf.h>
#include <math.h>

#include "core/alloc.h"

/* p of t with df degrees of freedom; t = ±inf (no spread) gives 0 or 1. */
static double upper_tail(double diff, double se, double df)
{
    if (!(se > 0))
        return diff > 0 ? 0.0 : 1.0;
    return gsl_cdf_tdist_Q(diff / se, df);
}

double dm_table_welch_p(double mx, double vx, size_t nx, double my, double vy, size_t ny)
{
    if (nx < 2 || ny < 2 || isnan(mx) || isnan(my) || isnan(vx) || isnan(vy))
        return NAN;
    const double ax = vx / (double)nx, ay = vy / (double)ny, s2 = ax + ay;
    const double df = s2 > 0 ? s2 * s2 / (ax * ax / (double)(nx - 1) + ay * ay / (double)(ny - 1))
                             : (double)(nx + ny - 2);
    return upper_tail(mx - my, sqrt(s2), df);
}

double dm_table_paired_p(const double *d, size_t m)
{
    if (m < 2)
        return NAN;
    double mean = 0, ss = 0;
    for (size_t i = 0; i < m; ++i)
        mean += d[i];
    mean /= (double)m;
    for (size_t i = 0; i < m; ++i)
        ss += (d[i] - mean) * (d[i] - mean);
    const double sd = sqrt(ss / (double)(m - 1));
    return upper_tail(mean, sd / sqrt((double)m), (double)(m - 1));
}

/* 1 if a is better than b. */
static int better(double a, double b, int lower)
{
    return lower ? a < b : a > b;
}

/* The one-sided p-value that cell a (the best) beats b; *paired set when they hold the same
 * runs. Seeds are sorted by seed in each cell. */
static double test(const dm_tseed *a, size_t na, const dm_table_cell *ca, const dm_tseed *b,
                   size_t nb, const dm_table_cell *cb, int lower, int *paired)
{
    double stack[64], *d = na <= 64 ? stack : dm_malloc(na * sizeof *d);
    size_t m = 0, shared = 0;
    double p = NAN;
    *paired = 0;
    for (size_t i = 0, j = 0; i < na && j < nb;) {
        if (a[i].seed != b[j].seed) {
            a[i].seed < b[j].seed ? ++i : ++j;
            continue;
        }
        if (a[i].run == b[j].run) {
            ++shared;
            if (d)
                d[m++] = lower ? b[j].v - a[i].v : a[i].v - b[j].v;
        }
        ++i;
        ++j;
    }
    if (shared) {
        *paired = 1;
        p = d ? dm_table_paired_p(d, m) : NAN;
    } else {
        p = lower ? dm_table_welch_p(cb->mean, cb->std * cb->std, cb->n, ca->mean,
                                     ca->std * ca->std, ca->n)
                  : dm_table_welch_p(ca->mean, ca->std * ca->std, ca->n, cb->mean,
                                     cb->std * cb->std, cb->n);
    }
    if (d != stack)
        dm_free(d);
    return p;
}

void dm_table_mark_best(dm_table *t, const dm_tseed *seeds, const size_t *off)
{
    if (t->lower_is_better < 0) /* a descriptive metric: no best */
        return;
    const size_t rows = t->n_rows - (t->has_floor ? 1 : 0);
    for (size_t c = 0; c < t->n_cols; ++c) {
        size_t best = (size_t)-1, second = (size_t)-1;
        for (size_t r = 0; r < rows; ++r) {
            const dm_table_cell *x = &t->cells[r * t->n_cols + c];
            if (x->n == 0)
                continue;
            if (best == (size_t)-1 || better(x->mean, t->cells[best * t->n_cols + c].mean,
                                             t->lower_is_better)) {
                second = best;
                best = r;
            } else if (second == (size_t)-1 ||
                       better(x->mean, t->cells[second * t->n_cols + c].mean, t->lower_is_better)) {
                second = r;
            }
        }
        if (best == (size_t)-1 || second == (size_t)-1)
            continue;
        const size_t kb = best * t->n_cols + c, ks = second * t->n_cols + c;
        dm_table_cell *x = &t->cells[kb];
        if (x->n < 2 || t->cells[ks].n < 2)
            continue;
        x->p = test(seeds + off[kb], off[kb + 1] - off[kb], x, seeds + off[ks],
                    off[ks + 1] - off[ks], &t->cells[ks], t->lower_is_better, &x->paired);
        x->best = x->p < DM_TABLE_ALPHA;
    }
}
