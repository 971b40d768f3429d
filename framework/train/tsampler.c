#include "train/tsampler.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

dm_status dm_tsampler_init(dm_tsampler *ts, int T, char *err)
{
    memset(ts, 0, sizeof *ts);
    ts->T = T;
    ts->history = dm_calloc((size_t)T * DM_TSAMPLER_HISTORY, sizeof(double));
    ts->count = dm_calloc((size_t)T, sizeof(int64_t));
    ts->cdf = dm_malloc(sizeof(double) * (size_t)T);
    if (!ts->history || !ts->count || !ts->cdf) {
        dm_tsampler_free(ts);
        return dm_err(err, DM_E_NOMEM, "out of memory for the t-sampler history of %d steps", T);
    }
    return DM_OK;
}

void dm_tsampler_free(dm_tsampler *ts)
{
    dm_free(ts->history);
    dm_free(ts->count);
    dm_free(ts->cdf);
    memset(ts, 0, sizeof *ts);
}

int dm_tsampler_warm(const dm_tsampler *ts)
{
    for (int t = 0; t < ts->T; t++)
        if (ts->count[t] < DM_TSAMPLER_HISTORY)
            return 0;
    return 1;
}

void dm_tsampler_probs(const dm_tsampler *ts, double *p)
{
    const int T = ts->T;
    if (!dm_tsampler_warm(ts)) {
        for (int t = 0; t < T; t++)
            p[t] = 1.0 / T;
        return;
    }
    double sum = 0.0;
    for (int t = 0; t < T; t++) {
        double m2 = 0.0;
        for (int k = 0; k < DM_TSAMPLER_HISTORY; k++) {
            const double l = ts->history[(size_t)t * DM_TSAMPLER_HISTORY + k];
            m2 += l * l;
        }
        p[t] = sqrt(m2 / DM_TSAMPLER_HISTORY);
        sum += p[t];
    }
    for (int t = 0; t < T; t++)
        p[t] = (sum > 0 ? p[t] / sum : 1.0 / T) * (1.0 - DM_TSAMPLER_UNIFORM_MIX) + DM_TSAMPLER_UNIFORM_MIX / T;
}

void dm_tsampler_draw(dm_tsampler *ts, dm_rng *rng, size_t n, double *t, double *w)
{
    const int T = ts->T;
    dm_tsampler_probs(ts, ts->cdf);
    double acc = 0.0;
    for (int k = 0; k < T; k++)
        ts->cdf[k] = acc += ts->cdf[k];
    for (size_t i = 0; i < n; i++) {
        /* The smallest k with cdf[k] > u * total (total is 1 up to rounding). */
        const double u = dm_rng_uniform(rng) * acc;
        int lo = 0, hi = T - 1;
        while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (ts->cdf[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        const double p = ts->cdf[lo] - (lo > 0 ? ts->cdf[lo - 1] : 0.0);
        t[i] = lo;
        w[i] = acc / ((double)T * p);
    }
}

void dm_tsampler_update(dm_tsampler *ts, size_t n, const double *t, const double *loss)
{
    for (size_t i = 0; i < n; i++) {
        const int k = (int)t[i];
        double *h = ts->history + (size_t)k * DM_TSAMPLER_HISTORY;
        if (ts->count[k] == DM_TSAMPLER_HISTORY) {
            memmove(h, h + 1, sizeof(double) * (DM_TSAMPLER_HISTORY - 1));
            h[DM_TSAMPLER_HISTORY - 1] = loss[i];
        } else {
            h[ts->count[k]++] = loss[i];
        }
    }
}
