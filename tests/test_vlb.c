/* The DDPM variational bound and the learned variance: the Gaussian terms (closed form and
 * derivatives), the posterior coefficients of a step (full and respaced grids), the mu
 * parameterization, the vlb / hybrid losses (gradients by central differences, importance
 * weights, the stop-gradient of hybrid), mse with target mu, the importance sampler of t, the
 * bound dm_vlb in its two exact cases, and ancestral sampling with a learned variance. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"
#include "data/dataset.h"
#include "diffusion/ddpm_step.h"
#include "diffusion/denoiser_gmm.h"
#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"
#include "eval/vlb.h"
#include "train/tsampler.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_LN2
#define M_LN2 0.69314718055994530942
#endif

/* ddpm_linear with T = 10: beta_t = 0.01 + 0.19 t/9 (beta_start 1e-4, beta_end 0.002, scaled by
 * 1000/T; DDPM's 0.02 would give beta_T = 2). */
enum { T10 = 10 };
static const dm_ddpm_linear_opts lin10 = { .T = T10, .beta_start = 1e-4, .beta_end = 0.002 };
static double beta_lin10(int t) { return 0.01 + (0.2 - 0.01) * t / 9.0; }
static const dm_vp_schedule_opts vp_opts = { .beta_min = 0.1, .beta_max = 20, .eps = 1e-5, .t_end = 1e-3 };

static void sched_init(dm_schedule *s, const dm_ddpm_linear_opts *o)
{
    char err[DM_ERR_SIZE];
    assert_int_equal(dm_schedule_init(s, &dm_schedule_ddpm_linear, o, err), DM_OK);
}

static const char *opt_default(const dm_param_desc *p, const char *name)
{
    for (; p->name; p++)
        if (!strcmp(p->name, name))
            return p->def;
    return "";
}

static int close_rel(double a, double b, double rel, double abs_tol)
{
    return fabs(a - b) <= rel * fabs(b) + abs_tol;
}

/* ---------------------------------------------------------------------------------------------
 * 1. Gaussian KL and NLL */

static void test_gauss_kl_nll_values(void **state)
{
    (void)state;
    /* KL(N(m1, v1) || N(m2, v2)) = 1/2 (log v2/v1 + (v1 + (m1 - m2)^2)/v2 - 1), by hand: */
    assert_true(close_rel(dm_gauss_kl(1, 0, 0, 0, NULL, NULL), 0.5, 1e-15, 0));
    assert_true(close_rel(dm_gauss_kl(0, log(4.0), 0, 0, NULL, NULL), 1.5 - log(2.0), 1e-15, 0));
    /* m1 = 2, v1 = 1, m2 = -1, v2 = 9: 1/2 (log 9 + 10/9 - 1) = log 3 + 1/18 */
    assert_true(close_rel(dm_gauss_kl(2, 0, -1, log(9.0), NULL, NULL), log(3.0) + 1.0 / 18, 1e-15, 0));
    /* KL(p || p) = 0 with zero derivatives, exactly. */
    const double pts[][2] = { { 0, 0 }, { 1.7, -3.2 }, { -0.4, 2.5 }, { 1e3, -20 } };
    for (int k = 0; k < 4; k++) {
        double dm = 1, dl = 1;
        assert_true(dm_gauss_kl(pts[k][0], pts[k][1], pts[k][0], pts[k][1], &dm, &dl) == 0.0);
        assert_true(dm == 0.0 && dl == 0.0);
    }
    /* KL >= 0 and asymmetric. */
    const double a = dm_gauss_kl(0.3, -1, -0.2, 0.5, NULL, NULL);
    const double b = dm_gauss_kl(-0.2, 0.5, 0.3, -1, NULL, NULL);
    assert_true(a > 0 && b > 0 && fabs(a - b) > 1e-3);

    /* -log N(x; m, v) = 1/2 (log 2 pi + log v + (x - m)^2 / v). */
    assert_true(close_rel(dm_gauss_nll(1, 0, 0, NULL, NULL), 0.5 * (log(2 * M_PI) + 1), 1e-15, 0));
    const double l2pi = log(2 * M_PI);
    assert_true(close_rel(dm_gauss_nll(3, 1, log(4.0), NULL, NULL), 0.5 * l2pi + log(2.0) + 0.5, 1e-15, 0));
    assert_true(close_rel(dm_gauss_nll(-2, -2, log(0.01), NULL, NULL), 0.5 * (l2pi + log(0.01)), 1e-15, 0));
}

static void test_gauss_derivatives(void **state)
{
    (void)state;
    /* d/dm2, d/dlv2 of KL and d/dm, d/dlv of NLL against central differences (h = 1e-5: the
     * truncation error h^2 f''' / 6 is ~1e-11 here, the rounding ~1e-16 / h ~ 1e-11). */
    const double pts[][4] = { { 0.3, -1, -0.2, 0.5 }, { 2, 0, -1, 2.1972 }, { -1.5, 0.7, 0.4, -0.3 },
                              { 0.1, -2.3, 0.1, -2.3 }, { 5, 1, -3, -1 } };
    const double h = 1e-5;
    for (int k = 0; k < 5; k++) {
        const double m1 = pts[k][0], l1 = pts[k][1], m2 = pts[k][2], l2 = pts[k][3];
        double dm, dl;
        dm_gauss_kl(m1, l1, m2, l2, &dm, &dl);
        const double fm = (dm_gauss_kl(m1, l1, m2 + h, l2, NULL, NULL) -
                           dm_gauss_kl(m1, l1, m2 - h, l2, NULL, NULL)) / (2 * h);
        const double fl = (dm_gauss_kl(m1, l1, m2, l2 + h, NULL, NULL) -
                           dm_gauss_kl(m1, l1, m2, l2 - h, NULL, NULL)) / (2 * h);
        if (!close_rel(dm, fm, 1e-6, 1e-8) || !close_rel(dl, fl, 1e-6, 1e-8))
            fail_msg("KL point %d: d_m2 %.12g fd %.12g, d_lv2 %.12g fd %.12g", k, dm, fm, dl, fl);
        /* NLL at x = m1 with (m2, lv2) as the model. */
        dm_gauss_nll(m1, m2, l2, &dm, &dl);
        const double gm =
            (dm_gauss_nll(m1, m2 + h, l2, NULL, NULL) - dm_gauss_nll(m1, m2 - h, l2, NULL, NULL)) / (2 * h);
        const double gl =
            (dm_gauss_nll(m1, m2, l2 + h, NULL, NULL) - dm_gauss_nll(m1, m2, l2 - h, NULL, NULL)) / (2 * h);
        if (!close_rel(dm, gm, 1e-6, 1e-8) || !close_rel(dl, gl, 1e-6, 1e-8))
            fail_msg("NLL point %d: d_m %.12g fd %.12g, d_lv %.12g fd %.12g", k, dm, gm, dl, gl);
    }
}

/* ---------------------------------------------------------------------------------------------
 * 2. The posterior coefficients of a step */

static void test_step_full_closed_form(void **state)
{
    (void)state;
    dm_schedule s;
    sched_init(&s, &lin10);
    double prod = 1.0;
    for (int t = 0; t < T10; t++) {
        prod *= 1.0 - beta_lin10(t);
        assert_true(close_rel(s.abar[t], prod, 1e-14, 0));
    }
    for (int t = 0; t < T10; t++) {
        const double ab = s.abar[t], abp = t > 0 ? s.abar[t - 1] : 1.0, beta = beta_lin10(t);
        dm_ddpm_step c;
        dm_ddpm_step_full(&s, t, &c);
        /* Ho et al. eq. 7 with beta_t from the schedule's definition (not 1 - abar_t/abar_{t-1}). */
        const double bt = (1.0 - abp) / (1.0 - ab) * beta;
        const double cx0 = sqrt(abp) * beta / (1.0 - ab), cxt = sqrt(1.0 - beta) * (1.0 - abp) / (1.0 - ab);
        if (!close_rel(c.beta, beta, 1e-12, 0) || !close_rel(c.log_beta, log(beta), 0, 1e-12) ||
            !close_rel(c.c_x0, cx0, 1e-12, 0) || !close_rel(c.c_xt, cxt, 1e-12, 1e-15) ||
            !close_rel(c.beta_tilde, bt, 1e-12, 1e-17))
            fail_msg("t %d: beta %.15g/%.15g c_x0 %.15g/%.15g c_xt %.15g/%.15g beta~ %.15g/%.15g", t, c.beta,
                     beta, c.c_x0, cx0, c.c_xt, cxt, c.beta_tilde, bt);
        if (t > 0)
            assert_true(close_rel(c.log_beta_tilde, log(bt), 0, 1e-12));
    }
    /* The step onto clean data: mu~ = x0 (c_x0 = 1, c_xt = 0), beta~ = 0, and the clipped log beta~
     * is that of the step above (t = 1). */
    dm_ddpm_step c0, c1;
    dm_ddpm_step_full(&s, 0, &c0);
    dm_ddpm_step_full(&s, 1, &c1);
    assert_true(c0.c_x0 == 1.0 && c0.c_xt == 0.0 && c0.beta_tilde == 0.0);
    assert_true(isfinite(c0.log_beta_tilde));
    assert_true(c0.log_beta_tilde == c1.log_beta_tilde);
    const double bt1 = (1 - s.abar[0]) / (1 - s.abar[1]) * beta_lin10(1);
    assert_true(close_rel(c0.log_beta_tilde, log(bt1), 0, 1e-12));
    /* dm_ddpm_logvar: beta, beta~, and the interpolation. */
    assert_true(dm_ddpm_logvar(&c1, DM_VAR_BETA, 0.3) == c1.log_beta);
    assert_true(dm_ddpm_logvar(&c1, DM_VAR_BETA_TILDE, 0.3) == c1.log_beta_tilde);
    assert_true(close_rel(dm_ddpm_logvar(&c1, DM_VAR_LEARNED, 0.3),
                          0.3 * log(c1.beta) + 0.7 * log(c1.beta_tilde), 0, 1e-13));
    assert_true(dm_ddpm_logvar(&c1, DM_VAR_LEARNED, 1.0) == c1.log_beta);
    assert_true(dm_ddpm_logvar(&c1, DM_VAR_LEARNED, 0.0) == c1.log_beta_tilde);
    assert_string_equal(dm_var_names[DM_VAR_BETA], "beta");
    assert_string_equal(dm_var_names[DM_VAR_BETA_TILDE], "beta_tilde");
    assert_string_equal(dm_var_names[DM_VAR_LEARNED], "learned");
    assert_null(dm_var_names[3]);
    dm_schedule_free(&s);
}

static void test_step_at_grids(void **state)
{
    (void)state;
    dm_schedule s;
    sched_init(&s, &lin10);
    /* On the full grid step_at is step_full, bit for bit. */
    for (int t = 0; t < T10; t++) {
        dm_ddpm_step a, b;
        dm_ddpm_step_full(&s, t, &a);
        dm_ddpm_step_at(&s, t, t - 1, t + 1 < T10 ? t + 1 : -1, &b);
        assert_memory_equal(&a, &b, sizeof a);
    }
    /* Respaced grid 9, 6, 3, 0, -1 (the sampler's grid for 4 steps): beta = 1 - abar_t / abar_t'. */
    double ts[5];
    char err[DM_ERR_SIZE];
    assert_int_equal(s.ops->grid(&s, 4, ts, err), DM_OK);
    const double want[5] = { 9, 6, 3, 0, -1 };
    assert_memory_equal(ts, want, sizeof want);
    for (int k = 0; k < 4; k++) {
        const int t = (int)ts[k], tp = (int)ts[k + 1], tu = k > 0 ? (int)ts[k - 1] : -1;
        const double ab = s.abar[t], abp = tp >= 0 ? s.abar[tp] : 1.0;
        /* beta of the respaced step: 1 - prod_{u = t'+1..t} (1 - beta_u) */
        double keep = 1.0;
        for (int u = tp + 1; u <= t; u++)
            keep *= 1.0 - beta_lin10(u);
        const double beta = 1.0 - keep;
        dm_ddpm_step c;
        dm_ddpm_step_at(&s, t, tp, tu, &c);
        assert_true(close_rel(c.beta, 1.0 - ab / abp, 1e-14, 0));
        assert_true(close_rel(c.beta, beta, 1e-12, 0));
        assert_true(close_rel(c.beta_tilde, (1 - abp) / (1 - ab) * beta, 1e-12, 1e-17));
        assert_true(close_rel(c.c_x0, sqrt(abp) * beta / (1 - ab), 1e-12, 0));
        assert_true(close_rel(c.c_xt, sqrt(1 - beta) * (1 - abp) / (1 - ab), 1e-12, 1e-15));
        if (tp >= 0) {
            assert_true(close_rel(c.log_beta_tilde, log(c.beta_tilde), 0, 1e-13));
        } else {
            /* clipped: beta~ of the respaced step above, 3 -> 0 */
            const double ab3 = s.abar[3], ab0 = s.abar[0];
            const double bt_up = (1 - ab0) / (1 - ab3) * (1 - ab3 / ab0);
            assert_true(close_rel(c.log_beta_tilde, log(bt_up), 0, 1e-12));
            /* and differs from the full grid's clip (beta~ of 1 -> 0) */
            dm_ddpm_step f;
            dm_ddpm_step_full(&s, 0, &f);
            assert_true(fabs(c.log_beta_tilde - f.log_beta_tilde) > 0.1);
        }
    }
    /* A one-step grid (T-1 -> -1, nothing above): beta~ is clipped to beta. */
    dm_ddpm_step c;
    dm_ddpm_step_at(&s, 9, -1, -1, &c);
    assert_true(close_rel(c.beta, 1 - s.abar[9], 1e-14, 0));
    assert_true(c.log_beta_tilde == c.log_beta);
    dm_schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------------
 * 3. mu parameterization */

static void test_param_mu(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    assert_null(dm_param_mu.coef);
    assert_non_null(dm_param_mu.coef_t);
    assert_int_equal(dm_param_mu.check(NULL, &s, err), DM_OK);
    const double x0[3] = { 0.7, -1.3, 2.1 }, eps[3] = { -0.4, 1.1, 0.25 };
    for (int t = 0; t < T10; t++) {
        const double ab = s.abar[t], abp = t > 0 ? s.abar[t - 1] : 1.0, beta = beta_lin10(t);
        const double a = sqrt(ab), sg = sqrt(1 - ab);
        dm_param_coef c;
        dm_param_coef_at(&dm_param_mu, NULL, &s, t, 1.0, &c);
        assert_true(c.c_in == 1.0);
        for (int j = 0; j < 3; j++) {
            const double x = a * x0[j] + sg * eps[j];
            /* mu~ (Ho et al. eq. 7) written out from beta_t and abar */
            const double F = sqrt(abp) * beta / (1 - ab) * x0[j] + sqrt(1 - beta) * (1 - abp) / (1 - ab) * x;
            const double x0h = c.x_x0 * x + c.f_x0 * F, eh = c.x_eps * x + c.f_eps * F;
            if (!close_rel(x0h, x0[j], 1e-9, 0) || !close_rel(eh, eps[j], 1e-9, 0))
                fail_msg("t %d j %d: x0_hat %.15g (x0 %.15g) eps_hat %.15g (eps %.15g)", t, j, x0h, x0[j], eh,
                         eps[j]);
        }
    }
    /* t = 0: mu~ = x0, so the network output is x0_hat itself. */
    dm_param_coef c0;
    dm_param_coef_at(&dm_param_mu, NULL, &s, 0, 1.0, &c0);
    assert_true(c0.x_x0 == 0.0 && c0.f_x0 == 1.0);
    dm_schedule_free(&s);

    dm_schedule vp;
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_opts, err), DM_OK);
    assert_int_equal(dm_param_mu.check(NULL, &vp, err), DM_E_INPUT);
    assert_non_null(strstr(err, "discrete"));
    dm_schedule_free(&vp);
}

/* ---------------------------------------------------------------------------------------------
 * 4-6. The losses */

/* A batch of GN rows at t = 0 (the decoder), 1, 5, 9 of ddpm_linear T = 10. F values are
 * multiples of 1/16 and the step h = 2^-10, so F +- h is exact in float. */
enum { GN = 4, GD = 2 };
static const double g_times[GN] = { 0, 1, 5, 9 };
typedef struct gfix {
    dm_schedule *s;
    float xt[GN * GD], x0[GN * GD], eps[GN * GD], F[GN * 2 * GD];
    double t[GN], al[GN], sg[GN], w[GN], row[GN];
    dm_param_coef c[GN];
    dm_loss_batch b;
} gfix;

static void gfix_init(gfix *g, dm_schedule *s, const dm_param_ops *p, size_t f_cols)
{
    static const float x0[GN * GD] = { 1, -0.5f, 0.25f, 0.75f, -1, 0.5f, 1.5f, -0.25f };
    static const float eps[GN * GD] = { 0.5f, -1.25f, 0.875f, 0.25f, -0.625f, 1.5f, -0.375f, 0.75f };
    memset(g, 0, sizeof *g);
    g->s = s;
    memcpy(g->x0, x0, sizeof x0);
    memcpy(g->eps, eps, sizeof eps);
    for (int i = 0; i < GN; i++) {
        const double t = g_times[i];
        g->t[i] = t;
        g->al[i] = s->ops->alpha(s, t);
        g->sg[i] = s->ops->sigma(s, t);
        g->w[i] = 0.5 + 0.75 * i;   /* 0.5, 1.25, 2, 2.75 */
        dm_param_coef_at(p, NULL, s, t, 1.0, &g->c[i]);
        for (int j = 0; j < GD; j++)
            g->xt[i * GD + j] = (float)(g->al[i] * x0[i * GD + j] + g->sg[i] * eps[i * GD + j]);
        for (size_t j = 0; j < f_cols; j++) {
            const size_t k = i * f_cols + j;
            g->F[k] = (float)((int)(k * 37 % 29) - 14) / 16.0f;   /* in [-14/16, 14/16] */
        }
    }
    g->b = (dm_loss_batch){ .n = GN, .d = GD, .x_t = g->xt, .F = g->F, .x0 = g->x0, .eps = g->eps, .t = g->t,
                            .alpha = g->al, .sigma = g->sg, .coef = g->c, .sched = s, .sigma_data = 1.0,
                            .f_cols = f_cols };
}

/* Row i of b as a batch of one, unweighted. */
static dm_loss_batch row_batch(const dm_loss_batch *b, size_t i)
{
    dm_loss_batch r = *b;
    r.n = 1;
    r.x_t += i * b->d;
    r.F += i * b->f_cols;
    r.x0 += i * b->d;
    r.eps += i * b->d;
    r.t += i;
    r.alpha += i;
    r.sigma += i;
    r.coef += i;
    r.w = NULL;
    r.row_loss = NULL;
    return r;
}

/* Central differences of L(o_val) w.r.t. the columns [col0, col1) of every row against dF.
 * Returns the largest |fd| seen (so callers can require a non-trivial gradient). */
static double fd_compare(const dm_loss_ops *L, const void *o_val, dm_loss_batch *b, float *F, const float *dF,
                         size_t col0, size_t col1, const char *what)
{
    float scratch[GN * 2 * GD];
    const float h = 1.0f / 1024.0f;
    double biggest = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        for (size_t col = col0; col < col1; col++) {
            const size_t k = i * b->f_cols + col;
            const float keep = F[k];
            F[k] = keep + h;
            const double lp = L->eval(o_val, b, scratch);
            F[k] = keep - h;
            const double lm = L->eval(o_val, b, scratch);
            F[k] = keep;
            const double fd = (lp - lm) / (2.0 * h);
            /* dF is float (relative 6e-8); the mean part is quadratic in F (exact difference), the
             * variance part has a truncation error h^2 L'''/6 ~ 1e-7 relative. */
            if (!(fabs(fd - dF[k]) <= 2e-5 * fabs(fd) + 1e-9 * (1.0 + fabs(lp))))
                fail_msg("%s: row %zu (t %g) col %zu: fd %.10g dF %.10g", what, i, b->t[i], col, fd,
                         (double)dF[k]);
            if (fabs(fd) > biggest)
                biggest = fabs(fd);
        }
    }
    return biggest;
}

static const dm_param_ops *const grad_params[] = { &dm_param_eps, &dm_param_x0, &dm_param_v, &dm_param_mu };

static void test_vlb_gradients(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    static gfix g;
    int n_cases = 0;
    for (int p = 0; p < 4; p++) {
        for (int var = 0; var < 3; var++) {
            const dm_vlb_opts o = { .variance = var, .t_sampling = 0 };
            assert_int_equal(dm_loss_vlb.check(&o, &s, grad_params[p], err), DM_OK);
            assert_int_equal(dm_loss_variance(&dm_loss_vlb, &o), var);
            const size_t fc = var == DM_VAR_LEARNED ? 2 * GD : GD;
            for (int weighted = 0; weighted < 2; weighted++) {
                char what[96];
                snprintf(what, sizeof what, "vlb %s param %s%s", dm_var_names[var], grad_params[p]->info.name,
                         weighted ? " weighted" : "");
                gfix_init(&g, &s, grad_params[p], fc);
                float dF[GN * 2 * GD];
                if (weighted) {
                    g.b.w = g.w;
                    g.b.row_loss = g.row;
                }
                const double L = dm_loss_vlb.eval(&o, &g.b, dF);
                assert_true(isfinite(L));   /* (may be negative: the decoder is a log-density) */
                const double gm = fd_compare(&dm_loss_vlb, &o, &g.b, g.F, dF, 0, GD, what);
                assert_true(gm > 1e-3);
                if (var == DM_VAR_LEARNED) {
                    const double gv = fd_compare(&dm_loss_vlb, &o, &g.b, g.F, dF, GD, 2 * GD, what);
                    assert_true(gv > 1e-3);
                }
                if (weighted) {
                    /* (the central differences overwrote row_loss: evaluate again) */
                    assert_true(dm_loss_vlb.eval(&o, &g.b, dF) == L);
                    /* loss = mean_i w_i row_i, row_loss the unweighted rows (= the loss of the row
                     * alone, bit for bit) */
                    double want = 0.0;
                    for (int i = 0; i < GN; i++) {
                        const dm_loss_batch r = row_batch(&g.b, i);
                        float d1[2 * GD];
                        const double li = dm_loss_vlb.eval(&o, &r, d1);
                        if (g.row[i] != li)
                            fail_msg("%s: row_loss[%d] %.17g, row alone %.17g", what, i, g.row[i], li);
                        want += g.w[i] * li;
                    }
                    want /= GN;
                    assert_true(close_rel(L, want, 1e-14, 0));
                }
                n_cases++;
            }
        }
    }
    assert_int_equal(n_cases, 4 * 3 * 2);
    dm_schedule_free(&s);
}

static void test_vlb_row_values(void **state)
{
    (void)state;
    dm_schedule s;
    sched_init(&s, &lin10);
    static gfix g;
    gfix_init(&g, &s, &dm_param_x0, GD);
    const double k = (double)T10 / (GD * M_LN2);   /* T L_t in bits per dimension */
    /* Fixed variance beta~ at t > 0: equal variances, KL = (mu~ - mu_hat)^2 / (2 beta~) =
     * c_x0^2 (x0 - x0_hat)^2 / (2 beta~); at t = 0 the decoder -log N(x0; x0_hat, beta~_1). */
    for (int var = 0; var < 2; var++) {
        const dm_vlb_opts o = { .variance = var };
        for (int i = 0; i < GN; i++) {
            const int t = (int)g.t[i];
            const double ab = s.abar[t], abp = t > 0 ? s.abar[t - 1] : 1.0, beta = beta_lin10(t);
            const double bt = (1 - abp) / (1 - ab) * beta, cx0 = sqrt(abp) * beta / (1 - ab);
            const double bt1 = (1 - s.abar[0]) / (1 - s.abar[1]) * beta_lin10(1);
            const double lv = var == DM_VAR_BETA ? log(beta) : (t > 0 ? log(bt) : log(bt1));
            double want = 0.0;
            for (int j = 0; j < GD; j++) {
                const double e = (double)g.x0[i * GD + j] - (double)g.F[i * GD + j];   /* x0 - x0_hat */
                if (t == 0)
                    want += 0.5 * (log(2 * M_PI) + lv + e * e / exp(lv));
                else
                    want += 0.5 * (lv - log(bt) + (bt + cx0 * cx0 * e * e) / exp(lv) - 1.0);
            }
            want *= k;
            const dm_loss_batch r = row_batch(&g.b, i);
            float d1[GD];
            const double got = dm_loss_vlb.eval(&o, &r, d1);
            if (!close_rel(got, want, 1e-10, 1e-12))
                fail_msg("variance %s t %d: %.15g, want %.15g", dm_var_names[var], t, got, want);
        }
    }
    /* Learned with F_var = 1 is variance beta, with F_var = -1 variance beta~, bit for bit. */
    static gfix gl;
    for (int var = 0; var < 2; var++) {
        gfix_init(&gl, &s, &dm_param_x0, 2 * GD);
        for (int i = 0; i < GN; i++)
            for (int j = 0; j < GD; j++) {
                gl.F[i * 2 * GD + j] = g.F[i * GD + j];
                gl.F[i * 2 * GD + GD + j] = var == DM_VAR_BETA ? 1.0f : -1.0f;
            }
        const dm_vlb_opts of = { .variance = var }, ol = { .variance = DM_VAR_LEARNED };
        float d1[GN * GD], d2[GN * 2 * GD];
        g.b.row_loss = g.row;
        double rl[GN];
        gl.b.row_loss = rl;
        dm_loss_vlb.eval(&of, &g.b, d1);
        dm_loss_vlb.eval(&ol, &gl.b, d2);
        assert_memory_equal(g.row, rl, sizeof rl);
        for (int i = 0; i < GN; i++)
            for (int j = 0; j < GD; j++)
                assert_true(d1[i * GD + j] == d2[i * 2 * GD + j]);
    }
    dm_schedule_free(&s);
}

static void test_hybrid(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    static gfix g;
    for (int p = 0; p < 4; p++) {
        const dm_param_ops *par = grad_params[p];
        const dm_hybrid_opts o0 = { .lambda = 0.0 }, o1 = { .lambda = 0.5 };
        assert_int_equal(dm_loss_hybrid.check(&o1, &s, par, err), DM_OK);
        assert_int_equal(dm_loss_variance(&dm_loss_hybrid, &o1), DM_VAR_LEARNED);
        for (int weighted = 0; weighted < 2; weighted++) {
            char what[96];
            snprintf(what, sizeof what, "hybrid param %s%s", par->info.name, weighted ? " weighted" : "");
            gfix_init(&g, &s, par, 2 * GD);
            if (weighted) {
                g.b.w = g.w;
                g.b.row_loss = g.row;
            }
            float d0[GN * 2 * GD], d1[GN * 2 * GD];
            const double L0 = dm_loss_hybrid.eval(&o0, &g.b, d0);
            const double L1 = dm_loss_hybrid.eval(&o1, &g.b, d1);
            assert_true(L1 > L0 && L0 > 0);
            /* Value and variance gradient: hybrid(lambda) = hybrid(0) + lambda vlb(learned), the vlb
             * being T L_t in bits as the loss vlb. */
            const dm_vlb_opts ov = { .variance = DM_VAR_LEARNED };
            float dv[GN * 2 * GD];
            const double Lv = dm_loss_vlb.eval(&ov, &g.b, dv);
            if (!close_rel(L1 - L0, 0.5 * Lv, 1e-12, 1e-14))
                fail_msg("%s: hybrid(0.5) - hybrid(0) = %.15g, 0.5 vlb = %.15g", what, L1 - L0, 0.5 * Lv);
            for (int i = 0; i < GN; i++)
                for (int j = 0; j < GD; j++)
                    assert_true(
                        close_rel(d1[i * 2 * GD + GD + j], 0.5f * dv[i * 2 * GD + GD + j], 1e-6, 1e-12));
            /* Stop-gradient: the mean half is L_simple's gradient whatever lambda (bit for bit), and
             * equals the central differences of the lambda = 0 loss. */
            for (int i = 0; i < GN; i++)
                for (int j = 0; j < GD; j++) {
                    assert_true(d0[i * 2 * GD + j] == d1[i * 2 * GD + j]);
                    assert_true(d0[i * 2 * GD + GD + j] == 0.0f);   /* lambda = 0: no variance signal */
                }
            fd_compare(&dm_loss_hybrid, &o0, &g.b, g.F, d1, 0, GD, what);
            /* The variance half: central differences of the full hybrid loss. */
            const double gv = fd_compare(&dm_loss_hybrid, &o1, &g.b, g.F, d1, GD, 2 * GD, what);
            assert_true(gv > 1e-3);
            /* The hybrid value does depend on the mean through L_t: its own central differences in
             * the mean half differ from dF (otherwise the stop-gradient would be untested). */
            double worst = 0.0;
            float scratch[GN * 2 * GD];
            const float h = 1.0f / 1024.0f;
            for (int i = 0; i < GN; i++)
                for (int j = 0; j < GD; j++) {
                    const int k = i * 2 * GD + j;
                    const float keep = g.F[k];
                    g.F[k] = keep + h;
                    const double lp = dm_loss_hybrid.eval(&o1, &g.b, scratch);
                    g.F[k] = keep - h;
                    const double lm = dm_loss_hybrid.eval(&o1, &g.b, scratch);
                    g.F[k] = keep;
                    const double diff = fabs((lp - lm) / (2 * h) - d1[k]);
                    if (diff > worst)
                        worst = diff;
                }
            assert_true(worst > 1e-2);
            if (weighted) {
                /* row_loss again, after the differences */
                assert_true(dm_loss_hybrid.eval(&o1, &g.b, d1) == L1);
                double want = 0.0;
                for (int i = 0; i < GN; i++) {
                    const dm_loss_batch r = row_batch(&g.b, i);
                    float dr[2 * GD];
                    const double li = dm_loss_hybrid.eval(&o1, &r, dr);
                    assert_true(g.row[i] == li);
                    want += g.w[i] * li;
                }
                assert_true(close_rel(L1, want / GN, 1e-14, 0));
            }
        }
    }
    dm_schedule_free(&s);
}

static void test_hybrid_lambda0_is_mse_eps(void **state)
{
    (void)state;
    dm_schedule s;
    sched_init(&s, &lin10);
    static gfix g;
    gfix_init(&g, &s, &dm_param_eps, 2 * GD);
    float Fm[GN * GD], dm[GN * GD], dh[GN * 2 * GD];
    for (int i = 0; i < GN; i++)
        for (int j = 0; j < GD; j++)
            Fm[i * GD + j] = g.F[i * 2 * GD + j];
    dm_loss_batch mb = g.b;
    mb.F = Fm;
    mb.f_cols = GD;
    const dm_mse_opts mo = { .target = DM_MSE_EPS, .weighting = DM_MSE_W_NONE };
    const dm_hybrid_opts ho = { .lambda = 0.0 };
    const double Lm = dm_loss_mse.eval(&mo, &mb, dm);
    const double Lh = dm_loss_hybrid.eval(&ho, &g.b, dh);
    /* hybrid's target eps* = (x_t - alpha x0)/sigma is recomputed from the float x_t, so it
     * differs from the batch's eps by the rounding of x_t over sigma (<= 1.2e-7 * 2 / 0.1 at
     * t = 0): equal to ~1e-6 relative, not bitwise. */
    if (!close_rel(Lh, Lm, 1e-5, 0))
        fail_msg("hybrid(lambda 0) %.12g, mse eps %.12g", Lh, Lm);
    for (int i = 0; i < GN; i++)
        for (int j = 0; j < GD; j++)
            if (!close_rel(dh[i * 2 * GD + j], dm[i * GD + j], 1e-5, 1e-7))
                fail_msg("row %d col %d: hybrid dF %.10g, mse dF %.10g", i, j, (double)dh[i * 2 * GD + j],
                         (double)dm[i * GD + j]);
    /* The documented defaults: hybrid lambda 0.001, t uniform; vlb learned variance, t importance. */
    assert_string_equal(opt_default(dm_loss_hybrid.info.params, "lambda"), "0.001");
    assert_string_equal(opt_default(dm_loss_hybrid.info.params, "t_sampling"), "uniform");
    assert_string_equal(opt_default(dm_loss_vlb.info.params, "variance"), "learned");
    assert_string_equal(opt_default(dm_loss_vlb.info.params, "t_sampling"), "importance");
    const dm_hybrid_opts hu = { .lambda = 0.001, .t_sampling = 0 }, hi = { .lambda = 0.001, .t_sampling = 1 };
    const dm_vlb_opts vu = { .variance = DM_VAR_BETA, .t_sampling = 0 };
    const dm_vlb_opts vi = { .variance = DM_VAR_BETA, .t_sampling = 1 };
    assert_int_equal(dm_loss_importance_t(&dm_loss_hybrid, &hu), 0);
    assert_int_equal(dm_loss_importance_t(&dm_loss_hybrid, &hi), 1);
    assert_int_equal(dm_loss_importance_t(&dm_loss_vlb, &vu), 0);
    assert_int_equal(dm_loss_importance_t(&dm_loss_vlb, &vi), 1);
    dm_schedule_free(&s);
}

static void test_mse_mu(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    static gfix g;
    const dm_mse_opts omu = { .target = DM_MSE_MU, .weighting = DM_MSE_W_NONE };
    const dm_mse_opts ox0 = { .target = DM_MSE_X0, .weighting = DM_MSE_W_NONE };
    assert_int_equal(dm_loss_mse.check(&omu, &s, &dm_param_mu, err), DM_OK);
    for (int p = 0; p < 4; p++) {
        gfix_init(&g, &s, grad_params[p], GD);
        float dF[GN * GD];
        const double L = dm_loss_mse.eval(&omu, &g.b, dF);
        assert_true(L > 0);
        char what[64];
        snprintf(what, sizeof what, "mse mu param %s", grad_params[p]->info.name);
        assert_true(fd_compare(&dm_loss_mse, &omu, &g.b, g.F, dF, 0, GD, what) > 1e-3);
        /* mu_hat - mu~ = c_x0 (x0_hat - x0): row by row the mu loss is c_x0^2 times the x0 loss. */
        for (int i = 0; i < GN; i++) {
            const dm_loss_batch r = row_batch(&g.b, i);
            float d1[GD];
            const double lmu = dm_loss_mse.eval(&omu, &r, d1), lx0 = dm_loss_mse.eval(&ox0, &r, d1);
            const int t = (int)g.t[i];
            const double abp = t > 0 ? s.abar[t - 1] : 1.0, cx0 = sqrt(abp) * beta_lin10(t) / (1 - s.abar[t]);
            if (!close_rel(lmu, cx0 * cx0 * lx0, 1e-9, 0))
                fail_msg("%s row %d: mu loss %.15g, c_x0^2 x0 loss %.15g", what, i, lmu, cx0 * cx0 * lx0);
        }
    }
    /* mu needs a discrete schedule (loss target, parameterization, vlb and hybrid alike). */
    dm_schedule vp;
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_opts, err), DM_OK);
    assert_int_equal(dm_loss_mse.check(&omu, &vp, &dm_param_eps, err), DM_E_INPUT);
    const dm_vlb_opts vo = { .variance = DM_VAR_LEARNED };
    const dm_hybrid_opts ho = { .lambda = 0.001 };
    assert_int_equal(dm_loss_vlb.check(&vo, &vp, &dm_param_eps, err), DM_E_INPUT);
    assert_int_equal(dm_loss_hybrid.check(&ho, &vp, &dm_param_eps, err), DM_E_INPUT);
    dm_schedule_free(&vp);
    dm_schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------------
 * 7. The importance sampler of t */

static double loss_hist(int t, int r) { return (t + 1) * (1.0 + 0.1 * r) * (t % 2 ? 1.0 : 0.5); }

static void test_tsampler_warmup_and_probs(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_tsampler ts;
    assert_int_equal(dm_tsampler_init(&ts, T10, err), DM_OK);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 7, err), DM_OK);
    double p[T10], tt[1000], ww[1000];
    /* Losses fed: every t gets 10, except t = 9 which gets 9; then uniform. */
    double fed[T10][20];
    int nfed[T10] = { 0 };
    for (int r = 0; r < 10; r++) {
        for (int t = 0; t < T10; t++) {
            if (t == 9 && r == 9)
                continue;
            assert_int_equal(dm_tsampler_warm(&ts), 0);
            dm_tsampler_probs(&ts, p);
            for (int u = 0; u < T10; u++)
                assert_true(p[u] == 1.0 / T10);
            dm_tsampler_draw(&ts, &rng, 100, tt, ww);
            for (int i = 0; i < 100; i++) {
                assert_true(tt[i] >= 0 && tt[i] <= 9 && tt[i] == floor(tt[i]));
                assert_true(fabs(ww[i] - 1.0) < 1e-12);
            }
            const double tv = t, lv = loss_hist(t, r);
            dm_tsampler_update(&ts, 1, &tv, &lv);
            fed[t][nfed[t]++] = lv;
        }
    }
    assert_int_equal(dm_tsampler_warm(&ts), 0);
    for (int t = 0; t < 9; t++)
        assert_int_equal(ts.count[t], 10);
    assert_int_equal(ts.count[9], 9);
    /* One batch completes t = 9 and pushes 5 more losses at t = 3 (rolling). */
    const double bt[6] = { 9, 3, 3, 3, 3, 3 }, bl[6] = { loss_hist(9, 9), 100, 101, 102, 103, 104 };
    dm_tsampler_update(&ts, 6, bt, bl);
    fed[9][nfed[9]++] = bl[0];
    for (int k = 1; k < 6; k++)
        fed[3][nfed[3]++] = bl[k];
    assert_int_equal(dm_tsampler_warm(&ts), 1);
    for (int t = 0; t < T10; t++) {
        assert_int_equal(ts.count[t], 10);
        /* the last 10, oldest first */
        for (int k = 0; k < 10; k++)
            assert_true(ts.history[t * 10 + k] == fed[t][nfed[t] - 10 + k]);
    }
    /* p_t ∝ sqrt(mean h^2) over the last 10, mixed with 0.001 uniform. */
    double q[T10], sum = 0.0;
    for (int t = 0; t < T10; t++) {
        double m2 = 0.0;
        for (int k = nfed[t] - 10; k < nfed[t]; k++)
            m2 += fed[t][k] * fed[t][k];
        q[t] = sqrt(m2 / 10.0);
        sum += q[t];
    }
    dm_tsampler_probs(&ts, p);
    double ps = 0.0;
    for (int t = 0; t < T10; t++) {
        const double want = 0.999 * q[t] / sum + 0.001 / T10;
        if (!close_rel(p[t], want, 1e-12, 0))
            fail_msg("p[%d] %.15g want %.15g", t, p[t], want);
        ps += p[t];
    }
    assert_true(fabs(ps - 1.0) < 1e-12);
    /* The t = 3 losses (100..104 among them) dominate. */
    for (int t = 0; t < T10; t++)
        if (t != 3)
            assert_true(p[3] > p[t]);
    /* Weights are 1 / (T p_t) of the drawn t. */
    dm_tsampler_draw(&ts, &rng, 1000, tt, ww);
    for (int i = 0; i < 1000; i++)
        assert_true(close_rel(ww[i], 1.0 / (T10 * p[(int)tt[i]]), 1e-12, 0));
    /* All-zero history: uniform after the mix (no division by zero). */
    dm_tsampler z;
    assert_int_equal(dm_tsampler_init(&z, 3, err), DM_OK);
    double zt[30];
    const double zl[30] = { 0 };
    for (int i = 0; i < 30; i++)
        zt[i] = i % 3;
    dm_tsampler_update(&z, 30, zt, zl);
    assert_int_equal(dm_tsampler_warm(&z), 1);
    double pz[3];
    dm_tsampler_probs(&z, pz);
    for (int t = 0; t < 3; t++)
        assert_true(close_rel(pz[t], 1.0 / 3, 1e-15, 0));
    dm_tsampler_free(&z);
    dm_rng_free(&rng);
    dm_tsampler_free(&ts);
}

static void test_tsampler_draws(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_tsampler ts;
    assert_int_equal(dm_tsampler_init(&ts, T10, err), DM_OK);
    /* History: loss t + 1 at every t, so p_t ∝ t + 1 (then mixed). */
    for (int r = 0; r < 10; r++)
        for (int t = 0; t < T10; t++) {
            const double tv = t, lv = t + 1.0;
            dm_tsampler_update(&ts, 1, &tv, &lv);
        }
    assert_int_equal(dm_tsampler_warm(&ts), 1);
    double p[T10];
    dm_tsampler_probs(&ts, p);
    for (int t = 0; t < T10; t++)
        assert_true(close_rel(p[t], 0.999 * (t + 1) / 55.0 + 0.0001, 1e-12, 0));

    /* Deterministic for a seed: two streams with the same seed give the same draws. */
    enum { ND = 200000 };
    double *t1 = malloc(sizeof(double) * ND), *w1 = malloc(sizeof(double) * ND);
    double *t2 = malloc(sizeof(double) * ND), *w2 = malloc(sizeof(double) * ND);
    dm_rng r1, r2, r3;
    assert_int_equal(dm_rng_init(&r1, 12345, err), DM_OK);
    assert_int_equal(dm_rng_init(&r2, 12345, err), DM_OK);
    assert_int_equal(dm_rng_init(&r3, 54321, err), DM_OK);
    dm_tsampler_draw(&ts, &r1, ND, t1, w1);
    dm_tsampler_draw(&ts, &r2, ND, t2, w2);
    assert_memory_equal(t1, t2, sizeof(double) * ND);
    assert_memory_equal(w1, w2, sizeof(double) * ND);
    dm_tsampler_draw(&ts, &r3, 100, t2, w2);
    assert_true(memcmp(t1, t2, sizeof(double) * 100) != 0);

    /* Frequencies match p: chi-square with 9 degrees of freedom (mean 9, sd 4.2); the 1e-4 upper
     * quantile is 33.7. A misplaced bin boundary gives thousands. */
    double cnt[T10] = { 0 };
    for (size_t i = 0; i < ND; i++)
        cnt[(int)t1[i]] += 1;
    double chi2 = 0.0;
    for (int t = 0; t < T10; t++) {
        const double e = ND * p[t];
        chi2 += (cnt[t] - e) * (cnt[t] - e) / e;
    }
    if (!(chi2 < 33.7))
        fail_msg("chi-square %.3g", chi2);

    /* Unbiased: mean_i w_i g(t_i) estimates the uniform mean of g, for a g unlike the history. The
     * per-draw variance is sum_t p_t (g_t / (T p_t))^2 - mean^2; require 5 standard errors. */
    double g[T10], mu = 0.0, m2 = 0.0, est = 0.0;
    for (int t = 0; t < T10; t++) {
        g[t] = 3.0 - 0.25 * t + (t % 3 == 0 ? 1.5 : 0.0);
        mu += g[t] / T10;
    }
    for (int t = 0; t < T10; t++)
        m2 += p[t] * (g[t] / (T10 * p[t])) * (g[t] / (T10 * p[t]));
    const double se = sqrt((m2 - mu * mu) / ND);
    for (size_t i = 0; i < ND; i++)
        est += w1[i] * g[(int)t1[i]];
    est /= ND;
    if (!(fabs(est - mu) < 5 * se))
        fail_msg("weighted mean %.6g, uniform mean %.6g, se %.3g", est, mu, se);
    /* ... and the unweighted mean is visibly biased (so the test can tell). */
    double raw = 0.0;
    for (size_t i = 0; i < ND; i++)
        raw += g[(int)t1[i]];
    raw /= ND;
    assert_true(fabs(raw - mu) > 20 * se);
    free(t1);
    free(w1);
    free(t2);
    free(w2);
    dm_rng_free(&r1);
    dm_rng_free(&r2);
    dm_rng_free(&r3);
    dm_tsampler_free(&ts);
}

/* ---------------------------------------------------------------------------------------------
 * 8. The bound dm_vlb */

/* A denoiser wrapper that adds eval_var with a constant learned fraction v. */
typedef struct var_wrap {
    const dm_denoiser *inner;
    float v;
} var_wrap;

static dm_status wrap_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                           float *eps, char *err)
{
    const var_wrap *w = ctx;
    return w->inner->eval(w->inner->ctx, n, x, t, y, x0, eps, err);
}

static dm_status wrap_eval_var(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                               float *eps, float *v, char *err)
{
    const var_wrap *w = ctx;
    dm_status st = w->inner->eval(w->inner->ctx, n, x, t, y, x0, eps, err);
    for (size_t i = 0; i < n * w->inner->dim; i++)
        v[i] = w->v;
    return st;
}

static dm_denoiser wrap_make(var_wrap *w, const dm_denoiser *inner, float v)
{
    w->inner = inner;
    w->v = v;
    return (dm_denoiser){ .ctx = w, .dim = inner->dim, .max_batch = inner->max_batch, .eval = wrap_eval,
                          .eval_var = wrap_eval_var };
}

/* n per-point streams (a fresh set per call: the bound consumes them). */
static dm_rng *streams(size_t n, uint64_t base)
{
    char err[DM_ERR_SIZE];
    dm_rng *r = NULL;
    assert_int_equal(dm_rng_streams_new(base, n, &r, err), DM_OK);
    return r;
}

static void run_vlb(const dm_denoiser *den, const dm_schedule *s, int var, const float *x0, size_t n,
                    double *bound, double *terms, double *prior)
{
    char err[DM_ERR_SIZE];
    dm_rng *r = streams(n, 99);
    const dm_status st = dm_vlb(den, s, var, x0, n, r, bound, terms, prior, err);
    if (st)
        fail_msg("dm_vlb: %s", err);
    dm_rng_streams_free(r, n);
}

static void mean_se(const double *a, size_t n, double *mean, double *se)
{
    double m = 0.0, v = 0.0;
    for (size_t i = 0; i < n; i++)
        m += a[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        v += (a[i] - m) * (a[i] - m);
    *mean = m;
    *se = sqrt(v / (double)(n - 1) / (double)n);
}

static void test_vlb_standard_normal_exact(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    double w1 = 1.0, mu0[2] = { 0, 0 }, s1 = 1.0;
    dm_gmm gm = { .k = 1, .dim = 2, .w = &w1, .mu = mu0, .s = &s1 };
    dm_gmm_denoiser gd;
    dm_denoiser den;
    dm_gmm_denoiser_init(&gd, &den, &gm, &s, 256);
    enum { NP = 2000 };
    float *x0 = malloc(sizeof(float) * NP * 2);
    double *nll = malloc(sizeof(double) * NP), *b1 = malloc(sizeof(double) * NP);
    double *b2 = malloc(sizeof(double) * NP);
    double *d1 = malloc(sizeof(double) * NP), *d2 = malloc(sizeof(double) * NP);
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 2024, err), DM_OK);
    for (size_t i = 0; i < NP; i++) {
        nll[i] = 0.0;
        for (int j = 0; j < 2; j++) {
            x0[i * 2 + j] = (float)dm_rng_normal(&rng);
            nll[i] += 0.5 * (log(2 * M_PI) + (double)x0[i * 2 + j] * x0[i * 2 + j]);
        }
    }
    /* Data N(0, I): the model's kernel N(mu~(alpha x_t, x_t), beta) = N(sqrt(1 - beta) x_t, beta)
     * is the true reverse kernel q(x_{t-1} | x_t), and p(x_T) = N(0, I) = q(x_T). The model's
     * joint is then q's joint, its posterior over x_{1:T} given x0 is q's, and the gap
     * KL(q(x_{1:T} | x0) || p(x_{1:T} | x0)) is 0: the bound's expectation is -log N(x0; 0, I)
     * for every x0. What remains is the Monte Carlo noise of one x_t per term, so the tolerance is
     * 4 measured standard errors of the per-point difference. */
    double terms[T10], prior;
    run_vlb(&den, &s, DM_VAR_BETA, x0, NP, b1, terms, &prior);
    double tsum = prior;
    for (int t = 0; t < T10; t++)
        tsum += terms[t];
    for (size_t i = 0; i < NP; i++)
        d1[i] = b1[i] - nll[i];
    double m1, se1, mb;
    mean_se(d1, NP, &m1, &se1);
    mean_se(b1, NP, &mb, &(double){ 0 });
    assert_true(close_rel(tsum, mb, 1e-12, 0));   /* terms and prior add up to the mean bound */
    if (!(fabs(m1) < 4 * se1 && se1 < 0.05))
        fail_msg("beta: mean bound - nll %.5g, se %.3g", m1, se1);
    /* beta~ is not exact here: the bound is larger by the KLs of the wrong variances (paired: same
     * streams, same x_t). */
    run_vlb(&den, &s, DM_VAR_BETA_TILDE, x0, NP, b2, NULL, NULL);
    for (size_t i = 0; i < NP; i++)
        d2[i] = b2[i] - b1[i];
    double m2, se2;
    mean_se(d2, NP, &m2, &se2);
    if (!(m2 > 4 * se2 + 4 * se1 && m2 > 0.05))
        fail_msg("beta_tilde - beta: %.5g (se %.3g)", m2, se2);
    free(x0);
    free(nll);
    free(b1);
    free(b2);
    free(d1);
    free(d2);
    dm_rng_free(&rng);
    dm_schedule_free(&s);
}

/* A denoiser for data a single point c: x0_hat = c, eps_hat = (x - alpha c)/sigma. */
typedef struct dirac {
    const dm_schedule *s;
    float c[2];
} dirac;

static dm_status dirac_eval(void *ctx, size_t n, const float *x, const double *t, const int32_t *y, float *x0,
                            float *eps, char *err)
{
    (void)err;
    (void)y;
    const dirac *dc = ctx;
    for (size_t i = 0; i < n; i++) {
        const double a = dc->s->ops->alpha(dc->s, t[i]), sg = dc->s->ops->sigma(dc->s, t[i]);
        for (int j = 0; j < 2; j++) {
            if (x0)
                x0[i * 2 + j] = dc->c[j];
            if (eps)
                eps[i * 2 + j] = (float)((x[i * 2 + j] - a * dc->c[j]) / sg);
        }
    }
    return DM_OK;
}

static void test_vlb_dirac_exact(void **state)
{
    (void)state;
    dm_schedule s;
    sched_init(&s, &lin10);
    dirac dc = { .s = &s, .c = { 0.75f, -1.25f } };
    dm_denoiser den = { .ctx = &dc, .dim = 2, .max_batch = 5, .eval = dirac_eval };
    enum { NP = 16 };
    float x0[NP * 2];
    for (int i = 0; i < NP; i++) {
        x0[2 * i] = dc.c[0];
        x0[2 * i + 1] = dc.c[1];
    }
    double bound[NP], terms[T10], prior;
    run_vlb(&den, &s, DM_VAR_BETA_TILDE, x0, NP, bound, terms, &prior);
    /* With x0_hat = x0 and variance beta~ the model's kernel is the posterior: every KL is 0. */
    for (int t = 1; t < T10; t++)
        if (!(fabs(terms[t]) < 1e-9))
            fail_msg("KL term t %d = %.3g", t, terms[t]);
    /* Decoder: -log N(x0; x0, beta~_1) per coordinate (beta~ clipped at t = 0 to beta~ of t = 1). */
    const double bt1 = (1 - s.abar[0]) / (1 - s.abar[1]) * beta_lin10(1);
    const double dec = 2 * 0.5 * (log(2 * M_PI) + log(bt1));
    assert_true(close_rel(terms[0], dec, 0, 1e-9));
    /* Prior: KL(N(sqrt(abar_T) c, 1 - abar_T) || N(0, 1)) per coordinate. */
    double abT = 1.0;
    for (int t = 0; t < T10; t++)
        abT *= 1 - beta_lin10(t);
    double pr = 0.0;
    for (int j = 0; j < 2; j++)
        pr += 0.5 * (-log(1 - abT) + (1 - abT) + abT * (double)dc.c[j] * dc.c[j] - 1.0);
    assert_true(close_rel(prior, pr, 0, 1e-9));
    for (int i = 0; i < NP; i++)
        assert_true(close_rel(bound[i], pr + dec, 0, 1e-9));
    /* With variance beta the means still agree, so each KL is that of the variances alone,
     * d/2 (log(beta/beta~) + beta~/beta - 1) > 0, and the decoder is d/2 (log 2 pi + log beta_1). */
    run_vlb(&den, &s, DM_VAR_BETA, x0, NP, bound, terms, &prior);
    for (int t = 1; t < T10; t++) {
        const double beta = beta_lin10(t), bt = (1 - s.abar[t - 1]) / (1 - s.abar[t]) * beta;
        const double want = 2 * 0.5 * (log(beta / bt) + bt / beta - 1.0);
        assert_true(want > 1e-3);
        if (!close_rel(terms[t], want, 1e-9, 0))
            fail_msg("beta: KL term t %d = %.15g, want %.15g", t, terms[t], want);
    }
    assert_true(close_rel(terms[0], 2 * 0.5 * (log(2 * M_PI) + log(beta_lin10(0))), 0, 1e-9));
    dm_schedule_free(&s);
}

/* Two components in 2-D, for tests that need a non-trivial denoiser. */
static double mix_w[2] = { 0.3, 0.7 }, mix_mu[4] = { -1.0, 0.5, 1.5, -0.25 }, mix_s[2] = { 0.4, 0.8 };
static const dm_gmm mix2 = { .k = 2, .dim = 2, .w = mix_w, .mu = mix_mu, .s = mix_s };

static void test_vlb_batching_and_learned(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_schedule s;
    sched_init(&s, &lin10);
    enum { NP = 50 };
    float x0[NP * 2];
    for (int i = 0; i < NP * 2; i++)
        x0[i] = (float)((i * 29 % 41) - 20) / 10.0f;
    dm_gmm_denoiser g7, g1000;
    dm_denoiser d7, d1000;
    dm_gmm_denoiser_init(&g7, &d7, &mix2, &s, 7);
    dm_gmm_denoiser_init(&g1000, &d1000, &mix2, &s, 1000);
    double b7[NP], b1000[NP], t7[T10], t1000[T10], p7, p1000;
    for (int var = 0; var < 2; var++) {
        run_vlb(&d7, &s, var, x0, NP, b7, t7, &p7);
        run_vlb(&d1000, &s, var, x0, NP, b1000, t1000, &p1000);
        assert_memory_equal(b7, b1000, sizeof b7);
        assert_memory_equal(t7, t1000, sizeof t7);
        assert_true(p7 == p1000);
        /* each point uses its own stream: the first 10 points alone give the same bounds */
        double b10[10];
        run_vlb(&d7, &s, var, x0, 10, b10, NULL, NULL);
        assert_memory_equal(b10, b7, sizeof b10);
    }
    /* Learned variance through eval_var: v = 1 is the beta bound, v = 0 the beta~ bound, bit for
     * bit (log Sigma = 1 log beta + 0 log beta~ exactly). */
    double bl[NP], tl[T10], pl;
    for (int var = 0; var < 2; var++) {
        var_wrap w;
        const dm_denoiser dv = wrap_make(&w, &d7, var == DM_VAR_BETA ? 1.0f : 0.0f);
        run_vlb(&d1000, &s, var, x0, NP, b1000, t1000, &p1000);
        run_vlb(&dv, &s, DM_VAR_LEARNED, x0, NP, bl, tl, &pl);
        assert_memory_equal(bl, b1000, sizeof bl);
        assert_memory_equal(tl, t1000, sizeof tl);
    }
    /* v = 0.5 is neither. */
    var_wrap wh;
    const dm_denoiser dh = wrap_make(&wh, &d7, 0.5f);
    run_vlb(&dh, &s, DM_VAR_LEARNED, x0, NP, bl, tl, &pl);
    run_vlb(&d7, &s, DM_VAR_BETA, x0, NP, b7, t7, &p7);
    run_vlb(&d7, &s, DM_VAR_BETA_TILDE, x0, NP, b1000, t1000, &p1000);
    assert_true(fabs(tl[3] - t7[3]) > 1e-6 && fabs(tl[3] - t1000[3]) > 1e-6);
    /* No eval_var: learned is an input error; so is a continuous schedule. */
    dm_rng *r = streams(NP, 1);
    assert_int_equal(dm_vlb(&d7, &s, DM_VAR_LEARNED, x0, NP, r, bl, NULL, NULL, err), DM_E_INPUT);
    dm_schedule vp;
    assert_int_equal(dm_schedule_init(&vp, &dm_schedule_vp, &vp_opts, err), DM_OK);
    assert_int_equal(dm_vlb(&d7, &vp, DM_VAR_BETA, x0, NP, r, bl, NULL, NULL, err), DM_E_INPUT);
    dm_schedule_free(&vp);
    dm_rng_streams_free(r, NP);
    dm_schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------------
 * 9. Ancestral sampling with a learned variance */

static float *sample_ddpm(const dm_denoiser *den, const dm_schedule *s, int var, int64_t steps, size_t n,
                          dm_status *st_out)
{
    char err[DM_ERR_SIZE];
    dm_rng *r = streams(n, 42);
    float *x = malloc(sizeof(float) * n * den->dim);
    const dm_ddpm_sampler_opts o = { .steps = steps, .variance = var };
    assert_int_equal(dm_sampler_ddpm.check(&o, s, err), DM_OK);
    *st_out = dm_sampler_ddpm.sample(&o, den, s, n, r, x, err);
    dm_rng_streams_free(r, n);
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m)
            m = fabs((double)a[i] - b[i]);
    return m;
}

static void test_sampler_learned_variance(void **state)
{
    (void)state;
    const dm_ddpm_linear_opts lin50 = { .T = 50, .beta_start = 1e-4, .beta_end = 0.02 };
    const dm_ddpm_linear_opts *cfg[2] = { &lin10, &lin50 };
    enum { NS = 400 };
    for (int sc = 0; sc < 2; sc++) {
        dm_schedule s;
        sched_init(&s, cfg[sc]);
        dm_gmm_denoiser gd;
        dm_denoiser den;
        dm_gmm_denoiser_init(&gd, &den, &mix2, &s, 64);
        const int64_t steps_list[2] = { 0, 4 };   /* full grid; respaced (T 10: 9, 6, 3, 0) */
        for (int si = 0; si < 2; si++) {
            const int64_t steps = steps_list[si];
            dm_status st;
            float *xb = sample_ddpm(&den, &s, DM_VAR_BETA, steps, NS, &st);
            assert_int_equal(st, DM_OK);
            float *xt = sample_ddpm(&den, &s, DM_VAR_BETA_TILDE, steps, NS, &st);
            assert_int_equal(st, DM_OK);
            /* the two fixed variances give visibly different samples (the comparison can fail) */
            assert_true(max_abs_diff(xb, xt, NS * 2) > 1e-2);
            for (int var = 0; var < 2; var++) {
                var_wrap w;
                const dm_denoiser dv = wrap_make(&w, &den, var == DM_VAR_BETA ? 1.0f : 0.0f);
                float *xl = sample_ddpm(&dv, &s, DM_VAR_LEARNED, steps, NS, &st);
                assert_int_equal(st, DM_OK);
                const double diff = max_abs_diff(xl, var == DM_VAR_BETA ? xb : xt, NS * 2);
                if (!(diff < 1e-5))
                    fail_msg("T %d steps %lld: learned v = %d vs %s: max diff %.3g", s.T, (long long)steps,
                             var == DM_VAR_BETA, dm_var_names[var], diff);
                free(xl);
            }
            free(xb);
            free(xt);
        }
        /* variance learned on a denoiser without eval_var */
        dm_status st;
        float *x = sample_ddpm(&den, &s, DM_VAR_LEARNED, 0, 8, &st);
        assert_int_equal(st, DM_E_INPUT);
        free(x);
        dm_schedule_free(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gauss_kl_nll_values),
        cmocka_unit_test(test_gauss_derivatives),
        cmocka_unit_test(test_step_full_closed_form),
        cmocka_unit_test(test_step_at_grids),
        cmocka_unit_test(test_param_mu),
        cmocka_unit_test(test_vlb_gradients),
        cmocka_unit_test(test_vlb_row_values),
        cmocka_unit_test(test_hybrid),
        cmocka_unit_test(test_hybrid_lambda0_is_mse_eps),
        cmocka_unit_test(test_mse_mu),
        cmocka_unit_test(test_tsampler_warmup_and_probs),
        cmocka_unit_test(test_tsampler_draws),
        cmocka_unit_test(test_vlb_standard_normal_exact),
        cmocka_unit_test(test_vlb_dirac_exact),
        cmocka_unit_test(test_vlb_batching_and_learned),
        cmocka_unit_test(test_sampler_learned_variance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
