/* knn_pr.c — k-NN precision and recall (knn_pr.h). */
#include "eval/knn_pr.h"

#include <math.h>

#include "core/alloc.h"

static double dist2(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        const double e = (double)a[j] - b[j];
        s += e * e;
    }
    return s;
}

/* r2[i] = the squared distance from x_i to its k-th nearest other point of x (n > k). */
static void knn_radii2(const float *x, size_t n, size_t d, int k, double *r2)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double best[16]; /* the k smallest, ascending */
        int have = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            const double v = dist2(x + i * d, x + j * d, d);
            if (have == k && v >= best[k - 1])
                continue;
            int p = have < k ? have++ : k - 1;
            while (p > 0 && best[p - 1] > v) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = v;
        }
        r2[i] = best[k - 1];
    }
}

/* The share of points of a inside the union of balls (centres b, squared radii r2). */
static double coverage(const float *a, size_t na, const float *b, size_t nb, const double *r2, size_t d)
{
    size_t inside = 0;
#pragma omp parallel for schedule(static) reduction(+ : inside)
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (dist2(a + i * d, b + j * d, d) <= r2[j]) {
                inside++;
                break;
            }
    return (double)inside / (double)na;
}

dm_status dm_knn_precision_recall(const float *real, size_t nr, const float *fake, size_t nf, size_t d, int k,
                                  double *precision, double *recall, char *err)
{
    if (k < 1 || k > 16 || nr <= (size_t)k || nf <= (size_t)k || d < 1)
        return dm_err(err, DM_E_INPUT, "precision/recall: k = %d needs 1 <= k <= 16 and more than k points per "
                      "set (%zu real, %zu generated)", k, nr, nf);
    double *rr = dm_malloc(sizeof(double) * nr), *rf = dm_malloc(sizeof(double) * nf);
    dm_status st = DM_OK;
    if (!rr || !rf) {
        st = dm_err(err, DM_E_NOMEM, "precision/recall: out of memory for the radii of %zu and %zu points", nr, nf);
    } else {
        knn_radii2(real, nr, d, k, rr);
        knn_radii2(fake, nf, d, k, rf);
        *precision = coverage(fake, nf, real, nr, rr, d);
        *recall = coverage(real, nr, fake, nf, rf, d);
    }
    dm_free(rr);
    dm_free(rf);
    return st;
}
