/* test_cnn.c — the cnn network (nn/cnn.h): its parameter count counted by hand, the model as the
 * spec builds it (defaults, description), gradients of the whole network against central
 * differences (every parameter group, and the input; with and without dropout), the features
 * against an independent computation from the last tensor (and the logits from the features),
 * bits equal on 1 and 2 threads for a training step, and refusals naming the key. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unet_check.h"

#include "core/rng.h"
#include "io/spec.h"
#include "nn/cnn.h"
#include "nn/model.h"
#include "nn/unet_internal.h"

static double mult_small[] = { 1, 2 }, attn_none[] = { 0 };

/* The small cnn of the checks: 1x8x8, two levels (8 and 16 channels), 3 outputs. */
enum { SC = 1, SH = 8, SW = 8, SOUT = 3 };

static dm_unet_opts small_opts(double dropout)
{
    return (dm_unet_opts){ .ch = 8, .mult = { mult_small, 2, 0 }, .blocks = 1, .attn = { attn_none, 0, 0 },
                           .dropout = dropout, .groups = 4, .temb = 16, .conditional = false };
}

static void build(dm_net *net, const dm_unet_opts *o, int c, int h, int w, int out_dim)
{
    char err[DM_ERR_SIZE];
    const dm_net_cfg cfg = { .dim = c * h * w, .c = c, .h = h, .w = w, .out_dim = out_dim, .n_classes = 0 };
    if (dm_net_init(net, &dm_net_cnn, o, &cfg, err) != DM_OK)
        fail_msg("%s", err);
}

/* Parameters of a 3x3 or 1x1 convolution, a GroupNorm, a Linear. */
static size_t conv_n(size_t ci, size_t co, size_t k) { return co * ci * k * k + co; }
static size_t gn_n(size_t c) { return 2 * c; }
static size_t lin_n(size_t in, size_t out) { return (in + 1) * out; }

/* A residual block ci -> co with time width T. */
static size_t res_n(size_t ci, size_t co, size_t T)
{
    return gn_n(ci) + conv_n(ci, co, 3) + lin_n(T, co) + gn_n(co) + conv_n(co, co, 3) +
           (ci != co ? conv_n(ci, co, 1) : 0);
}

static void test_parameter_count(void **state)
{
    (void)state;
    dm_net net;
    const dm_unet_opts o = small_opts(0);
    build(&net, &o, SC, SH, SW, SOUT);
    const size_t T = 16;
    const size_t want = 2 * lin_n(T, T)          /* time embedding */
                        + conv_n(1, 8, 3)          /* IN */
                        + res_n(8, 8, T)           /* level 0 */
                        + conv_n(8, 8, 3)          /* DOWN */
                        + res_n(8, 16, T)          /* level 1 */
                        + res_n(16, 16, T)         /* mid */
                        + gn_n(16) + lin_n(16, 3); /* the head */
    assert_int_equal(want, 11555);
    assert_int_equal(net.n_params, want);
    assert_int_equal(net.batch_cap, DM_UNET_BATCH_CAP);
    char d[256];
    dm_net_describe(&net, d, sizeof d);
    assert_string_equal(d, "cnn 1x8x8 out 3 [8,16] blocks 1 attn [] groups 4 temb 16");
    dm_net_free(&net);
}

/* `model: {type: cnn}` through the model registry: its defaults, the network of 10 logits at
 * 1x28x28, not conditional, and `conditional` is no key of it. */
static void test_model_from_spec(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    const dm_section_desc sec[] = { { "model", "the network", NULL, dm_model_registry, "mlp", "model" } };
    const dm_schema schema = { sec, 1 };
    dm_spec *spec = NULL;
    assert_int_equal(dm_spec_load_text(&schema, "model: {type: cnn}\n", "<test>", 0, NULL, &spec, err), DM_OK);
    const dm_plugin *p = dm_spec_plugin(spec, "model");
    assert_ptr_equal(p, &dm_model_cnn.info);
    assert_int_equal(dm_model_cnn.conditional(dm_spec_opts(spec, "model")), 0);
    dm_net net;
    const dm_net_cfg cfg = { .dim = 784, .c = 1, .h = 28, .w = 28, .out_dim = 10 };
    if (dm_net_init(&net, dm_model_cnn.net, dm_spec_opts(spec, "model"), &cfg, err) != DM_OK)
        fail_msg("%s", err);
    char d[256];
    dm_net_describe(&net, d, sizeof d);
    assert_string_equal(d, "cnn 1x28x28 out 10 [32,64,64] blocks 1 attn [] groups 8 temb 128");
    dm_net_free(&net);
    dm_spec_free(spec);
    spec = NULL;
    assert_int_equal(dm_spec_load_text(&schema, "model: {type: cnn, conditional: true}\n", "<test>", 0, NULL,
                                       &spec, err),
                     DM_E_INPUT);
    assert_non_null(strstr(err, "conditional"));
}

static void test_refusals(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_net net;
    dm_unet_opts o = small_opts(0);
    const dm_net_cfg points = { .dim = 4, .c = 4, .h = 1, .w = 1, .out_dim = 3 };
    assert_int_equal(dm_net_init(&net, &dm_net_cnn, &o, &points, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.type cnn needs image data"));
    const dm_net_cfg odd = { .dim = 49, .c = 1, .h = 7, .w = 7, .out_dim = 3 };
    assert_int_equal(dm_net_init(&net, &dm_net_cnn, &o, &odd, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.mult"));
    double nine[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    o.mult = (dm_reals){ nine, 9, 0 };
    const dm_net_cfg big = { .dim = 512 * 512, .c = 1, .h = 512, .w = 512, .out_dim = 3 };
    assert_int_equal(dm_net_init(&net, &dm_net_cnn, &o, &big, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.mult"));
    o = small_opts(0);
    o.groups = 3;
    const dm_net_cfg ok = { .dim = 64, .c = 1, .h = 8, .w = 8, .out_dim = 3 };
    assert_int_equal(dm_net_init(&net, &dm_net_cnn, &o, &ok, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.groups"));
}

static void fixture_init(fixture *f, double dropout, int n)
{
    const dm_unet_opts o = small_opts(dropout);
    memset(f, 0, sizeof *f);
    build(&f->net, &o, SC, SH, SW, SOUT);
    dm_rng rng;
    fixture_start(f, n, &rng);
    dm_rng_free(&rng);
    f->x = rand_floats((size_t)n * f->net.cfg.dim, 12, 0.0, 1.0);
    f->r = rand_floats((size_t)n * f->net.cfg.out_dim, 13, 0.0, 1.0);
}

/* The gradients of every parameter group (the pooling head's every parameter) against central
 * differences, every 3rd entry of x among them. */
static void check_grads(double dropout)
{
    fixture f;
    fixture_init(&f, dropout, 3);
    const dm_unet *u = f.net.impl;
    assert_int_equal(u->ops[u->n_ops - 1].kind, OP_POOL);
    check_net_grads(&f, "cnn", dropout, 3);
    fixture_free(&f);
}

static void test_gradients(void **state)
{
    (void)state;
    check_grads(0.0);
}

/* A training forward with dropout: the masks are the step seed's in every forward, so central
 * differences still check the backward exactly. */
static void test_gradients_dropout(void **state)
{
    (void)state;
    check_grads(0.3);
}

/* The features are the mean over H W of SiLU(GroupNorm(last tensor)), computed here in double from
 * the workspace's last tensor and the head's GroupNorm parameters; the outputs are
 * features W^T + b of the head's Linear. The U-Net has no features. */
static void test_features(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 0.0, 5);
    loss(&f, 0);
    const dm_unet *u = f.net.impl;
    const unet_op *op = &u->ops[u->n_ops - 1];
    const unet_ws *w = f.ws.impl;
    int dim = -1;
    const float *feat = dm_net_features(&f.net, &f.ws, &dim);
    assert_non_null(feat);
    assert_int_equal(dim, u->level_c[u->n_levels - 1]);
    assert_int_equal(dim, 16);
    const unet_tensor *t = &u->t[op->a];
    const int C = t->c, HW = t->h * t->w, G = 4, cg = C / G;
    assert_int_equal(C, dim);
    const float *gamma = f.params + op->off_gn1, *beta = gamma + C;
    const float *W = f.params + op->off_lin, *b = W + (size_t)C * SOUT;
    double worst = 0, worst_out = 0;
    for (int i = 0; i < f.n; i++) {
        const float *xi = w->val[op->a] + (size_t)i * C * HW;
        double want[16];
        for (int g = 0; g < G; g++) {
            double mean = 0, var = 0;
            for (int j = 0; j < cg * HW; j++)
                mean += xi[(size_t)g * cg * HW + j];
            mean /= cg * HW;
            for (int j = 0; j < cg * HW; j++)
                var += pow(xi[(size_t)g * cg * HW + j] - mean, 2);
            const double rstd = 1 / sqrt(var / (cg * HW) + DM_GNORM_EPS);
            for (int c = g * cg; c < (g + 1) * cg; c++) {
                double s = 0;
                for (int j = 0; j < HW; j++) {
                    const double v = gamma[c] * (xi[(size_t)c * HW + j] - mean) * rstd + beta[c];
                    s += v / (1 + exp(-v));
                }
                want[c] = s / HW;
                worst = fmax(worst, fabs(feat[(size_t)i * C + c] - want[c]) / (1e-6 + 1e-5 * fabs(want[c])));
            }
        }
        for (int o = 0; o < SOUT; o++) {
            double z = b[o];
            for (int c = 0; c < C; c++)
                z += (double)W[(size_t)o * C + c] * want[c];
            worst_out = fmax(worst_out, fabs(f.out[(size_t)i * SOUT + o] - z) / (1e-5 + 1e-5 * fabs(z)));
        }
    }
    if (!(worst <= 1.0) || !(worst_out <= 1.0))
        fail_msg("features off by %.3g, outputs by %.3g of the tolerance", worst, worst_out);
    fixture_free(&f);
    /* the U-Net: none */
    dm_net unet;
    char err[DM_ERR_SIZE];
    dm_net_ws uws;
    const dm_unet_opts uo = small_opts(0);
    const dm_net_cfg cfg = { .dim = 64, .c = 1, .h = 8, .w = 8, .out_dim = 64 };
    assert_int_equal(dm_net_init(&unet, &dm_net_unet, &uo, &cfg, err), DM_OK);
    assert_int_equal(dm_net_ws_init(&unet, &uws, 2, err), DM_OK);
    dim = -1;
    assert_null(dm_net_features(&unet, &uws, &dim));
    assert_int_equal(dim, 0);
    dm_net_ws_free(&unet, &uws);
    dm_net_free(&unet);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    check_threads_bit_identical(fixture_init);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameter_count),
        cmocka_unit_test(test_model_from_spec),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_gradients_dropout),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_threads_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
