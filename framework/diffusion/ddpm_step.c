#include "diffusion/ddpm_step.h"

#include <math.h>

const char *const dm_var_names[] = { "beta", "beta_tilde", "learned", NULL };

/* beta~ of the step t -> t' (0 when t' = -1). */
static double beta_tilde(const dm_schedule *s, int t, int tp)
{
    const double ab = dm_schedule_abar(s, t), abp = dm_schedule_abar(s, tp);
    return (1.0 - abp) / (1.0 - ab) * (1.0 - ab / abp);
}

void dm_ddpm_step_at(const dm_schedule *s, int t, int tp, int t_up, dm_ddpm_step *c)
{
    const double ab = dm_schedule_abar(s, t), abp = dm_schedule_abar(s, tp);
    const double beta = 1.0 - ab / abp;
    c->beta = beta;
    c->beta_tilde = (1.0 - abp) / (1.0 - ab) * beta;
    c->log_beta = log(beta);
    if (tp >= 0)
        c->log_beta_tilde = log(c->beta_tilde);
    else
        c->log_beta_tilde = t_up >= 0 ? log(beta_tilde(s, t_up, t)) : c->log_beta;
    c->c_x0 = sqrt(abp) * beta / (1.0 - ab);
    c->c_xt = sqrt(1.0 - beta) * (1.0 - abp) / (1.0 - ab);
}

void dm_ddpm_step_full(const dm_schedule *s, int t, dm_ddpm_step *c)
{
    dm_ddpm_step_at(s, t, t - 1, t + 1 < s->T ? t + 1 : -1, c);
}

void dm_ddpm_ancestral_at(const dm_schedule *s, int t, int tp, int t_up, int variance,
                          dm_ddpm_ancestral *a)
{
    dm_ddpm_step_at(s, t, tp, t_up, &a->c);
    const double beta = a->c.beta, var = variance == DM_VAR_BETA ? beta : a->c.beta_tilde;
    a->variance = variance;
    a->noisy = tp >= 0;
    a->c_eps = (float)(beta / sqrt(1.0 - dm_schedule_abar(s, t)));
    a->c_mean = (float)(1.0 / sqrt(1.0 - beta));
    a->sd = a->noisy ? (float)sqrt(var) : 0.0f;
}

void dm_ddpm_ancestral_row(const dm_ddpm_ancestral *a, size_t d, float *x, const float *eps,
                           const float *v, dm_rng *rng)
{
    const int learned = a->variance == DM_VAR_LEARNED;
    for (size_t j = 0; j < d; j++) {
        float xn = a->c_mean * (x[j] - a->c_eps * eps[j]);
        if (learned && a->noisy)
            xn += (float)exp(0.5 * dm_ddpm_logvar(&a->c, DM_VAR_LEARNED, v[j])) *
                  (float)dm_rng_normal(rng);
        else if (a->sd > 0.0f)
            xn += a->sd * (float)dm_rng_normal(rng);
        x[j] = xn;
    }
}

double dm_gauss_kl(double m1, double lv1, double m2, double lv2, double *d_m2, double *d_lv2)
{
    const double dm = m1 - m2, ir = exp(-lv2), q = exp(lv1 - lv2);
    if (d_m2)
        *d_m2 = -dm * ir;
    if (d_lv2)
        *d_lv2 = 0.5 * (1.0 - q - dm * dm * ir);
    return 0.5 * (-1.0 + lv2 - lv1 + q + dm * dm * ir);
}

double dm_gauss_nll(double x, double m, double lv, double *d_m, double *d_lv)
{
    const double r = x - m, ir = exp(-lv);
    if (d_m)
        *d_m = -r * ir;
    if (d_lv)
        *d_lv = 0.5 * (1.0 - r * r * ir);
    return 0.5 * (log(2.0 * M_PI) + lv + r * r * ir);
}
