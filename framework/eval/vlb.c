#include "eval/vlb.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "diffusion/ddpm_step.h"

dm_status dm_vlb(const dm_denoiser *den, const dm_schedule *s, int var_mode, const float *x0, size_t n,
                 dm_rng *rngs, double *bound, double *terms, double *prior, char *err)
{
    const size_t d = den->dim;
    if (!s->discrete)
        return dm_err(err, DM_E_INPUT, "eval.nll: the variational bound needs a discrete schedule; '%s' is continuous",
                      s->ops->info.name);
    if (var_mode == DM_VAR_LEARNED && !den->eval_var)
        return dm_err(err, DM_E_INPUT, "eval.nll: the bound with a learned variance needs a model trained with one");
    if (n == 0)
        return DM_OK;
    dm_status st = DM_OK;
    float *xt = dm_malloc_aligned(sizeof(float) * n * d);
    float *xh = dm_malloc_aligned(sizeof(float) * n * d);
    float *v = var_mode == DM_VAR_LEARNED ? dm_malloc_aligned(sizeof(float) * n * d) : NULL;
    double *tbuf = dm_malloc(sizeof(double) * den->max_batch);
    if (!xt || !xh || !tbuf || (var_mode == DM_VAR_LEARNED && !v)) {
        st = dm_err(err, DM_E_NOMEM, "out of memory for the bound of %zu points", n);
        goto out;
    }

    /* The prior term: q(x_T | x0) = N(alpha x0, sigma^2) against N(0, prior_std^2). */
    const int T = s->T;
    const double aT = s->ops->alpha(s, T - 1), sT = s->ops->sigma(s, T - 1);
    const double lv_prior = 2.0 * log(s->prior_std), lv_T = 2.0 * log(sT);
    double prior_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double b = 0.0;
        for (size_t j = 0; j < d; j++)
            b += dm_gauss_kl(aT * x0[i * d + j], lv_T, 0.0, lv_prior, NULL, NULL);
        bound[i] = b;
        prior_sum += b;
    }
    if (prior)
        *prior = prior_sum / (double)n;

    for (int t = T - 1; t >= 0; t--) {
        const double a = s->ops->alpha(s, t), sg = s->ops->sigma(s, t);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                xt[i * d + j] = (float)(a * x0[i * d + j] + sg * dm_rng_normal(&rngs[i]));
        for (size_t k = 0; k < den->max_batch; k++)
            tbuf[k] = t;
        for (size_t i0 = 0; i0 < n; i0 += den->max_batch) {
            const size_t m = n - i0 < den->max_batch ? n - i0 : den->max_batch;
            st = v ? den->eval_var(den->ctx, m, xt + i0 * d, tbuf, NULL, xh + i0 * d, NULL, v + i0 * d, err)
                   : den->eval(den->ctx, m, xt + i0 * d, tbuf, NULL, xh + i0 * d, NULL, err);
            if (st)
                goto out;
        }
        dm_ddpm_step c;
        dm_ddpm_step_full(s, t, &c);
        const double lv_q = t > 0 ? log(c.beta_tilde) : 0.0;
        double term_sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            double b = 0.0;
            for (size_t j = 0; j < d; j++) {
                const size_t q = i * d + j;
                const double lv = dm_ddpm_logvar(&c, var_mode, v ? v[q] : 0.0);
                const double mu = c.c_x0 * xh[q] + c.c_xt * xt[q];
                b += t > 0 ? dm_gauss_kl(c.c_x0 * x0[q] + c.c_xt * xt[q], lv_q, mu, lv, NULL, NULL)
                           : dm_gauss_nll(x0[q], mu, lv, NULL, NULL);
            }
            bound[i] += b;
            term_sum += b;
        }
        if (terms)
            terms[t] = term_sum / (double)n;
    }
out:
    dm_free_aligned(xt);
    dm_free_aligned(xh);
    dm_free_aligned(v);
    dm_free(tbuf);
    return st;
}
