/* test_unet.c — the U-Net network (nn/unet.h): the peer's parameter count, gradients of the whole
 * network against central differences (parameters of every layer kind, and the input), bits equal
 * on 1 and 2 threads for a training step, a forward in batches equal to one batch, and refusals. */
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

static void fixture_init(fixture *f, double dropout, int n)
{
    const dm_unet_opts o = small_opts(dropout);
    memset(f, 0, sizeof *f);
    build(&f->net, &o, 2, 8, 8, 2, 3);
    dm_rng rng;
    fixture_start(f, n, &rng);
    const size_t d = (size_t)f->net.cfg.dim, od = (size_t)f->net.cfg.out_dim;
    f->x = xmalloc((size_t)n * d * sizeof(float));
    f->r = xmalloc((size_t)n * od * sizeof(float));
    f->y = xmalloc((size_t)n * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)n * d; i++)
        f->x[i] = (float)dm_rng_normal(&rng);
    for (size_t i = 0; i < (size_t)n * od; i++)
        f->r[i] = (float)dm_rng_normal(&rng);
    for (int i = 0; i < n; i++)
        f->y[i] = i % 4 == 3 ? -1 : i % 3;
    dm_rng_free(&rng);
}

/* The small U-Net's gradients (every layer kind, the class embedding) against central differences,
 * every 5th entry of x among them. */
static void check_grads(double dropout)
{
    fixture f;
    fixture_init(&f, dropout, 3);
    check_net_grads(&f, "unet", dropout, 5);
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

static void test_threads_bit_identical(void **state)
{
    (void)state;
    check_threads_bit_identical(fixture_init);
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
