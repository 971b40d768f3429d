/* lane_sum.h — sums of float arrays in double in a fixed order: element j goes to lane j mod 8,
 * and the 8 lanes are added in a fixed tree. The lanes are independent, so the compiler can use
 * vector adds without reordering any addition; the result depends on the values and m alone.
 * Do not include from a *_fast.c file: -ffast-math may reassociate the sums. */
#ifndef DM_NN_LANE_SUM_H
#define DM_NN_LANE_SUM_H

#include <stddef.h>

#define DM_LANES 8

static inline double dm_lanes_total(const double *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum x[j], j < m. */
static inline double dm_lane_sum(const float *restrict x, size_t m)
{
    double acc[DM_LANES] = {0};
    size_t j = 0;
    for (; j + DM_LANES <= m; j += DM_LANES)
        for (int l = 0; l < DM_LANES; l++)
            acc[l] += (double)x[j + l];
    for (int l = 0; j < m; j++, l++)
        acc[l] += (double)x[j];
    return dm_lanes_total(acc);
}

/* sum (x[j] - mean)^2, j < m. */
static inline double dm_lane_sqdev(const float *restrict x, size_t m, double mean)
{
    double acc[DM_LANES] = {0};
    size_t j = 0;
    for (; j + DM_LANES <= m; j += DM_LANES)
        for (int l = 0; l < DM_LANES; l++) {
            const double d = (double)x[j + l] - mean;
            acc[l] += d * d;
        }
    for (int l = 0; j < m; j++, l++) {
        const double d = (double)x[j] - mean;
        acc[l] += d * d;
    }
    return dm_lanes_total(acc);
}

/* *sa = sum a[j], *sab = sum a[j] b[j], j < m. */
static inline void dm_lane_sums2(const float *restrict a, const float *restrict b, size_t m, double *sa,
                                 double *sab)
{
    double s[DM_LANES] = {0}, t[DM_LANES] = {0};
    size_t j = 0;
    for (; j + DM_LANES <= m; j += DM_LANES)
        for (int l = 0; l < DM_LANES; l++) {
            s[l] += (double)a[j + l];
            t[l] += (double)a[j + l] * (double)b[j + l];
        }
    for (int l = 0; j < m; j++, l++) {
        s[l] += (double)a[j];
        t[l] += (double)a[j] * (double)b[j];
    }
    *sa = dm_lanes_total(s);
    *sab = dm_lanes_total(t);
}

#endif
