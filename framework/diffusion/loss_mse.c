/* Weighted mean squared error in a chosen target space (eps with no weighting: DDPM's L_simple,
 * Ho et al. 2020 eq. 14). Targets, weightings and the space each weighting lives in: losses.h.
 * The prediction in the target space is linear in F (param.h), so
 * dL/dF = 2 lambda f (pred - target)/(n d). */
#include <math.h>
#include <stddef.h>

#include "diffusion/ddpm_step.h"
#include "diffusion/losses.h"
#include "diffusion/params.h"

static const char *const targets[] = { "eps", "x0", "v", "score", "mu", NULL };
static const char *const weightings[] = { "none", "sigma2", "g2", "snr", "min_snr", "edm", NULL };

static dm_status check(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err)
{
    const dm_mse_opts *o = opts;
    (void)param;
    if (o->target == DM_MSE_V) {
        double t;
        const double dev = dm_param_vp_defect(s, &t);
        if (!(dev <= DM_PARAM_VP_TOL))
            return dm_err(err, DM_E_INPUT,
                          "diffusion.loss.target: v needs alpha^2 + sigma^2 = 1; schedule '%s' is not "
                          "variance-preserving (|alpha^2 + sigma^2 - 1| = %g at t = %g)",
                          s->ops->info.name, dev, t);
    }
    if (o->target == DM_MSE_MU && !s->discrete)
        return dm_err(err, DM_E_INPUT,
                      "diffusion.loss.target: mu (the DDPM posterior mean) needs a discrete schedule; '%s' is "
                      "continuous", s->ops->info.name);
    if (o->weighting == DM_MSE_W_G2 && (s->discrete || !s->ops->g2))
        return dm_err(err, DM_E_INPUT,
                      "diffusion.loss.weighting: g2 needs a continuous schedule with an SDE; "
                      "schedule '%s' %s",
                      s->ops->info.name, s->discrete ? "is discrete" : "gives no g^2");
    return DM_OK;
}

/* lambda_i, the factor of row i's squared error in the target space. The x0-space weightings
 * (min_snr, edm) are w0 * k_target with k the ratio |x0_hat - x0|^2 / |pred - target|^2
 * (losses.h): k_x0 = 1, k_eps = s^2/a^2, k_v = s^2/(a^2 + s^2)^2, k_score = s^4/a^2. They are
 * written out per target so that the ends (sigma -> 0, alpha -> 0) give the finite limit instead
 * of 0 * inf. */
static double weight(const dm_mse_opts *o, const dm_loss_batch *b, size_t i, double c_x0)
{
    const double a = b->alpha[i], s = b->sigma[i], a2 = a * a, s2 = s * s;
    switch (o->weighting) {
    case DM_MSE_W_SIGMA2:
        return s2;
    case DM_MSE_W_G2:
        return b->sched->ops->g2(b->sched, b->t[i]);
    case DM_MSE_W_SNR:
        return a2 / s2;
    case DM_MSE_W_MIN_SNR: {
        /* w0 = min(SNR, gamma); clipped when SNR > gamma, i.e. a^2 > gamma s^2. */
        const double g = o->gamma;
        const int clip = a2 > g * s2;
        switch (o->target) {
        case DM_MSE_X0:
            return clip ? g : a2 / s2;
        case DM_MSE_EPS:
            return clip ? g * s2 / a2 : 1.0;
        case DM_MSE_V:
            return (clip ? g * s2 : a2) / ((a2 + s2) * (a2 + s2));
        case DM_MSE_MU: /* k_mu = 1/c_x0^2, c_x0 > 0 on every step */
            return (clip ? g : a2 / s2) / (c_x0 * c_x0);
        default: /* score */
            return clip ? g * s2 * s2 / a2 : s2;
        }
    }
    case DM_MSE_W_EDM: {
        /* w0 = (st^2 + sd^2)/(st sd)^2, st = s/a (EDMLoss; edm parameterization for any alpha). */
        const double sd = b->sigma_data, sd2 = sd * sd;
        const double st = s / a, q = st * st + sd2;
        switch (o->target) {
        case DM_MSE_X0:
            return q / (st * st * sd2);
        case DM_MSE_EPS:
            return q / sd2;
        case DM_MSE_V:
            return q * a2 / (sd2 * (a2 + s2) * (a2 + s2));
        case DM_MSE_MU:
            return q / (st * st * sd2) / (c_x0 * c_x0);
        default: /* score */
            return q * s2 / sd2;
        }
    }
    default: /* none */
        return 1.0;
    }
}

static double eval(const void *opts, const dm_loss_batch *b, float *dF)
{
    const dm_mse_opts *o = opts;
    const size_t d = b->d;
    const double scale = 1.0 / ((double)b->n * (double)d);
    double total = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        const dm_param_coef *c = &b->coef[i];
        const double a = b->alpha[i], s = b->sigma[i];
        /* pred = xc x_t + fc F in the target space. */
        double xc, fc;
        dm_ddpm_step st = { 0 };
        if (o->target == DM_MSE_MU)
            dm_ddpm_step_full(b->sched, (int)b->t[i], &st);
        switch (o->target) {
        case DM_MSE_MU: /* mu_hat = c_x0 x0_hat + c_xt x_t */
            xc = st.c_x0 * c->x_x0 + st.c_xt, fc = st.c_x0 * c->f_x0;
            break;
        case DM_MSE_X0:
            xc = c->x_x0, fc = c->f_x0;
            break;
        case DM_MSE_V: /* v_hat = a eps_hat - s x0_hat */
            xc = a * c->x_eps - s * c->x_x0, fc = a * c->f_eps - s * c->f_x0;
            break;
        case DM_MSE_SCORE: /* s_hat = -eps_hat / s */
            xc = -c->x_eps / s, fc = -c->f_eps / s;
            break;
        default:
            xc = c->x_eps, fc = c->f_eps;
            break;
        }
        const double lam = weight(o, b, i, st.c_x0), g = 2.0 * scale * lam;
        double row = 0.0;
        for (size_t j = 0; j < d; j++) {
            const size_t k = i * d + j;
            double tgt;
            switch (o->target) {
            case DM_MSE_X0:
                tgt = b->x0[k];
                break;
            case DM_MSE_MU:
                tgt = st.c_x0 * b->x0[k] + st.c_xt * b->x_t[k];
                break;
            case DM_MSE_V:
                tgt = a * b->eps[k] - s * b->x0[k];
                break;
            case DM_MSE_SCORE:
                tgt = -b->eps[k] / s;
                break;
            default:
                tgt = b->eps[k];
                break;
            }
            const double r = xc * b->x_t[k] + fc * b->F[k] - tgt;
            row += r * r;
            dF[k] = (float)(g * fc * r);
        }
        total += lam * row;
    }
    return total * scale;
}

static const dm_param_desc mse_params[] = {
    { "target", DM_OPT_CHOICE, "eps", 0, 0, targets, 0, offsetof(dm_mse_opts, target),
      "space of the squared error: eps (L_simple), x0, v (VP schedules only), score (-eps/sigma) or mu "
      "(the DDPM posterior mean, discrete schedules)" },
    { "weighting", DM_OPT_CHOICE, "none", 0, 0, weightings, 0, offsetof(dm_mse_opts, weighting),
      "lambda(t): none, sigma2, g2, snr (in the target space); min_snr, edm (defined in x0 space)" },
    { "gamma", DM_OPT_REAL, "5", 1e-3, 1e6, NULL, 0, offsetof(dm_mse_opts, gamma),
      "min_snr: the clip, x0-space weight min(SNR, gamma) (Hang et al. 2023)" },
    DM_OPT_END,
};

const dm_loss_ops dm_loss_mse = {
    .info = { "mse", "weighted mean squared error of the prediction in the target space", mse_params,
              sizeof(dm_mse_opts) },
    .check = check,
    .eval = eval,
};
