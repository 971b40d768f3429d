/* embed.c — the time and class embedding and the per-block projection (see embed.h). */
#include "nn/embed.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/gnorm.h"
#include "nn/lane_sum.h"
#include "nn/linear.h"

#define MAX_DIM (1 << 16)

dm_status dm_embed_init(dm_embed *e, int dim, int n_classes, char *err)
{
    memset(e, 0, sizeof *e);
    if (dim < 2 || dim > MAX_DIM || dim % 2 != 0 || n_classes < 0 || n_classes > MAX_DIM)
        return dm_err(err, DM_E_INPUT,
                      "embed: bad shape dim=%d n_classes=%d (need an even dim >= 2, n_classes >= 0)", dim,
                      n_classes);
    e->dim = dim;
    e->n_classes = n_classes;
    e->off_l2 = dm_linear_n_params(dim, dim);
    e->off_table = 2 * e->off_l2;
    e->n_params = e->off_table + (n_classes > 0 ? ((size_t)n_classes + 1) * (size_t)dim : 0);
    return DM_OK;
}

void dm_embed_init_params(const dm_embed *e, float *params, dm_rng *rng)
{
    dm_linear_init_params(e->dim, e->dim, params, rng);
    dm_linear_init_params(e->dim, e->dim, params + e->off_l2, rng);
    for (size_t i = e->off_table; i < e->n_params; i++)
        params[i] = (float)dm_rng_normal(rng);
}

dm_status dm_embed_ws_init(dm_embed_ws *ws, const dm_embed *e, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "embed: max_batch %d out of range", max_batch);
    const size_t m = (size_t)max_batch * (size_t)e->dim;
    ws->max_batch = max_batch;
    ws->freq = dm_malloc((size_t)e->dim / 2 * sizeof *ws->freq);
    float **bufs[] = {&ws->e0, &ws->z1, &ws->a1, &ws->temb, &ws->g, &ws->g2};
    int ok = ws->freq != NULL;
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++)
        ok &= (*bufs[k] = dm_malloc_aligned(m * sizeof(float))) != NULL;
    ws->row = dm_malloc((size_t)max_batch * sizeof *ws->row);
    ws->dtab = dm_malloc(((size_t)e->n_classes + 1) * (size_t)e->dim * sizeof *ws->dtab);
    if (!ok || !ws->row || !ws->dtab) {
        dm_embed_ws_free(ws);
        return dm_err(err, DM_E_NOMEM, "embed: cannot allocate the workspace (batch %d, dim %d)", max_batch,
                      e->dim);
    }
    dm_embed_freq(e->dim, ws->freq);
    return DM_OK;
}

void dm_embed_ws_free(dm_embed_ws *ws)
{
    if (!ws)
        return;
    dm_free(ws->freq);
    dm_free_aligned(ws->e0);
    dm_free_aligned(ws->z1);
    dm_free_aligned(ws->a1);
    dm_free_aligned(ws->temb);
    dm_free_aligned(ws->g);
    dm_free_aligned(ws->g2);
    dm_free(ws->row);
    dm_free(ws->dtab);
    memset(ws, 0, sizeof *ws);
}

void dm_embed_freq(int dim, double *freq)
{
    const int half = dim / 2;
    for (int k = 0; k < half; k++)
        freq[k] = exp(-log(10000.0) * (double)k / (double)half);
}

void dm_embed_sinusoid(int dim, const double *freq, int n, const float *c_noise, float *e0)
{
    const int half = dim / 2;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const double c = c_noise[i];
        float *row = e0 + (size_t)i * dim;
        for (int k = 0; k < half; k++) {
            row[k] = (float)sin(c * freq[k]);
            row[half + k] = (float)cos(c * freq[k]);
        }
    }
}

void dm_embed_forward(const dm_embed *e, const float *params, dm_embed_ws *ws, int n, const float *c_noise,
                      const int32_t *y, float *out)
{
    const int T = e->dim;
    const size_t m = (size_t)n * T;
    dm_embed_sinusoid(T, ws->freq, n, c_noise, ws->e0);
    dm_linear_forward(T, T, params, n, ws->e0, ws->z1);
    dm_silu_forward(m, ws->z1, ws->a1);
    dm_linear_forward(T, T, params + e->off_l2, n, ws->a1, ws->temb);
    if (e->n_classes > 0) {
        for (int i = 0; i < n; i++) {
            const int32_t yi = y ? y[i] : DM_EMBED_NULL_CLASS;
            ws->row[i] = yi >= 0 && yi < e->n_classes ? yi : e->n_classes;
            const float *tab = params + e->off_table + (size_t)ws->row[i] * T;
            float *t = ws->temb + (size_t)i * T;
            for (int k = 0; k < T; k++)
                t[k] += tab[k];
        }
    }
    dm_silu_forward(m, ws->temb, out);
}

void dm_embed_backward(const dm_embed *e, const float *params, dm_embed_ws *ws, int n, const float *dout,
                       float *grads)
{
    const int T = e->dim;
    const size_t m = (size_t)n * T;
    dm_silu_backward(m, ws->temb, dout, ws->g, 0); // g = dL/dtemb
    if (e->n_classes > 0) {                        // table rows: items added in item order
        const size_t nt = ((size_t)e->n_classes + 1) * T;
        memset(ws->dtab, 0, nt * sizeof *ws->dtab);
        for (int i = 0; i < n; i++) {
            double *d = ws->dtab + (size_t)ws->row[i] * T;
            const float *g = ws->g + (size_t)i * T;
            for (int k = 0; k < T; k++)
                d[k] += g[k];
        }
        for (size_t k = 0; k < nt; k++)
            grads[e->off_table + k] = (float)ws->dtab[k];
    }
    dm_linear_backward(T, T, params + e->off_l2, n, ws->a1, ws->g, grads + e->off_l2, ws->g2, 0);
    dm_silu_backward(m, ws->z1, ws->g2, ws->g2, 0); // dL/dz1, in place
    dm_linear_backward(T, T, params, n, ws->e0, ws->g2, grads, NULL, 0);
}

/* ---- per-block projection ------------------------------------------------------------------ */

dm_status dm_tproj_init(dm_tproj *tp, int dim, int c, char *err)
{
    memset(tp, 0, sizeof *tp);
    if (dim < 1 || dim > MAX_DIM || c < 1 || c > MAX_DIM)
        return dm_err(err, DM_E_INPUT, "tproj: bad shape dim=%d channels=%d", dim, c);
    tp->dim = dim;
    tp->c = c;
    tp->n_params = dm_linear_n_params(dim, c);
    return DM_OK;
}

void dm_tproj_init_params(const dm_tproj *tp, float *params, dm_rng *rng)
{
    dm_linear_init_params(tp->dim, tp->c, params, rng);
}

dm_status dm_tproj_ws_init(dm_tproj_ws *ws, const dm_tproj *tp, int max_batch, char *err)
{
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1 || max_batch > INT_MAX / 2)
        return dm_err(err, DM_E_INPUT, "tproj: max_batch %d out of range", max_batch);
    ws->max_batch = max_batch;
    ws->p = dm_malloc((size_t)max_batch * tp->c * sizeof *ws->p);
    ws->dp = dm_malloc((size_t)max_batch * tp->c * sizeof *ws->dp);
    if (!ws->p || !ws->dp) {
        dm_tproj_ws_free(ws);
        return dm_err(err, DM_E_NOMEM, "tproj: cannot allocate the workspace (batch %d)", max_batch);
    }
    return DM_OK;
}

void dm_tproj_ws_free(dm_tproj_ws *ws)
{
    if (!ws)
        return;
    dm_free(ws->p);
    dm_free(ws->dp);
    memset(ws, 0, sizeof *ws);
}

void dm_tproj_forward(const dm_tproj *tp, const float *params, dm_tproj_ws *ws, int n, const float *emb,
                      int hw, float *h)
{
    const int C = tp->c;
    dm_linear_forward(tp->dim, C, params, n, emb, ws->p);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float v = ws->p[(size_t)i * C + c];
            float *restrict hp = h + ((size_t)i * C + c) * hw;
            for (int j = 0; j < hw; j++)
                hp[j] += v;
        }
}

void dm_tproj_backward(const dm_tproj *tp, const float *params, dm_tproj_ws *ws, int n, const float *emb,
                       int hw, const float *dh, float *grads, float *demb, int acc_demb)
{
    const int C = tp->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            ws->dp[(size_t)i * C + c] = (float)dm_lane_sum(dh + ((size_t)i * C + c) * hw, (size_t)hw);
    dm_linear_backward(tp->dim, C, params, n, emb, ws->dp, grads, demb, acc_demb);
}
