/* The DDPM variational bound as a training loss (Ho et al. 2020, eq. 5; Nichol & Dhariwal 2021,
 * sec. 3.1; improved-diffusion gaussian_diffusion.py _vb_terms_bpd and training_losses).
 *
 * For a row at step t (full grid; ddpm_step.h) with the model's reverse step
 * N(mu_hat, e^lv), mu_hat = c_x0 x0_hat + c_xt x_t:
 *   L_t = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))     for t > 0,
 *   L_0 = -log N(x0; mu_hat, e^lv)                          for t = 0 (the decoder),
 * per coordinate and averaged over the d coordinates, in bits (/ ln 2), as improved-diffusion.
 * On continuous data the decoder is the Gaussian log-density, not the 8-bit discretized one.
 *
 *   vlb     loss = T L_t: with t uniform its mean over t is the bound minus the prior term
 *           (improved-diffusion RESCALED_KL); gradients reach the mean and, with variance
 *           learned, the variance. The fixed variances beta and beta_tilde give the "true
 *           variational bound" rows of Ho et al.'s Table 2.
 *   hybrid  loss = mean_j (F_j - F*_j)^2 + lambda T L_t with the mean's gradient stopped in L_t,
 *           so L_t trains only the variance (L_hybrid, lambda = 0.001; improved-diffusion's
 *           RESCALED_MSE multiplies the vb term by T/1000, the same thing for lambda = 0.001).
 *           F* is the network's own target, the F that gives x0_hat = x0: eps for eps, x0 for
 *           x0, mu~ for mu, EDM's effective target for edm.
 *
 * With t_sampling: importance the trainer draws t with probability p_t ∝ sqrt(E[L_t^2]) from the
 * last 10 row losses at each t, mixed with 0.001 uniform, and passes w = 1/(T p_t) (unbiased);
 * the rows' unweighted losses go back into that history (train/tsampler.h). */
#include <math.h>
#include <stddef.h>

#include "diffusion/ddpm_step.h"
#include "diffusion/losses.h"

static const char *const t_samplings[] = { "uniform", "importance", NULL };

static dm_status check_common(const dm_schedule *s, const char *name, char *err)
{
    if (!s->discrete)
        return dm_err(err, DM_E_INPUT, "diffusion.loss.type: %s (the DDPM variational bound) needs a discrete "
                      "schedule; '%s' is continuous", name, s->ops->info.name);
    return DM_OK;
}

static dm_status check_vlb(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err)
{
    (void)opts; (void)param;
    return check_common(s, "vlb", err);
}

static dm_status check_hybrid(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err)
{
    (void)opts; (void)param;
    return check_common(s, "hybrid", err);
}

/* One row: returns the row's loss (before w) and writes dF = w * d(row loss)/dF / n. scale is the
 * factor of L_t in the loss, mse 1 for hybrid (which also stops the mean's gradient in L_t). */
static double row_terms(const dm_loss_batch *b, size_t i, int mode, double scale, int hybrid, double gw,
                        float *dF)
{
    const size_t d = b->d, fc = b->f_cols;
    const dm_param_coef *c = &b->coef[i];
    const int t = (int)b->t[i];
    dm_ddpm_step st;
    dm_ddpm_step_full(b->sched, t, &st);
    const double k = scale / ((double)d * M_LN2);     /* d(loss)/d(term in nats) */
    const double dlv_dv = 0.5 * (st.log_beta - st.log_beta_tilde);   /* v = (F + 1)/2 */
    double kl = 0.0, mse = 0.0;
    for (size_t j = 0; j < d; j++) {
        const size_t q = i * d + j, f = i * fc + j;
        const double x = b->x_t[q], x0 = b->x0[q], F = b->F[f];
        const double v = mode == DM_VAR_LEARNED ? 0.5 * (b->F[f + d] + 1.0) : 0.0;
        const double lv = dm_ddpm_logvar(&st, mode, v);
        const double mu = st.c_x0 * (c->x_x0 * x + c->f_x0 * F) + st.c_xt * x;
        double d_mu, d_lv, term;
        if (t == 0)
            term = dm_gauss_nll(x0, mu, lv, &d_mu, &d_lv);
        else
            term = dm_gauss_kl(st.c_x0 * x0 + st.c_xt * x, log(st.beta_tilde), mu, lv, &d_mu, &d_lv);
        kl += term;
        double g_mean = hybrid ? 0.0 : k * d_mu * st.c_x0 * c->f_x0;
        if (hybrid) {
            const double r = F - (x0 - c->x_x0 * x) / c->f_x0;
            mse += r * r;
            g_mean = 2.0 * r / (double)d;
        }
        dF[f] = (float)(gw * g_mean);
        if (mode == DM_VAR_LEARNED)
            dF[f + d] = (float)(gw * k * d_lv * dlv_dv);
    }
    return k * kl + mse / (double)d;
}

static double eval_mode(const dm_loss_batch *b, int mode, double scale, int hybrid, float *dF)
{
    const double inv_n = 1.0 / (double)b->n;
    double total = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        const double w = b->w ? b->w[i] : 1.0;
        const double row = row_terms(b, i, mode, scale, hybrid, w * inv_n, dF);
        if (b->row_loss)
            b->row_loss[i] = row;
        total += w * row;
    }
    return total * inv_n;
}

static double eval_vlb(const void *opts, const dm_loss_batch *b, float *dF)
{
    const dm_vlb_opts *o = opts;
    return eval_mode(b, o->variance, (double)b->sched->T, 0, dF);
}

static double eval_hybrid(const void *opts, const dm_loss_batch *b, float *dF)
{
    const dm_hybrid_opts *o = opts;
    return eval_mode(b, DM_VAR_LEARNED, o->lambda * (double)b->sched->T, 1, dF);
}

static int variance_vlb(const void *opts) { return ((const dm_vlb_opts *)opts)->variance; }
static int variance_hybrid(const void *opts) { (void)opts; return DM_VAR_LEARNED; }
static int importance_vlb(const void *opts) { return ((const dm_vlb_opts *)opts)->t_sampling == 1; }
static int importance_hybrid(const void *opts) { return ((const dm_hybrid_opts *)opts)->t_sampling == 1; }

static const dm_param_desc vlb_params[] = {
    { "variance", DM_OPT_CHOICE, "learned", 0, 0, dm_var_names, 0, offsetof(dm_vlb_opts, variance),
      "reverse-step variance: learned (improved DDPM interpolation; the network outputs 2 d values), "
      "or fixed beta / beta_tilde" },
    { "t_sampling", DM_OPT_CHOICE, "importance", 0, 0, t_samplings, 0, offsetof(dm_vlb_opts, t_sampling),
      "training times: uniform, or importance sampling by sqrt(E[L_t^2]) (Nichol & Dhariwal 2021)" },
    DM_OPT_END,
};

static const dm_param_desc hybrid_params[] = {
    { "lambda", DM_OPT_REAL, "0.001", 0, 1e6, NULL, 0, offsetof(dm_hybrid_opts, lambda),
      "weight of L_vlb in L_simple + lambda L_vlb" },
    { "t_sampling", DM_OPT_CHOICE, "uniform", 0, 0, t_samplings, 0, offsetof(dm_hybrid_opts, t_sampling),
      "training times: uniform, or importance sampling by sqrt(E[L_t^2])" },
    DM_OPT_END,
};

const dm_loss_ops dm_loss_vlb = {
    .info = { "vlb", "the DDPM variational bound T L_t in bits per dimension (Ho et al. 2020)", vlb_params,
              sizeof(dm_vlb_opts) },
    .check = check_vlb,
    .eval = eval_vlb,
    .variance = variance_vlb,
    .importance_t = importance_vlb,
};

const dm_loss_ops dm_loss_hybrid = {
    .info = { "hybrid", "L_simple + lambda L_vlb with a learned variance (Nichol & Dhariwal 2021)",
              hybrid_params, sizeof(dm_hybrid_opts) },
    .check = check_hybrid,
    .eval = eval_hybrid,
    .variance = variance_hybrid,
    .importance_t = importance_hybrid,
};
