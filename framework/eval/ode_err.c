/* A deterministic sampler's distance to the PF-ODE reference (ode_err.h). */
#include "eval/ode_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

dm_status dm_ode_err(const float *x, const float *ref, size_t n, size_t d, double data_std, double *e,
                     dm_ode_err_result *r, char *err)
{
    if (n == 0 || d == 0)
        return dm_err(err, DM_E_INPUT, "eval.ode_err: no samples to compare (n = %zu, d = %zu)", n, d);
    if (!(data_std > 0.0) || !isfinite(data_std))
        return dm_err(err, DM_E_INPUT, "eval.ode_err: the data's std is %g; it must be positive and finite", data_std);
    double *v = dm_malloc(sizeof(double) * n);
    if (!v)
        return dm_err(err, DM_E_NOMEM, "out of memory for %zu sampler errors", n);
    dm_status st = DM_OK;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double dx = (double)x[i * d + j] - (double)ref[i * d + j];
            ss += dx * dx;
        }
        v[i] = sqrt(ss / (double)d) / data_std;
        if (!isfinite(v[i])) {
            st = dm_err(err, DM_E_NUMERIC, "eval.ode_err: sample %zu or its reference is not finite", i);
            goto out;
        }
        sum += v[i];
    }
    if (e)
        memcpy(e, v, sizeof(double) * n);
    r->mean = sum / (double)n;
    qsort(v, n, sizeof(double), cmp_double);
    r->median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    r->max = v[n - 1];
out:
    dm_free(v);
    return st;
}
