/* optim.c — Adam / AdamW, EMA, gradient norm and clipping (see optim.h).
 *
 * The elementwise loops are split across OpenMP threads (static schedule); each element's result
 * does not depend on which thread computes it. The norm is the one reduction: double sums over
 * fixed NORM_CHUNK-element chunks (8 interleaved accumulators inside a chunk, combined in a fixed
 * tree), then the chunk sums added in index order, so the bits do not depend on the thread count.
 * Compiled without -ffast-math: the compiler may not reorder any of these sums. */
#include "nn/optim.h"

#include <math.h>
#include <omp.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <string.h>

#include "core/alloc.h"

#define NORM_CHUNK 4096
#define NORM_GROUP 256 /* chunks whose sums are held at once (on the stack) */
/* Below this many elements a loop runs on the calling thread (no fork/join cost). */
#define PAR_MIN 16384

dm_status dm_adam_init(dm_adam *a, size_t n, double lr, double beta1, double beta2, double eps,
                       double weight_decay, char *err)
{
    memset(a, 0, sizeof *a);
    /* The negated comparisons also reject NaN. */
    if (!(lr >= 0.0) || !(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0) || !(eps >= 0.0) ||
        !(weight_decay >= 0.0))
        return dm_err(err, DM_E_INPUT,
                      "adam: bad hyperparameters lr=%g beta1=%g beta2=%g eps=%g weight_decay=%g "
                      "(need lr, eps, weight_decay >= 0 and 0 <= beta < 1)",
                      lr, beta1, beta2, eps, weight_decay);
    dm_status st = DM_OK;
    a->n = n;
    a->lr = lr;
    a->beta1 = beta1;
    a->beta2 = beta2;
    a->eps = eps;
    a->weight_decay = weight_decay;
    a->t = 0;
    a->m = dm_malloc_aligned(n * sizeof(float)); // (n)
    a->v = dm_malloc_aligned(n * sizeof(float)); // (n)
    if (!a->m || !a->v) {
        st = dm_err(err, DM_E_NOMEM, "adam: cannot allocate moments for %zu parameters", n);
        goto out;
    }
    memset(a->m, 0, n * sizeof(float));
    memset(a->v, 0, n * sizeof(float));
out:
    if (st != DM_OK)
        dm_adam_free(a);
    return st;
}

void dm_adam_free(dm_adam *a)
{
    if (!a)
        return;
    dm_free_aligned(a->m);
    dm_free_aligned(a->v);
    memset(a, 0, sizeof *a);
}

/* Adam on elements [i0, i1), c = {keep, b1, 1-b1, b2, 1-b2, lr/bc1, sqrt(bc2), eps}. GCC does not
 * vectorize sqrtf at -O2 without -fno-math-errno, so the AVX path spells the same operations out;
 * each is an exactly rounded IEEE operation (no FMA), so both paths give the same bits. */
static void adam_range(long i0, long i1, float *restrict p, float *restrict m, float *restrict v,
                       const float *restrict g, const float c[8])
{
    const float keep = c[0], b1 = c[1], omb1 = c[2], b2 = c[3], omb2 = c[4], step = c[5], bc2_sqrt = c[6],
                eps = c[7];
    long i = i0;
#ifdef __AVX__
    const __m256 vkeep = _mm256_set1_ps(keep), vb1 = _mm256_set1_ps(b1), vomb1 = _mm256_set1_ps(omb1),
                 vb2 = _mm256_set1_ps(b2), vomb2 = _mm256_set1_ps(omb2), vstep = _mm256_set1_ps(step),
                 vbc2 = _mm256_set1_ps(bc2_sqrt), veps = _mm256_set1_ps(eps);
    for (; i + 8 <= i1; i += 8) {
        const __m256 gi = _mm256_loadu_ps(g + i);
        const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vkeep);
        const __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vomb1, gi));
        const __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)),
                                        _mm256_mul_ps(_mm256_mul_ps(vomb2, gi), gi));
        const __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2), veps);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(vstep, _mm256_div_ps(mi, den))));
    }
#endif
    for (; i < i1; i++) {
        const float pi = p[i] * keep;
        const float mi = b1 * m[i] + omb1 * g[i];
        const float vi = b2 * v[i] + (omb2 * g[i]) * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}

/* As torch.optim.Adam (single-tensor path), in float with the scalars rounded to float:
 *   p *= 1 - lr*wd                                  (AdamW only)
 *   m = b1*m + (1-b1)*g;   v = b2*v + ((1-b2)*g)*g
 *   p -= (lr/bc1) * (m / (sqrt(v)/sqrt(bc2) + eps)),  bc_i = 1 - b_i^t in double. */
void dm_adam_step(dm_adam *a, float *params, const float *grads, double lr)
{
    a->t++;
    const double bc1 = 1.0 - pow(a->beta1, (double)a->t);
    const double bc2 = 1.0 - pow(a->beta2, (double)a->t);
    /* Without decay keep is exactly 1 and p * 1 == p, so one branch-free loop serves both. */
    const float c[8] = {
        a->weight_decay > 0.0 ? (float)(1.0 - lr * a->weight_decay) : 1.0f,
        (float)a->beta1,
        (float)(1.0 - a->beta1),
        (float)a->beta2,
        (float)(1.0 - a->beta2),
        (float)(lr / bc1),
        (float)sqrt(bc2),
        (float)a->eps,
    };
    const long n = (long)a->n;
#pragma omp parallel if (n > PAR_MIN)
    {
        const long nt = omp_get_num_threads(), id = omp_get_thread_num();
        adam_range(n * id / nt, n * (id + 1) / nt, params, a->m, a->v, grads, c);
    }
}

void dm_ema_update(float *ema, const float *p, size_t n, double decay)
{
    const float d = (float)decay, omd = (float)(1.0 - decay);
    float *restrict e = ema;
    const float *restrict q = p;
    const long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PAR_MIN)
    for (long i = 0; i < nn; i++)
        e[i] = d * e[i] + omd * q[i];
}

/* Sum of squares of g (n <= NORM_CHUNK) in double: element i goes to accumulator i % 8. */
static double chunk_sumsq(const float *g, size_t n)
{
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += (double)g[i + j] * (double)g[i + j];
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] += (double)g[i + j] * (double)g[i + j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double dm_l2_norm(const float *g, size_t n)
{
    const size_t nch = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double total = 0.0;
    for (size_t c0 = 0; c0 < nch; c0 += NORM_GROUP) {
        const long gc = (long)(nch - c0 < NORM_GROUP ? nch - c0 : NORM_GROUP);
        double part[NORM_GROUP]; // (gc) chunk sums of this group
#pragma omp parallel for schedule(static) if (gc > 1)
        for (long c = 0; c < gc; c++) {
            const size_t i0 = (c0 + (size_t)c) * NORM_CHUNK;
            part[c] = chunk_sumsq(g + i0, n - i0 < NORM_CHUNK ? n - i0 : NORM_CHUNK);
        }
        for (long c = 0; c < gc; c++)
            total += part[c];
    }
    return sqrt(total);
}

/* As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. */
double dm_clip_grad_norm(float *g, size_t n, double max_norm)
{
    const double norm = dm_l2_norm(g, n);
    if (max_norm > 0.0) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            const float cf = (float)coef;
            const long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PAR_MIN)
            for (long i = 0; i < nn; i++)
                g[i] *= cf;
        }
    }
    return norm;
}
