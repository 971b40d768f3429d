/* unet_check.h — what the tests of the networks on nn/unet_internal.h's plan (tests/test_unet.c,
 * tests/test_cnn.c) share: a fixture of a small network with its workspace and data, the loss
 * L = sum r . out, central differences of the whole network's gradients, and a training step's bits
 * on 1 and 2 threads. Each test keeps its own network (small_opts, build) and fixture_init.
 * Include after <cmocka.h>. */
#ifndef DM_TESTS_UNET_CHECK_H
#define DM_TESTS_UNET_CHECK_H

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "nn_check.h"

#include "core/rng.h"
#include "nn/linear.h"
#include "nn/net.h"
#include "nn/unet_internal.h"

typedef struct fixture {
    dm_net net;
    dm_net_ws ws;
    float *params, *grads, *x, *tin, *out, *r, *dx;
    int32_t *y; // NULL: an unconditional network
    int n;
} fixture;

/* A test's fixture of n items, its network with that dropout. */
typedef void (*fixture_init_fn)(fixture *f, double dropout, int n);

/* The part of a fixture_init after the network f->net is built: a workspace of n items, buffers,
 * the parameters of seed 11 moved a little, t_i = 37 i mod 1000, noise seed 99. x and r (and y) are
 * the caller's to allocate and fill; rng goes on from the parameters' draws and is the caller's to
 * free. */
static inline void fixture_start(fixture *f, int n, dm_rng *rng)
{
    char err[DM_ERR_SIZE];
    f->n = n;
    assert_int_equal(dm_net_ws_init(&f->net, &f->ws, n, err), DM_OK);
    const size_t np = f->net.n_params, d = (size_t)f->net.cfg.dim, od = (size_t)f->net.cfg.out_dim;
    f->params = xmalloc(np * sizeof(float));
    f->grads = xmalloc(np * sizeof(float));
    f->dx = xmalloc((size_t)n * d * sizeof(float));
    f->out = xmalloc((size_t)n * od * sizeof(float));
    f->tin = xmalloc((size_t)n * sizeof(float));
    assert_int_equal(dm_rng_init(rng, 11, err), DM_OK);
    dm_net_init_params(&f->net, f->params, rng);
    /* GroupNorm's gamma = 1, beta = 0 and zero biases would leave some gradients trivially zero:
     * move every parameter a little so each layer's gradient is generic */
    for (size_t i = 0; i < np; i++)
        f->params[i] += (float)(0.05 * dm_rng_normal(rng));
    for (int i = 0; i < n; i++)
        f->tin[i] = (float)(37 * i % 1000);
    f->ws.noise_seed = 99;
}

static inline void fixture_free(fixture *f)
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
static inline double loss(fixture *f, int train)
{
    f->ws.train = train;
    dm_net_forward(&f->net, f->params, &f->ws, f->n, f->x, f->tin, f->y, f->out);
    f->ws.train = 0;
    return dot_fd(f->out, f->r, (size_t)f->n * (size_t)f->net.cfg.out_dim);
}

/* Central differences at step h in float of v[i] against g[i]. */
static inline void check_entry(fixture *f, const char *what, float *v, size_t i, float g, int train,
                               double *worst)
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

/* The backward of f (made with that dropout, a training forward when dropout > 0) against central
 * differences: every 37th parameter of the time embedding; of each operation's layers a spread
 * and the last bias, every parameter of a pooling head; every x_step-th entry of the input. name
 * names the network in NN_CHECK_VERBOSE's line. */
static inline void check_net_grads(fixture *f, const char *name, double dropout, size_t x_step)
{
    const int train = dropout > 0;
    loss(f, train);
    dm_net_backward(&f->net, f->params, &f->ws, f->n, f->r, f->grads, f->dx);
    const dm_unet *u = f->net.impl;
    double worst = 0;
    for (size_t i = 0; i < u->emb.n_params; i += 37)
        check_entry(f, "embedding", f->params, i, f->grads[i], train, &worst);
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
                check_entry(f, "operation parameter", f->params, offs[j] + q, f->grads[offs[j] + q], train,
                            &worst);
            if (lens[j])
                check_entry(f, "operation parameter", f->params, offs[j] + lens[j] - 1,
                            f->grads[offs[j] + lens[j] - 1], train, &worst);
        }
    }
    for (size_t i = 0; i < (size_t)f->n * (size_t)f->net.cfg.dim; i += x_step)
        check_entry(f, "x", f->x, i, f->dx[i], train, &worst);
    if (getenv("NN_CHECK_VERBOSE"))
        printf("%s dropout %g: worst |g - fd| / tol = %.3f\n", name, dropout, worst);
}

/* What a training step of 13 items with dropout 0.2 computes: outputs, parameter and input
 * gradients, the features (none, nf 0, for a network without them). */
typedef struct step_bits {
    float *out, *grads, *dx, *feat;
    size_t no, np, nx, nf;
} step_bits;

static inline step_bits step_on_threads(fixture_init_fn init, int threads)
{
    fixture f;
    step_bits s;
    omp_set_num_threads(threads); /* a run on that many threads, from its start */
    init(&f, 0.2, 13);
    loss(&f, 1);
    int dim;
    const float *feat = dm_net_features(&f.net, &f.ws, &dim);
    s.no = 13 * (size_t)f.net.cfg.out_dim;
    s.np = f.net.n_params;
    s.nx = 13 * (size_t)f.net.cfg.dim;
    s.nf = 13 * (size_t)dim;
    s.feat = xmalloc(s.nf * sizeof(float));
    if (s.nf)
        memcpy(s.feat, feat, s.nf * sizeof(float));
    dm_net_backward(&f.net, f.params, &f.ws, f.n, f.r, f.grads, f.dx);
    s.out = xmalloc(s.no * sizeof(float));
    s.grads = xmalloc(s.np * sizeof(float));
    s.dx = xmalloc(s.nx * sizeof(float));
    memcpy(s.out, f.out, s.no * sizeof(float));
    memcpy(s.grads, f.grads, s.np * sizeof(float));
    memcpy(s.dx, f.dx, s.nx * sizeof(float));
    fixture_free(&f);
    return s;
}

static inline void step_bits_free(step_bits *s)
{
    free(s->out);
    free(s->grads);
    free(s->dx);
    free(s->feat);
}

/* A training step's outputs, features, gradients and input gradients: the same bits on 1 and 2
 * threads. */
static inline void check_threads_bit_identical(fixture_init_fn init)
{
    step_bits s1 = step_on_threads(init, 1), s2 = step_on_threads(init, 2);
    omp_set_num_threads(omp_get_num_procs());
    assert_memory_equal(s1.out, s2.out, s1.no * 4);
    if (s1.nf)
        assert_memory_equal(s1.feat, s2.feat, s1.nf * 4);
    assert_memory_equal(s1.grads, s2.grads, s1.np * 4);
    assert_memory_equal(s1.dx, s2.dx, s1.nx * 4);
    step_bits_free(&s1);
    step_bits_free(&s2);
}

#endif
