#include "diffusion/denoiser_gmm.h"

#include <math.h>

/* The class of component k (class = component when the mixture has no class map). */
static int32_t comp_class(const dm_gmm *g, size_t k) { return g->cls ? g->cls[k] : (int32_t)k; }

/* Log-weights of the components at x: log w_k + log N(x; alpha mu_k, v_k I); -inf for the
 * components outside class y (y = DM_NULL_CLASS: all of them), which conditions on the class. */
static void log_terms_class(const dm_gmm *g, double alpha, double sigma, const double *x, int32_t y,
                            double *lt, double *vk)
{
    const size_t d = g->dim;
    for (size_t k = 0; k < g->k; k++) {
        const double v = alpha * alpha * g->s[k] * g->s[k] + sigma * sigma;
        double q = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double e = x[j] - alpha * g->mu[k * d + j];
            q += e * e;
        }
        vk[k] = v;
        lt[k] = y != DM_NULL_CLASS && comp_class(g, k) != y
                    ? -INFINITY
                    : log(g->w[k]) - 0.5 * (double)d * log(2.0 * M_PI * v) - 0.5 * q / v;
    }
}

static void log_terms(const dm_gmm *g, double alpha, double sigma, const double *x, double *lt, double *vk)
{
    log_terms_class(g, alpha, sigma, x, DM_NULL_CLASS, lt, vk);
}

static double log_sum_exp(const double *a, size_t n)
{
    double mx = -INFINITY, s = 0.0;
    for (size_t i = 0; i < n; i++)
        if (a[i] > mx)
            mx = a[i];
    if (mx == -INFINITY)
        return mx;
    for (size_t i = 0; i < n; i++)
        s += exp(a[i] - mx);
    return mx + log(s);
}

double dm_gmm_log_density(const dm_gmm *gmm, double alpha, double sigma, const double *x)
{
    double lt[256], vk[256];
    log_terms(gmm, alpha, sigma, x, lt, vk);
    return log_sum_exp(lt, gmm->k);
}

void dm_gmm_posterior_class(const dm_gmm *gmm, double alpha, double sigma, const double *x, int32_t y,
                            double *r, double *m, double *v)
{
    const size_t d = gmm->dim;
    double vk[256];
    log_terms_class(gmm, alpha, sigma, x, y, r, vk);
    const double lse = log_sum_exp(r, gmm->k);
    for (size_t k = 0; k < gmm->k; k++) {
        const double s2 = gmm->s[k] * gmm->s[k];
        r[k] = exp(r[k] - lse);
        v[k] = s2 * sigma * sigma / vk[k];
        for (size_t j = 0; j < d; j++) {
            const double mu = gmm->mu[k * d + j];
            m[k * d + j] = mu + alpha * s2 * (x[j] - alpha * mu) / vk[k];
        }
    }
}

void dm_gmm_posterior(const dm_gmm *gmm, double alpha, double sigma, const double *x, double *r,
                      double *m, double *v)
{
    dm_gmm_posterior_class(gmm, alpha, sigma, x, DM_NULL_CLASS, r, m, v);
}

double dm_gmm_class_log_prob(const dm_gmm *gmm, double alpha, double sigma, const double *x, int32_t y,
                             double *grad)
{
    const size_t d = gmm->dim, K = gmm->k;
    double lt[256], ltc[256], vk[256];
    log_terms(gmm, alpha, sigma, x, lt, vk);
    log_terms_class(gmm, alpha, sigma, x, y, ltc, vk);
    const double lse = log_sum_exp(lt, K), lsec = log_sum_exp(ltc, K);
    if (grad) {
        /* grad log p_t(x | y) - grad log p_t(x): the responsibility-weighted component scores
         * -(x - alpha mu_k)/V_k within the class, less the same over all components. */
        for (size_t j = 0; j < d; j++)
            grad[j] = 0.0;
        for (size_t k = 0; k < K; k++) {
            const double ru = exp(lt[k] - lse), rc = ltc[k] == -INFINITY ? 0.0 : exp(ltc[k] - lsec);
            for (size_t j = 0; j < d; j++)
                grad[j] -= (rc - ru) * (x[j] - alpha * gmm->mu[k * d + j]) / vk[k];
        }
    }
    return lsec - lse;
}

static dm_status check_labels(const dm_gmm *g, size_t n, const int32_t *y, char *err)
{
    const size_t d = g->dim, K = g->k;
    if (K > 256 || d > 64)
        return dm_err(err, DM_E_INPUT, "analytic denoiser: at most 256 components in 64 dimensions");
    for (size_t i = 0; y && i < n; i++)
        if (y[i] != DM_NULL_CLASS && (y[i] < 0 || (size_t)y[i] >= (g->cls ? g->n_classes : K)))
            return dm_err(err, DM_E_INPUT, "analytic denoiser: class %d is not one of the mixture's %zu classes",
                          (int)y[i], g->cls ? g->n_classes : K);
    return DM_OK;
}

static dm_status eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                      float *eps, char *err)
{
    const dm_gmm_denoiser *g = ctx;
    const size_t d = g->gmm->dim, K = g->gmm->k;
    dm_status st = check_labels(g->gmm, n, y, err);
    if (st)
        return st;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double xi[64], r[256], m[256 * 64], v[256];
        const double a = g->sched->ops->alpha(g->sched, t[i]), s = g->sched->ops->sigma(g->sched, t[i]);
        for (size_t j = 0; j < d; j++)
            xi[j] = x[i * d + j];
        dm_gmm_posterior_class(g->gmm, a, s, xi, y ? y[i] : DM_NULL_CLASS, r, m, v);
        for (size_t j = 0; j < d; j++) {
            double mean = 0.0;
            for (size_t k = 0; k < K; k++)
                mean += r[k] * m[k * d + j];
            if (x0)
                x0[i * d + j] = (float)mean;
            /* eps_hat = (x - alpha x0_hat) / sigma = -sigma * score, exactly. */
            if (eps)
                eps[i * d + j] = (float)((xi[j] - a * mean) / s);
        }
    }
    return DM_OK;
}

/* The Jacobian of D(x) = E[x0 | x_t = x] = sum_k r_k m_k at one row, contracted as the exact
 * divergence (eval_div) or the quadratic form zᵀ (dD/dx) z of a probe z (eval_hutch). With
 * V_k = alpha^2 s_k^2 + sigma^2 (the marginal variance of component k) and
 * g_k = -(x - alpha mu_k) / V_k = grad log N(x; alpha mu_k, V_k I):
 *   d m_k / dx = (alpha s_k^2 / V_k) I                      (m_k is affine in x),
 *   d r_k / dx = r_k (g_k - gbar),  gbar = sum_l r_l g_l     (softmax of the log terms),
 * so, as sum_k r_k (g_k - gbar) = 0,
 *   dD/dx = c I + sum_k r_k (m_k - D)(g_k - gbar)ᵀ,  c = sum_k r_k alpha s_k^2 / V_k,
 *   div D = d c + sum_k r_k (m_k - D)ᵀ(g_k - gbar),
 *   zᵀ (dD/dx) z = |z|^2 c + sum_k r_k (zᵀ(m_k - D)) ((g_k - gbar)ᵀ z),
 * the second terms written as r-weighted covariances of m and g (centred: the uncentred form
 * sum r m g - D gbar cancels badly when the components are far apart). Check: one component gives
 * div D = d alpha s^2 / V = (d + sigma^2 lap log p_t) / alpha, Tweedie's formula differentiated.
 * Writes D (dim) and returns div D when z is NULL, zᵀ (dD/dx) z otherwise; scratch as in eval. */
static double row_jac(const dm_gmm *gm, double a, double s, const double *x, const double *z,
                      double *dmean, double *r, double *m, double *v)
{
    const size_t d = gm->dim, K = gm->k;
    double gbar[64], trace = 0.0, cov = 0.0, zz = (double)d;
    dm_gmm_posterior(gm, a, s, x, r, m, v);
    for (size_t j = 0; j < d; j++)
        dmean[j] = gbar[j] = 0.0;
    for (size_t k = 0; k < K; k++) {
        const double s2 = gm->s[k] * gm->s[k], vk = a * a * s2 + s * s;
        trace += r[k] * a * s2 / vk;
        for (size_t j = 0; j < d; j++) {
            dmean[j] += r[k] * m[k * d + j];
            gbar[j] -= r[k] * (x[j] - a * gm->mu[k * d + j]) / vk;
        }
    }
    if (z) {
        zz = 0.0;
        for (size_t j = 0; j < d; j++)
            zz += z[j] * z[j];
    }
    for (size_t k = 0; k < K; k++) {
        const double vk = a * a * gm->s[k] * gm->s[k] + s * s;
        double c = 0.0, zm = 0.0, zg = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double gkj = -(x[j] - a * gm->mu[k * d + j]) / vk;
            if (z) {
                zm += z[j] * (m[k * d + j] - dmean[j]);
                zg += z[j] * (gkj - gbar[j]);
            } else {
                c += (m[k * d + j] - dmean[j]) * (gkj - gbar[j]);
            }
        }
        cov += r[k] * (z ? zm * zg : c);
    }
    return zz * trace + cov;
}

/* x0_hat and, per row, row_jac's value: the trace of dD/dx (hutch = 0) or zᵀ (dD/dx) z with the
 * row's probe (hutch = 1; a NULL z is the zero probe). In closed form (no differentiation; a few
 * d K operations per row). */
static dm_status jac_rows(const dm_gmm_denoiser *g, int hutch, size_t n, const float *x, const double *t,
                          const float *z, float *x0, double *out, char *err)
{
    const size_t d = g->gmm->dim, K = g->gmm->k;
    if (K > 256 || d > 64)
        return dm_err(err, DM_E_INPUT, "analytic denoiser: at most 256 components in 64 dimensions");
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double xi[64], zi[64], mean[64], r[256], m[256 * 64], v[256];
        const double a = g->sched->ops->alpha(g->sched, t[i]), s = g->sched->ops->sigma(g->sched, t[i]);
        for (size_t j = 0; j < d; j++) {
            xi[j] = x[i * d + j];
            zi[j] = z ? z[i * d + j] : 0.0;
        }
        const double q = row_jac(g->gmm, a, s, xi, hutch ? zi : NULL, mean, r, m, v);
        if (out)
            out[i] = q;
        if (x0)
            for (size_t j = 0; j < d; j++)
                x0[i * d + j] = (float)mean[j];
    }
    return DM_OK;
}

static dm_status eval_div(void *ctx, size_t n, const float *x, const double *t, float *x0, double *div,
                          char *err)
{
    return jac_rows(ctx, 0, n, x, t, NULL, x0, div, err);
}

/* denoiser.h eval_hutch: the cost of eval_div. */
static dm_status eval_hutch(void *ctx, size_t n, const float *x, const double *t, const float *z,
                            float *x0, double *zjz, char *err)
{
    return jac_rows(ctx, 1, n, x, t, z, x0, zjz, err);
}

/* The analytic classifier (classifier.h): log p_t(y | x) and its gradient in closed form. */
static dm_status clf_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, double *logp,
                          float *grad, char *err)
{
    const dm_gmm_denoiser *g = ctx;
    const size_t d = g->gmm->dim;
    dm_status st = check_labels(g->gmm, n, y, err);
    if (st)
        return st;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double xi[64], gr[64];
        const double a = g->sched->ops->alpha(g->sched, t[i]), s = g->sched->ops->sigma(g->sched, t[i]);
        for (size_t j = 0; j < d; j++)
            xi[j] = x[i * d + j];
        const int32_t yi = y[i] == DM_NULL_CLASS ? 0 : y[i];
        const double lp = y[i] == DM_NULL_CLASS ? 0.0 : dm_gmm_class_log_prob(g->gmm, a, s, xi, yi, gr);
        if (logp)
            logp[i] = lp;
        for (size_t j = 0; j < d && grad; j++)
            grad[i * d + j] = y[i] == DM_NULL_CLASS ? 0.0f : (float)gr[j];
    }
    return DM_OK;
}

void dm_gmm_classifier_init(dm_gmm_denoiser *g, dm_classifier *clf, const dm_gmm *gmm, const dm_schedule *sched,
                            size_t max_batch)
{
    *g = (dm_gmm_denoiser){ .gmm = gmm, .sched = sched };
    *clf = (dm_classifier){ .ctx = g, .dim = gmm->dim, .n_classes = gmm->cls ? gmm->n_classes : gmm->k,
                            .max_batch = max_batch, .eval = clf_eval };
}

void dm_gmm_denoiser_init(dm_gmm_denoiser *g, dm_denoiser *den, const dm_gmm *gmm,
                          const dm_schedule *sched, size_t max_batch)
{
    *g = (dm_gmm_denoiser){ .gmm = gmm, .sched = sched };
    *den = (dm_denoiser){ .ctx = g, .dim = gmm->dim, .max_batch = max_batch, .eval = eval,
                          .eval_div = eval_div, .eval_hutch = eval_hutch };
}
