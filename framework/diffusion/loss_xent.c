/* The classifier loss (losses.h, xent). */
#include <math.h>
#include <stddef.h>

#include "diffusion/classifier_net.h"
#include "diffusion/losses.h"

double dm_xent_rows(size_t n, size_t C, const float *F, const int32_t *y, float *dF)
{
    double total = 0.0, lsm[256];
    for (size_t i = 0; i < n; i++) {
        dm_log_softmax(C, F + i * C, lsm);
        total -= lsm[y[i]];
        for (size_t k = 0; k < C; k++)
            dF[i * C + k] = (float)((exp(lsm[k]) - ((size_t)y[i] == k ? 1.0 : 0.0)) / (double)n);
    }
    return total / (double)n;
}

static dm_status check(const void *opts, const dm_schedule *s, const dm_param_ops *param, char *err)
{
    (void)opts, (void)s, (void)param, (void)err;
    return DM_OK;
}

static double eval(const void *opts, const dm_loss_batch *b, float *dF)
{
    (void)opts;
    return dm_xent_rows(b->n, b->n_classes, b->F, b->y, dF);
}

static int clean(const void *opts)
{
    return ((const dm_xent_opts *)opts)->clean;
}

static const dm_param_desc xent_params[] = {
    { "clean", DM_OPT_BOOL, "false", 0, 0, NULL, 0, offsetof(dm_xent_opts, clean),
      "train on the clean data (x0 itself, c_noise 0): a classifier of images such as the feature network of "
      "eval.features, not one of x_t for guidance" },
    DM_OPT_END,
};

const dm_loss_ops dm_loss_xent = {
    .info = { "xent", "cross-entropy of a classifier: p(y | x_t) for classifier guidance, or p(y | x0) (clean: true)",
              xent_params, sizeof(dm_xent_opts) },
    .check = check,
    .eval = eval,
    .clean = clean,
    .classifier = 1,
};
