/* test_unet.c — the U-Net network (nn/unet.h): the peer's parameter count, gradients of the whole
 * network against central differences (parameters of every layer kind, and the input), bits equal
 * on 1 and 2 threads for a training step, a forward in batches equal to one batch, and refusals. */
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

#include "core/rng.h"
#include "nn/unet.h"
#include "nn/unet_internal.h"

static double mult_peer[] = { 1, 2 }, mult_small[] = { 1, 2 }, attn_small[] = { 4 };

static dm_unet_opts peer_opts(void)
{
    return (dm_unet_opts){ .ch = 32, .mult = { mult_peer, 2, 0 }, .blocks = 1, .attn = { NULL, 0, 0 },
                           .dropout = 0, .groups = 8, .temb = 128, .conditional = false };
}

/* A small U-Net with every layer kind: two levels, attention at 4x4 (the lower level and the
 * middle), a class embedding, dropout. */
static dm_unet_opts small_opts(double dropout)
{
    return (dm_unet_opts){ .ch = 8, .mult = { mult_small, 2, 0 }, .blocks = 1, .attn = { attn_small, 1, 0 },
                           .dropout = dropout, .groups = 4, .temb = 16, .conditional = true };
}

static void build(dm_net *net, const dm_unet_opts *o, int c, int h, int w, int out_c, int n_classes)
{
    char err[DM_ERR_SIZE];
    const dm_net_cfg cfg = { .dim = c * h * w, .c = c, .h = h, .w = w, .out_dim = out_c * h * w,
                             .n_classes = n_classes };
    if (dm_net_init(net, &dm_net_unet, o, &cfg, err) != DM_OK)
        fail_msg("%s", err);
}

static void test_peer_parameter_count(void **state)
{
    (void)state;
    dm_net net;
    const dm_unet_opts o = peer_opts();
    build(&net, &o, 1, 28, 28, 1, 0);
    assert_int_equal(net.n_params, 423009);
    char d[256];
    dm_net_describe(&net, d, sizeof d);
    assert_non_null(strstr(d, "channels [32,64]"));
    dm_net_free(&net);
    /* learned variance: two output channels, 289 more parameters (32 * 9 + 1) */
    build(&net, &o, 1, 28, 28, 2, 0);
    assert_int_equal(net.n_params, 423009 + 289);
    dm_net_free(&net);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    dm_net net;
    dm_unet_opts o = peer_opts();
    const dm_net_cfg odd = { .dim = 27 * 27, .c = 1, .h = 27, .w = 27, .out_dim = 27 * 27 };
    assert_int_equal(dm_net_init(&net, &dm_net_unet, &o, &odd, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.mult"));
    const dm_net_cfg logits = { .dim = 784, .c = 1, .h = 28, .w = 28, .out_dim = 10 };
    assert_int_equal(dm_net_init(&net, &dm_net_unet, &o, &logits, err), DM_E_INPUT);
    assert_non_null(strstr(err, "classifier"));
    const dm_net_cfg ok = { .dim = 784, .c = 1, .h = 28, .w = 28, .out_dim = 784 };
    o.groups = 5;
    assert_int_equal(dm_net_init(&net, &dm_net_unet, &o, &ok, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.groups"));
    o = peer_opts();
    double bad_attn[] = { 7 };
    o.attn = (dm_reals){ bad_attn, 1, 0 };
    assert_int_equal(dm_net_init(&net, &dm_net_unet, &o, &ok, err), DM_E_INPUT);
    assert_non_null(strstr(err, "model.attn"));
}

typedef struct fixture {
    dm_net net;
    dm_net_ws ws;
    float *params, *grads, *x, *tin, *out, *r, *dx;
    int32_t *y;
    int n;
} fixture;

static void fixture_init(fixture *f, double dropout, int n)
{
    char err[DM_ERR_SIZE];
    const dm_unet_opts o = small_opts(dropout);
    memset(f, 0, sizeof *f);
    f->n = n;
    build(&f->net, &o, 2, 8, 8, 2, 3);
    assert_int_equal(dm_net_ws_init(&f->net, &f->ws, n, err), DM_OK);
    const size_t np = f->net.n_params, d = (size_t)f->net.cfg.dim, od = (size_t)f->net.cfg.out_dim;
    f->params = malloc(np * sizeof(float));
    f->grads = malloc(np * sizeof(float));
    f->x = malloc((size_t)n * d * sizeof(float));
    f->dx = malloc((size_t)n * d * sizeof(float));
    f->out = malloc((size_t)n * od * sizeof(float));
    f->r = malloc((size_t)n * od * sizeof(float));
    f->tin = malloc((size_t)n * sizeof(float));
    f->y = malloc((size_t)n * sizeof(int32_t));
    dm_rng rng;
    assert_int_equal(dm_rng_init(&rng, 11, err), DM_OK);
    dm_net_init_params(&f->net, f->params, &rng);
    /* GroupNorm's gamma = 1, beta = 0 and zero biases would leave some gradients trivially zero:
     * move every parameter a little so each layer's gradient is generic */
    for (size_t i = 0; i < np; i++)
        f->params[i] += (float)(0.05 * dm_rng_normal(&rng));
    for (size_t i = 0; i < (size_t)n * d; i++)
        f->x[i] = (float)dm_rng_normal(&rng);
    for (size_t i = 0; i < (size_t)n * od; i++)
        f->r[i] = (float)dm_rng_normal(&rng);
    for (int i = 0; i < n; i++) {
        f->tin[i] = (float)(37 * i % 1000);
        f->y[i] = i % 4 == 3 ? -1 : i % 3;
    }
    dm_rng_free(&rng);
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
    free(f->y);
}

/* L = sum r . out (double), a training forward when train. */
static double loss(fixture *f, int train)
{
    f->ws.train = train;
    dm_net_forward(&f->net, f->params, &f->ws, f->n, f->x, f->tin, f->y, f->out);
    f->ws.train = 0;
    double L = 0;
    for (size_t i = 0; i < (size_t)f->n * (size_t)f->net.cfg.out_dim; i++)
        L += (double)f->r[i] * f->out[i];
    return L;
}

/* Central differences at step h in float of v[i] against g[i]. */
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
    /* float rounding of L (~1e-5 here) over 2h, and the O(h^2) truncation of smooth layers */
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
    f.ws.train = 0;
    dm_net_backward(&f.net, f.params, &f.ws, f.n, f.r, f.grads, f.dx);
    const dm_unet *u = f.net.impl;
    double worst = 0;
    /* Every parameter of the embedding's first rows, and a spread of each operation's block. */
    for (size_t i = 0; i < u->emb.n_params; i += 37)
        check_entry(&f, "embedding", f.params, i, f.grads[i], train, &worst);
    for (int k = 0; k < u->n_ops; k++) {
        const unet_op *op = &u->ops[k];
        size_t offs[] = { op->off_gn1, op->off_conv1, op->off_tp, op->off_gn2, op->off_conv2, op->off_skip,
                          op->off_at };
        size_t lens[] = { op->gn1.n_params, op->conv1.n_params, op->tp.n_params, op->gn2.n_params,
                          op->conv2.n_params, op->skip.n_params, op->at.n_params };
        for (int j = 0; j < 7; j++)
            for (size_t q = 0; q < lens[j]; q += lens[j] / 7 + 1)
                check_entry(&f, "operation parameter", f.params, offs[j] + q, f.grads[offs[j] + q], train, &worst);
        /* the last bias of each layer too */
        for (int j = 0; j < 7; j++)
            if (lens[j])
                check_entry(&f, "operation parameter", f.params, offs[j] + lens[j] - 1,
                            f.grads[offs[j] + lens[j] - 1], train, &worst);
    }
    for (size_t i = 0; i < (size_t)f.n * (size_t)f.net.cfg.dim; i += 5)
        check_entry(&f, "x", f.x, i, f.dx[i], train, &worst);
    if (getenv("NN_CHECK_VERBOSE"))
        printf("unet dropout %g: worst |g - fd| / tol = %.3f\n", dropout, worst);
    fixture_free(&f);
}

static void test_gradients(void **state)
{
    (void)state;
    check_grads(0.0);
}

/* With dropout in a training forward: the masks are those of the step seed, the same in every
 * forward of that seed, so differences still check the backward exactly. */
static void test_gradients_dropout(void **state)
{
    (void)state;
    check_grads(0.3);
}

static void step_bits(int threads, float *out, float *grads, float *dx)
{
    fixture f;
    omp_set_num_threads(threads); /* a run on that many threads, from its start */
    fixture_init(&f, 0.2, 13);
    loss(&f, 1);
    dm_net_backward(&f.net, f.params, &f.ws, f.n, f.r, f.grads, f.dx);
    memcpy(out, f.out, sizeof(float) * 13 * (size_t)f.net.cfg.out_dim);
    memcpy(grads, f.grads, sizeof(float) * f.net.n_params);
    memcpy(dx, f.dx, sizeof(float) * 13 * (size_t)f.net.cfg.dim);
    fixture_free(&f);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 0.2, 13);
    const size_t no = 13 * (size_t)f.net.cfg.out_dim, np = f.net.n_params, nx = 13 * (size_t)f.net.cfg.dim;
    fixture_free(&f);
    float *o1 = malloc(no * 4), *o2 = malloc(no * 4), *g1 = malloc(np * 4), *g2 = malloc(np * 4);
    float *x1 = malloc(nx * 4), *x2 = malloc(nx * 4);
    step_bits(1, o1, g1, x1);
    step_bits(2, o2, g2, x2);
    omp_set_num_threads(omp_get_num_procs());
    assert_memory_equal(o1, o2, no * 4);
    assert_memory_equal(g1, g2, np * 4);
    assert_memory_equal(x1, x2, nx * 4);
    free(o1);
    free(o2);
    free(g1);
    free(g2);
    free(x1);
    free(x2);
}

/* A workspace of 5 items runs 13 in batches of 5: the same values as one batch of 13 up to float
 * rounding (the products' tiles differ, and a tile's bits depend on its shape), and the same bits
 * every time. */
static void test_forward_in_batches(void **state)
{
    (void)state;
    char err[DM_ERR_SIZE];
    fixture f;
    fixture_init(&f, 0.0, 13);
    loss(&f, 0);
    const size_t no = 13 * (size_t)f.net.cfg.out_dim;
    float *one = malloc(no * 4), *again = malloc(no * 4);
    memcpy(one, f.out, no * 4);
    dm_net_ws small;
    assert_int_equal(dm_net_ws_init(&f.net, &small, 5, err), DM_OK);
    dm_net_forward(&f.net, f.params, &small, 13, f.x, f.tin, f.y, f.out);
    dm_net_forward(&f.net, f.params, &small, 13, f.x, f.tin, f.y, again);
    assert_memory_equal(again, f.out, no * 4);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < no; i++) {
        worst = fmax(worst, fabs((double)one[i] - f.out[i]));
        scale = fmax(scale, fabs((double)one[i]));
    }
    if (!(worst <= 1e-5 * scale))
        fail_msg("a forward in batches of 5 differs from one batch by %g (outputs up to %g)", worst, scale);
    dm_net_ws_free(&f.net, &small);
    free(one);
    free(again);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_parameter_count),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_gradients_dropout),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_forward_in_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
