/* Consistency losses: consistency training (CT), improved CT (iCT) and consistency distillation
 * (CD) (Song et al. 2023; Song & Dhariwal 2023; diffusion/consistency.h for the formulas). They
 * need two evaluations of the consistency function per row — the student at the larger time
 * t_{i+1}, the stop-gradient target at t_i — and, for CD, a teacher's ODE step, so the trainer
 * runs them through its consistency step (train/trainer_cm.c) and these plug-ins have no eval slot;
 * the part that is a plain loss of the student's output is dm_cm_loss_rows. */
#include <math.h>
#include <stddef.h>

#include "diffusion/consistency.h"
#include "diffusion/losses.h"

static const char *const teacher_steps[] = { "euler", "heun", NULL };

static dm_status check(int kind, const dm_cm_loss_opts *o, const dm_schedule *s, const dm_param_ops *param,
                       char *err)
{
    static const char *const names[] = { "", "ct", "ict", "cd" };
    if (param != &dm_param_consistency)
        return dm_err(err, DM_E_INPUT,
                      "diffusion.param.type: the %s loss trains a consistency function: set diffusion.param: "
                      "consistency (not '%s')", names[kind], param->info.name);
    if (s->discrete || s->t_min <= 0)
        return dm_err(err, DM_E_INPUT, "diffusion.schedule.type: consistency models need a continuous schedule "
                      "with sigma_min > 0 (edm); '%s' is not one", s->ops->info.name);
    if (kind != DM_CM_KIND_CD && o->s1 < o->s0)
        return dm_err(err, DM_E_INPUT, "diffusion.loss.s1: %lld is below s0 = %lld", (long long)o->s1,
                      (long long)o->s0);
    return DM_OK;
}

double dm_cm_loss_rows(const dm_cm_loss_opts *o, size_t n, size_t d, size_t f_cols, const float *f,
                       const float *target, const double *lambda, const double *c_out, double huber_c,
                       float *dF)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        float *g = dF + i * f_cols;
        const double dist = dm_cm_distance(o->distance, d, f + i * d, target + i * d, huber_c, g);
        const double k = lambda[i] * c_out[i] / (double)n;
        for (size_t j = 0; j < d; j++)
            g[j] = (float)(k * g[j]);
        total += lambda[i] * dist;
    }
    return total / (double)n;
}

#define O(f) offsetof(dm_cm_loss_opts, f)
#define DISTANCE(def) { "distance", DM_OPT_CHOICE, def, 0, 0, dm_cm_distance_names, 0, O(distance), \
                        "l2 or l1 (means over dimensions), or pseudo_huber (sqrt(|x-y|^2 + c^2) - c, c = 0.00054 sqrt(d))" }
#define RHO { "rho", DM_OPT_REAL, "7", 0.01, 100, NULL, 0, O(rho), "exponent of the Karras time grid" }

static const dm_param_desc ct_params[] = {
    DISTANCE("l2"),
    { "s0", DM_OPT_INT, "2", 1, 1e6, NULL, 0, O(s0), "initial discretization N(0) - 1 (CIFAR-10: 2)" },
    { "s1", DM_OPT_INT, "150", 1, 1e6, NULL, 0, O(s1), "final discretization N(K) - 1 (CIFAR-10: 150)" },
    { "mu0", DM_OPT_REAL, "0.9", 0, 0.999999, NULL, 0, O(mu0), "target EMA at the start: mu(k) = exp(s0 ln mu0 / n(k))" },
    RHO,
    DM_OPT_END,
};

static const dm_param_desc ict_params[] = {
    DISTANCE("pseudo_huber"),
    { "s0", DM_OPT_INT, "10", 1, 1e6, NULL, 0, O(s0), "initial discretization (doubles every K' steps)" },
    { "s1", DM_OPT_INT, "1280", 1, 1e6, NULL, 0, O(s1), "largest discretization" },
    { "p_mean", DM_OPT_REAL, "-1.1", -20, 20, NULL, 0, O(p_mean), "lognormal index distribution: mean of ln sigma" },
    { "p_std", DM_OPT_REAL, "2.0", 1e-3, 20, NULL, 0, O(p_std), "lognormal index distribution: std of ln sigma" },
    RHO,
    DM_OPT_END,
};

static const dm_param_desc cd_params[] = {
    DISTANCE("l2"),
    { "n", DM_OPT_INT, "18", 2, 1e6, NULL, 0, O(n), "grid points N (CIFAR-10: 18; ImageNet-64: 40)" },
    { "mu", DM_OPT_REAL, "0", 0, 0.999999, NULL, 0, O(mu0),
      "target EMA rate; 0: the stop-gradient student (CIFAR-10), 0.95 (ImageNet-64)" },
    { "teacher_step", DM_OPT_CHOICE, "heun", 0, 0, teacher_steps, 0, O(teacher_step),
      "the teacher's ODE step from t_{n+1} to t_n: euler or heun" },
    RHO,
    DM_OPT_END,
};
#undef O

static dm_status check_ct(const void *o, const dm_schedule *s, const dm_param_ops *p, char *err)
{
    return check(DM_CM_KIND_CT, o, s, p, err);
}
static dm_status check_ict(const void *o, const dm_schedule *s, const dm_param_ops *p, char *err)
{
    return check(DM_CM_KIND_ICT, o, s, p, err);
}
static dm_status check_cd(const void *o, const dm_schedule *s, const dm_param_ops *p, char *err)
{
    return check(DM_CM_KIND_CD, o, s, p, err);
}

const dm_loss_ops dm_loss_ct = {
    .info = { "ct", "consistency training (Song et al. 2023)", ct_params, sizeof(dm_cm_loss_opts) },
    .check = check_ct,
    .consistency = DM_CM_KIND_CT,
};

const dm_loss_ops dm_loss_ict = {
    .info = { "ict", "improved consistency training (Song & Dhariwal 2023)", ict_params, sizeof(dm_cm_loss_opts) },
    .check = check_ict,
    .consistency = DM_CM_KIND_ICT,
};

const dm_loss_ops dm_loss_cd = {
    .info = { "cd", "consistency distillation from a teacher (distill.teacher; Song et al. 2023)", cd_params,
              sizeof(dm_cm_loss_opts) },
    .check = check_cd,
    .consistency = DM_CM_KIND_CD,
};
