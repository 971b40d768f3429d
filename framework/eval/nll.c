/* PF-ODE log-likelihood with the exact divergence in up to DM_NLL_EXACT_MAX_DIM dimensions and
 * Hutchinson's estimate above (see nll.h; Song et al. 2021, app. D.2; score_sde_pytorch
 * likelihood.py). GSL calls its error handler (abort by default) only when it
 * cannot allocate its own objects or is handed inconsistent limits, which the checks below rule
 * out; a failing drift returns GSL_EBADFUNC, which gsl_odeiv2_evolve_apply passes straight back. */
#include "eval/nll.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <math.h>

#include "core/alloc.h"
#include "core/rng.h"

/* A bound on the solver's steps, so that a stiff or broken denoiser ends in an error. */
#define NLL_MAX_STEPS 1000000ul

typedef struct flow_ctx {
    const dm_denoiser *den;
    const dm_schedule *s;
    size_t n, d;
    float *xf;      /* (n, d) float copy of the state, the denoiser's input */
    float *x0;      /* (n, d) x0_hat */
    const float *probe; /* (n, d) the Rademacher probes, or NULL for the exact divergence */
    double *div;    /* (n) div x0_hat, or its estimate zᵀ (∂x0_hat/∂x) z */
    double *tbuf;   /* (min(n, max_batch)) the current time for every row of a chunk */
    int64_t count;  /* drift evaluations of the whole batch */
    dm_status st;   /* the denoiser's status when rhs failed */
    char *err;
} flow_ctx;

/* y = (x (n, d), delta (n)); dy/dt = (v(x, t), div v(x, t)), with (nll.h)
 *   v = f x - k (alpha x0_hat - x),  div v = d f - k (alpha div x0_hat - d),  k = g^2 / (2 sigma^2):
 * score_sde's drift rsde.sde(x, t)[0] = f x - 1/2 g^2 score with score = (alpha x0_hat - x)/sigma^2
 * (FORMULAS.md notation: x0_hat = (x - sigma eps_hat)/alpha, score = -eps_hat/sigma).
 * With a probe z, Hutchinson's estimate of div v is zᵀ (∂v/∂x) z = |z|^2 f - k (alpha zᵀJz - |z|^2),
 * J = ∂x0_hat/∂x: the same expression with zᵀJz for div x0_hat, as |z|^2 = d for Rademacher z. */
static int rhs(double t, const double y[], double dydt[], void *params)
{
    flow_ctx *c = params;
    const dm_denoiser *den = c->den;
    const size_t n = c->n, d = c->d, nd = n * d;
    const size_t mb = n < den->max_batch ? n : den->max_batch;
    c->count++;
    for (size_t q = 0; q < nd; q++)
        c->xf[q] = (float)y[q];
    for (size_t i = 0; i < mb; i++)
        c->tbuf[i] = t;
    for (size_t i0 = 0; i0 < n; i0 += mb) {
        const size_t m = n - i0 < mb ? n - i0 : mb;
        c->st = c->probe ? den->eval_hutch(den->ctx, m, c->xf + i0 * d, c->tbuf, c->probe + i0 * d,
                                           c->x0 + i0 * d, c->div + i0, c->err)
                         : den->eval_div(den->ctx, m, c->xf + i0 * d, c->tbuf, c->x0 + i0 * d, c->div + i0,
                                         c->err);
        if (c->st)
            return GSL_EBADFUNC;
    }
    const dm_schedule *s = c->s;
    const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t), f = s->ops->f(s, t);
    const double k = 0.5 * s->ops->g2(s, t) / (sg * sg), dd = (double)d;
    int bad = 0;
    for (size_t q = 0; q < nd; q++) {
        dydt[q] = f * y[q] - k * (a * c->x0[q] - y[q]);
        bad |= !isfinite(dydt[q]);
    }
    for (size_t i = 0; i < n; i++) {
        dydt[nd + i] = dd * f - k * (a * c->div[i] - dd);
        bad |= !isfinite(dydt[nd + i]);
    }
    if (bad) {
        c->st = dm_err(c->err, DM_E_NUMERIC, "eval.nll: the PF-ODE drift or its divergence is not finite "
                       "at t = %g", t);
        return GSL_EBADFUNC;
    }
    return GSL_SUCCESS;
}

/* The argument checks of dm_nll_pfode_flow. */
static dm_status check_args(const dm_denoiser *den, const dm_schedule *s, const float *x0, size_t n,
                            double eps, double rtol, double atol, const double *delta, char *err)
{
    if (!den || !s || !s->ops || (n && (!x0 || !delta)))
        return dm_err(err, DM_E_INPUT, "eval.nll: NULL argument");
    if (den->dim < 1 || den->max_batch < 1)
        return dm_err(err, DM_E_INPUT, "eval.nll: the denoiser has dim %zu and max_batch %zu (both must "
                      "be >= 1)", den->dim, den->max_batch);
    if (den->dim <= DM_NLL_EXACT_MAX_DIM && !den->eval_div)
        return dm_err(err, DM_E_INPUT, "eval.nll: this denoiser has no exact divergence");
    if (den->dim > DM_NLL_EXACT_MAX_DIM && !den->eval_hutch)
        return dm_err(err, DM_E_INPUT, "eval.nll: this denoiser has no Hutchinson estimator, which the "
                      "likelihood needs above %d dimensions (dim %zu)", DM_NLL_EXACT_MAX_DIM, den->dim);
    if (s->discrete || !s->ops->f || !s->ops->g2)
        return dm_err(err, DM_E_INPUT, "eval.nll: the PF-ODE likelihood needs a continuous schedule "
                      "(vp, subvp, ve, edm); '%s' is discrete", s->ops->info.name);
    if (!(eps >= 0.0 && eps < s->t_max))
        return dm_err(err, DM_E_INPUT, "eval.nll: the start time eps = %g must lie in [0, t_max = %g)",
                      eps, s->t_max);
    const double a = s->ops->alpha(s, eps), sg = s->ops->sigma(s, eps);
    if (!(a > 0.0 && sg > 0.0 && isfinite(a) && isfinite(sg)))
        return dm_err(err, DM_E_INPUT, "eval.nll: the start time eps = %g has alpha = %g, sigma = %g "
                      "(the drift needs sigma > 0: take eps > 0)", eps, a, sg);
    if (!(rtol >= 0.0 && atol >= 0.0 && isfinite(rtol) && isfinite(atol) && rtol + atol > 0.0))
        return dm_err(err, DM_E_INPUT, "eval.nll: tolerances rtol = %g, atol = %g must be finite, >= 0 "
                      "and not both 0", rtol, atol);
    return DM_OK;
}

/* Rademacher probes z_i ∈ {-1, +1}^d (n, d), row i from its own stream dm_seed_index(seed, i):
 * the same probe for point i whatever n, max_batch or the thread count. Drawn once per point for
 * the whole integration, as likelihood.py draws epsilon once before solve_ivp: then delta_i is
 * z_iᵀ A_i z_i with A_i = int ∂v/∂x dt along the (probe-free) trajectory, an unbiased estimate of
 * the exact tr A_i, and the ODE stays smooth in t for the adaptive solver. Rademacher rather
 * than Gaussian: with A symmetrized, its variance 2 sum_{j≠l} A_jl^2 omits the Gaussian's extra
 * 2 sum_j A_jj^2 (Hutchinson 1990). */
static dm_status draw_probes(uint64_t seed, size_t n, size_t d, float *z, char *err)
{
    dm_rng *rngs;
    dm_status st = dm_rng_streams_new(seed, n, &rngs, err);
    if (st)
        return st;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            z[i * d + j] = dm_rng_int(&rngs[i], 2) ? 1.0f : -1.0f;
    dm_rng_streams_free(rngs, n);
    return DM_OK;
}

dm_status dm_nll_pfode_flow(const dm_denoiser *den, const dm_schedule *s, const float *x0, size_t n,
                            double eps, double rtol, double atol, uint64_t seed, double *z, double *delta,
                            int64_t *nfe, char *err)
{
    dm_status st = check_args(den, s, x0, n, eps, rtol, atol, delta, err);
    if (st)
        return st;
    if (nfe)
        *nfe = 0;
    if (n == 0)
        return DM_OK;
    const size_t d = den->dim, nd = n * d, mb = n < den->max_batch ? n : den->max_batch;
    const int hutch = d > DM_NLL_EXACT_MAX_DIM;
    flow_ctx c = { .den = den, .s = s, .n = n, .d = d, .err = err };
    gsl_odeiv2_driver *drv = NULL;
    float *probe = hutch ? dm_malloc_aligned(sizeof(float) * nd) : NULL;
    double *y = dm_malloc_aligned(sizeof(double) * (nd + n));
    c.xf = dm_malloc_aligned(sizeof(float) * nd);
    c.x0 = dm_malloc_aligned(sizeof(float) * nd);
    c.div = dm_malloc_aligned(sizeof(double) * n);
    c.tbuf = dm_malloc_aligned(sizeof(double) * mb);
    if (!y || !c.xf || !c.x0 || !c.div || !c.tbuf || (hutch && !probe)) {
        st = dm_err(err, DM_E_NOMEM, "eval.nll: out of memory for %zu points", n);
        goto out;
    }
    if (hutch) {
        if ((st = draw_probes(seed, n, d, probe, err)))
            goto out;
        c.probe = probe;
    }
    for (size_t q = 0; q < nd; q++)
        y[q] = x0[q];
    for (size_t i = 0; i < n; i++)
        y[nd + i] = 0.0;
    const double t1 = s->t_max;
    /* A first step on the scale of eps (the drift's time scale near a small start time is about
     * t itself on VP and EDM); the controller grows it by up to 5x per step. */
    const double hstart = fmin(1e-3 * (t1 - eps), fmax(eps, 1e-6 * (t1 - eps)));
    gsl_odeiv2_system sys = { rhs, NULL, nd + n, &c };
    drv = gsl_odeiv2_driver_alloc_y_new(&sys, gsl_odeiv2_step_rkf45, hstart, atol, rtol);
    if (!drv) {
        st = dm_err(err, DM_E_NOMEM, "eval.nll: GSL could not allocate its driver for %zu values", nd + n);
        goto out;
    }
    gsl_odeiv2_driver_set_nmax(drv, NLL_MAX_STEPS);
    double t = eps;
    const int gs = gsl_odeiv2_driver_apply(drv, &t, t1, y);
    if (gs != GSL_SUCCESS) {
        st = c.st ? c.st
                  : dm_err(err, DM_E_NUMERIC, "eval.nll: the ODE solver stopped at t = %g (%s) after %lld "
                           "evaluations", t, gsl_strerror(gs), (long long)c.count);
        goto out;
    }
    if (z)
        for (size_t q = 0; q < nd; q++)
            z[q] = y[q];
    for (size_t i = 0; i < n; i++)
        delta[i] = y[nd + i];
out:
    if (nfe)
        *nfe = c.count;
    if (drv)
        gsl_odeiv2_driver_free(drv);
    dm_free_aligned(probe);
    dm_free_aligned(y);
    dm_free_aligned(c.xf);
    dm_free_aligned(c.x0);
    dm_free_aligned(c.div);
    dm_free_aligned(c.tbuf);
    return st;
}

double dm_nll_prior_logp(const dm_schedule *s, const double *z, size_t d)
{
    const double v = s->prior_std * s->prior_std;
    double q = 0.0;
    for (size_t j = 0; j < d; j++)
        q += z[j] * z[j];
    return -0.5 * (double)d * log(2.0 * M_PI * v) - 0.5 * q / v;
}

dm_status dm_nll_pfode(const dm_denoiser *den, const dm_schedule *s, const float *x0, size_t n,
                       double eps, double rtol, double atol, uint64_t seed, double *logp, int64_t *nfe,
                       char *err)
{
    dm_status st = check_args(den, s, x0, n, eps, rtol, atol, logp, err);
    if (st)
        return st;
    if (nfe)
        *nfe = 0;
    if (n == 0)
        return DM_OK;
    const size_t d = den->dim;
    double *z = dm_malloc_aligned(sizeof(double) * n * d);
    if (!z) {
        st = dm_err(err, DM_E_NOMEM, "eval.nll: out of memory for %zu points", n);
        goto out;
    }
    /* likelihood.py: prior_logp(z) + delta_logp */
    if ((st = dm_nll_pfode_flow(den, s, x0, n, eps, rtol, atol, seed, z, logp, nfe, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        logp[i] += dm_nll_prior_logp(s, z + i * d, d);
out:
    dm_free_aligned(z);
    return st;
}

double dm_nll_bits_per_dim(double logp_mean, size_t d)
{
    return -logp_mean / ((double)d * M_LN2);
}
