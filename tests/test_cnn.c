/* test_cnn.c — the cnn network (nn/cnn.h): its parameter count counted by hand, the model as the
 * spec builds it (defaults, description), gradients of the whole network against central
 * differences (every parameter group, and the input; with and without dropout), the features
 * against an independent computation from the last tensor (and the logits from the features),
 * bits equal on 1 and 2 threads for a training step, and refusals naming the key. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn_check.h"

#include "core/rng.h"
#include "io/spec.h"
#include "nn/cnn.h"
#include "nn/linear.h"
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

typedef struct fixture {
    dm_net net;
    dm_net_ws ws;
    float *params, *grads, *x, *tin, *out, *r, *dx;
    int n;
} fixture;

static void fixture_init(fixture *f, double dropout, int n)
{
    char err[DM_ERR_SIZE];
    const dm_unet_opts o = small_opts(dropout);
    memset(f, 0, sizeof *f);
    f->n = n;
    build(&f->net, &o, SC, SH, SW, SOUT);
    assert_int_equal(dm_net_ws_init(&f->net, &f->ws, n, err), DM_OK);
    const size_t np = f->net.n_params, d = (size_t)f->net.cfg.dim, od = (size_t)f->net.cfg.out_dim;
    f->params = xmalloc(np * sizeof(float));
    f->grads = xmalloc(np * sizeof(float));
    f->dx = xmalloc((size_t)n * d * sizeof(float));
    f->out = xmalloc((size_t)n * od * sizeof(float));
    f->x = rand_floats((size_t)n * d, 12, 0.0, 1.0);
    f->r = rand_floats((size_t)n * od, 13, 0.0, 1.0);
    f->tin = xmalloc((size_t)n * sizeof(float));
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    dm_net_init_params(&f->net, f->params, &rng);
    /* GroupNorm's gamma = 1, beta = 0 and zero biases would leave some gradients trivially zero:
     * move every parameter a little so each layer's gradient is generic */
    for (size_t i = 0; i < np; i++)
        f->params[i] += (float)(0.05 * dm_rng_normal(&rng));
    dm_rng_free(&rng);
    for (int i = 0; i < n; i++)
        f->tin[i] = (float)(37 * i % 1000);
    f->ws.noise_seed = 99;
}

static void fixture_free(fixture *f)
{
    dm_net_ws_free(&f->net, &f->ws);
    dm_net_free(&f->net);
    free(f->params);
    free(f->grads);
    free(f->x);
    free(f->dx);
    free(f->out);
    free(f->r);
    free(f->tin);
}

/* L = sum r . out (double), a training forward when train. */
static double loss(fixture *f, int train)
{
    f->ws.train = train;
    dm_net_forward(&f->net, f->params, &f->ws, f->n, f->x, f->tin, NULL, f->out);
    f->ws.train = 0;
    return dot_fd(f->out, f->r, (size_t)f->n * (size_t)f->net.cfg.out_dim);
}

/* Central differences at step h in float of v[i] against g[i] (test_unet's tolerance). */
static void check_entry(fixture *f, const char *what, float *v, size_t i, float g, int train, double *worst)
{
    const float keep = v[i];
    const float h = 2e-2f;
    v[i] = keep + h;
    const double lp = loss(f, train);
    v[i] = keep - h;
    const double lm = loss(f, train);
    v[i] = keep;
    const double fd = (lp - lm) / (2.0 * (double)h);
    /* float rounding of L over 2h, and the O(h^2) truncation of smooth layers */
    const double tol = 2e-3 + 2e-2 * fabs(fd);
    const double ratio = fabs(g - fd) / tol;
    if (ratio > *worst)
        *worst = ratio;
    if (!(ratio <= 1.0))
        fail_msg("%s[%zu]: backward %.6g, central differences %.6g", what, i, (double)g, fd);
}

static void check_grads(double dropout)
{
    fixture f;
    fixture_init(&f, dropout, 3);
    const int train = dropout > 0;
    loss(&f, train);
    dm_net_backward(&f.net, f.params, &f.ws, f.n, f.r, f.grads, f.dx);
    const dm_unet *u = f.net.impl;
    assert_int_equal(u->ops[u->n_ops - 1].kind, OP_POOL);
    double worst = 0;
    for (size_t i = 0; i < u->emb.n_params; i += 37)
        check_entry(&f, "embedding", f.params, i, f.grads[i], train, &worst);
    for (int k = 0; k < u->n_ops; k++) {
        const unet_op *op = &u->ops[k];
        const size_t lin = op->kind == OP_POOL ? dm_linear_n_params(op->cin, op->lin_out) : 0;
        size_t offs[] = { op->off_gn1, op->off_conv1, op->off_tp, op->off_gn2, op->off_conv2, op->off_skip,
                          op->off_at, op->off_lin };
        size_t lens[] = { op->gn1.n_params, op->conv1.n_params, op->tp.n_params, op->gn2.n_params,
                          op->conv2.n_params, op->skip.n_params, op->at.n_params, lin };
        for (int j = 0; j < 8; j++) {
            /* the head's every parameter; a spread of the others, and each layer's last bias */
            const size_t step = op->kind == OP_POOL ? 1 : lens[j] / 7 + 1;
            for (size_t q = 0; q < lens[j]; q += step)
                check_entry(&f, "operation parameter", f.params, offs[j] + q, f.grads[offs[j] + q], train, &worst);
            if (lens[j])
                check_entry(&f, "operation parameter", f.params, offs[j] + lens[j] - 1,
                            f.grads[offs[j] + lens[j] - 1], train, &worst);
        }
    }
    for (size_t i = 0; i < (size_t)f.n * (size_t)f.net.cfg.dim; i += 3)
        check_entry(&f, "x", f.x, i, f.dx[i], train, &worst);
    if (getenv("NN_CHECK_VERBOSE"))
        printf("cnn dropout %g: worst |g - fd| / tol = %.3f\n", dropout, worst);
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

static void step_bits(int threads, float *out, float *grads, float *dx, float *feat)
{
    fixture f;
    omp_set_num_threads(threads); /* a run on that many threads, from its start */
    fixture_init(&f, 0.2, 13);
    loss(&f, 1);
    int dim;
    memcpy(feat, dm_net_features(&f.net, &f.ws, &dim), sizeof(float) * 13 * 16);
    dm_net_backward(&f.net, f.params, &f.ws, f.n, f.r, f.grads, f.dx);
    memcpy(out, f.out, sizeof(float) * 13 * SOUT);
    memcpy(grads, f.grads, sizeof(float) * f.net.n_params);
    memcpy(dx, f.dx, sizeof(float) * 13 * (size_t)f.net.cfg.dim);
    fixture_free(&f);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    const size_t no = 13 * SOUT, np = 11555, nx = 13 * SC * SH * SW, nf = 13 * 16;
    float *o1 = xmalloc(no * 4), *o2 = xmalloc(no * 4), *g1 = xmalloc(np * 4), *g2 = xmalloc(np * 4);
    float *x1 = xmalloc(nx * 4), *x2 = xmalloc(nx * 4), *f1 = xmalloc(nf * 4), *f2 = xmalloc(nf * 4);
    step_bits(1, o1, g1, x1, f1);
    step_bits(2, o2, g2, x2, f2);
    omp_set_num_threads(omp_get_num_procs());
    assert_memory_equal(o1, o2, no * 4);
    assert_memory_equal(f1, f2, nf * 4);
    assert_memory_equal(g1, g2, np * 4);
    assert_memory_equal(x1, x2, nx * 4);
    free(o1);
    free(o2);
    free(g1);
    free(g2);
    free(x1);
    free(x2);
    free(f1);
    free(f2);
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
