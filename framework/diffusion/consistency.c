/* Consistency-model math (consistency.h has the formulas and their sources). */
#include "diffusion/consistency.h"

#include <inttypes.h>
#include <math.h>

/* ---- boundary scalings ---- */

void dm_cm_coef_at(double t, double t_min, double sigma_data, dm_cm_coef *c)
{
    const double sd2 = sigma_data * sigma_data, dt = t - t_min, r = sqrt(t * t + sd2);
    /* At t == t_min: dt = 0, so c_skip = sd2/sd2 = 1 and c_out = 0 exactly. */
    *c = (dm_cm_coef){ .c_skip = sd2 / (dt * dt + sd2),
                       .c_out = dt * sigma_data / r,
                       .c_in = 1.0 / r,
                       .c_noise = 250.0 * log(t + 1e-44) };
}

void dm_cm_apply(const dm_cm_coef *c, size_t d, const float *x, const float *F, float *out)
{
    const double a = c->c_skip, b = c->c_out;
    if (b == 0.0) {
        for (size_t j = 0; j < d; j++)
            out[j] = (float)(a * x[j]);
        return;
    }
    for (size_t j = 0; j < d; j++)
        out[j] = (float)(a * x[j] + b * F[j]);
}

/* ---- Karras grid ---- */

static double karras_inner(int i, int N, double a, double b, double rho)
{
    return pow(a + (double)i / (double)(N - 1) * (b - a), rho);
}

double dm_cm_karras_sigma(int i, int N, double t_min, double t_max, double rho)
{
    if (i <= 0)
        return t_min;
    if (i >= N - 1)
        return t_max;
    return karras_inner(i, N, pow(t_min, 1.0 / rho), pow(t_max, 1.0 / rho), rho);
}

void dm_cm_karras_grid(int N, double t_min, double t_max, double rho, double *t)
{
    const double a = pow(t_min, 1.0 / rho), b = pow(t_max, 1.0 / rho);
    for (int i = 1; i < N - 1; i++)
        t[i] = karras_inner(i, N, a, b, rho);
    if (N >= 1)
        t[0] = t_min;
    if (N >= 2)
        t[N - 1] = t_max;
}

/* ---- CT and iCT curricula ---- */

dm_status dm_cm_curriculum_check(const char *what, int64_t K, int s0, int s1, char *err)
{
    if (K < 1)
        return dm_err(err, DM_E_INPUT, "%s: the curriculum needs at least 1 training step (K = %" PRId64 ")",
                      what, K);
    if (s0 < 1 || s1 < s0)
        return dm_err(err, DM_E_INPUT, "%s: the curriculum needs 1 <= s0 <= s1 (s0 = %d, s1 = %d)", what, s0,
                      s1);
    return DM_OK;
}

int dm_cm_ct_n_steps(int64_t k, int64_t K, int s0, int s1)
{
    if (K < 1)
        K = 1;
    k = k < 0 ? 0 : k > K ? K : k;
    const double s0sq = (double)s0 * s0, span = (double)(s1 + 1) * (s1 + 1) - s0sq;
    const double n = ceil(sqrt((double)k / (double)K * span + s0sq) - 1.0);
    return (n < 1.0 ? 1 : (int)n) + 1;
}

double dm_cm_ct_mu(int N, int s0, double mu0)
{
    const int n = N - 1 < 1 ? 1 : N - 1;
    return exp(s0 * log(mu0) / n);
}

int dm_cm_ict_n_steps(int64_t k, int64_t K, int s0, int s1)
{
    if (K < 1)
        K = 1;
    if (k < 0)
        k = 0;
    if (s0 < 1)
        s0 = 1;
    const int ratio = s1 / s0 < 1 ? 1 : s1 / s0;
    int64_t kp = (int64_t)floor((double)K / (log2((double)ratio) + 1.0));
    if (kp < 1)
        kp = 1;
    const int64_t doublings = k / kp;
    int64_t n = s1;
    if (doublings < 32 && ((int64_t)s0 << doublings) < n)
        n = (int64_t)s0 << doublings;
    return (int)n + 1;
}

static const double SQRT2 = 1.41421356237309504880;

/* erf(b) - erf(a) for a <= b, through erfc in the tails so that far intervals keep their mass. */
static double erf_mass(double a, double b)
{
    if (a >= 0.0)
        return erfc(a) - erfc(b);
    if (b <= 0.0)
        return erfc(-b) - erfc(-a);
    return erf(b) - erf(a);
}

dm_status dm_cm_ict_index_probs(int N, const double *sigmas, double P_mean, double P_std, double *p,
                                char *err)
{
    if (N < 2)
        return dm_err(err, DM_E_INPUT, "iCT index distribution: needs a grid of at least 2 points (N = %d)",
                      N);
    if (!(P_std > 0.0) || !isfinite(P_std) || !isfinite(P_mean))
        return dm_err(err, DM_E_INPUT, "iCT index distribution: needs a finite P_mean and P_std > 0 (%g, %g)",
                      P_mean, P_std);
    if (!(sigmas[0] > 0.0))
        return dm_err(err, DM_E_INPUT, "iCT index distribution: sigma_0 = %g is not positive", sigmas[0]);
    for (int i = 0; i + 1 < N; i++)
        if (!(sigmas[i + 1] > sigmas[i]) || !isfinite(sigmas[i + 1]))
            return dm_err(err, DM_E_INPUT,
                          "iCT index distribution: the grid is not strictly ascending at %d (%g, %g)", i,
                          sigmas[i], sigmas[i + 1]);
    const double scale = 1.0 / (SQRT2 * P_std);
    double total = 0.0, lo = (log(sigmas[0]) - P_mean) * scale;
    for (int i = 0; i + 1 < N; i++) {
        const double hi = (log(sigmas[i + 1]) - P_mean) * scale;
        p[i] = erf_mass(lo, hi);
        total += p[i];
        lo = hi;
    }
    if (!(total > 0.0) || !isfinite(total))
        return dm_err(err, DM_E_INPUT,
                      "iCT index distribution: no mass on the grid [%g, %g] for ln sigma ~ N(%g, %g^2)",
                      sigmas[0], sigmas[N - 1], P_mean, P_std);
    for (int i = 0; i + 1 < N; i++)
        p[i] /= total;
    return DM_OK;
}

int dm_cm_sample_index(const double *p, int n, double u)
{
    double acc = 0.0;
    int last = -1;
    for (int i = 0; i < n; i++) {
        if (!(p[i] > 0.0))
            continue;
        acc += p[i];
        last = i;
        if (u < acc)
            return i;
    }
    return last;
}

double dm_cm_ict_weight(double sig_i, double sig_ip1) { return 1.0 / (sig_ip1 - sig_i); }

/* ---- distances ---- */

const char *const dm_cm_distance_names[] = { "l2", "l1", "pseudo_huber", NULL };

static double dist_l2(size_t d, const float *x, const float *y, float *dx)
{
    const double inv = 1.0 / (double)d;
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        const double r = (double)x[j] - y[j];
        s += r * r;
        if (dx)
            dx[j] = (float)(2.0 * inv * r);
    }
    return s * inv;
}

static double dist_l1(size_t d, const float *x, const float *y, float *dx)
{
    const double inv = 1.0 / (double)d;
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        const double r = (double)x[j] - y[j];
        s += fabs(r);
        if (dx)
            dx[j] = (float)(r > 0.0 ? inv : r < 0.0 ? -inv : 0.0);
    }
    return s * inv;
}

static double dist_pseudo_huber(size_t d, const float *x, const float *y, double c, float *dx)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        const double r = (double)x[j] - y[j];
        s += r * r;
    }
    const double root = sqrt(s + c * c);
    if (dx) {
        const double g = root > 0.0 ? 1.0 / root : 0.0;
        for (size_t j = 0; j < d; j++)
            dx[j] = (float)(g * ((double)x[j] - y[j]));
    }
    /* sqrt(s + c^2) - c without the cancellation of two nearly equal numbers when s << c^2. */
    return root > 0.0 ? s / (root + c) : 0.0;
}

double dm_cm_distance(int kind, size_t d, const float *x, const float *y, double c, float *dx)
{
    if (d == 0)
        return kind >= DM_CM_L2 && kind <= DM_CM_PSEUDO_HUBER ? 0.0 : NAN;
    switch (kind) {
    case DM_CM_L2:
        return dist_l2(d, x, y, dx);
    case DM_CM_L1:
        return dist_l1(d, x, y, dx);
    case DM_CM_PSEUDO_HUBER:
        return dist_pseudo_huber(d, x, y, c, dx);
    default:
        return NAN;
    }
}

double dm_cm_huber_c(size_t d) { return 0.00054 * sqrt((double)d); }

/* ---- multistep sampling ---- */

double dm_cm_multistep_noise(double t_next, double t_min)
{
    if (!(t_next > t_min))
        return 0.0;
    return sqrt((t_next - t_min) * (t_next + t_min));
}

dm_status dm_cm_teacher_step(const dm_denoiser *teacher, int heun, size_t n, const float *x, const double *ts,
                             const double *tt, float *y, float *D, float *D2, char *err)
{
    const size_t d = teacher->dim;
    dm_status st = teacher->eval(teacher->ctx, n, x, ts, NULL, D, NULL, err);
    if (st)
        return st;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            y[q] = (float)(x[q] + (tt[i] - ts[i]) * (x[q] - D[q]) / ts[i]);
        }
    if (!heun)
        return DM_OK;
    /* Heun: the slope at the Euler point, averaged with the first. */
    if ((st = teacher->eval(teacher->ctx, n, y, tt, NULL, D2, NULL, err)))
        return st;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const size_t q = i * d + j;
            const double d1 = (x[q] - D[q]) / ts[i], d2 = (y[q] - D2[q]) / tt[i];
            y[q] = (float)(x[q] + (tt[i] - ts[i]) * 0.5 * (d1 + d2));
        }
    return DM_OK;
}
