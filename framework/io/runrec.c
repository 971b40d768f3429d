/* runrec.c — the in-memory record of a run: growable arrays with replace-on-same-key semantics.
 *
 * Every mutator either succeeds or leaves the record exactly as it was (allocations happen
 * before anything is linked in), so a failed call never needs undoing by the caller. */
#include "io/runrec.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"

void dm_runrec_init(dm_runrec *r)
{
    memset(r, 0, sizeof *r);
}

static void series_free(dm_series *s)
{
    dm_free(s->name);
    dm_free(s->step);
    dm_free(s->wall_s);
    dm_free(s->value);
}

static void samples_free(dm_sample_set *s)
{
    dm_free(s->name);
    dm_free(s->sampler);
    dm_free(s->settings_json);
    dm_free(s->x);
}

static void eval_free(dm_eval *e)
{
    dm_free(e->metric);
    dm_free(e->sampler);
    dm_free(e->settings_json);
}

void dm_runrec_free(dm_runrec *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_attrs; ++i) {
        dm_free(r->attrs[i].key);
        dm_free(r->attrs[i].value);
    }
    dm_free(r->attrs);
    dm_free(r->config_yaml);
    for (size_t i = 0; i < r->n_seeds; ++i)
        dm_free(r->seeds[i].stream);
    dm_free(r->seeds);
    dm_free(r->data_name);
    for (size_t i = 0; i < r->n_series; ++i)
        series_free(&r->series[i]);
    dm_free(r->series);
    for (size_t i = 0; i < r->n_samples; ++i)
        samples_free(&r->samples[i]);
    dm_free(r->samples);
    for (size_t i = 0; i < r->n_evals; ++i)
        eval_free(&r->evals[i]);
    dm_free(r->evals);
    dm_runrec_init(r);
}

/* Make room for one more element in an array of n elements. The record keeps no separate
 * capacity for its small arrays: they grow by one (a run has tens of attrs, not thousands). */
static dm_status grow_one(void **arr, size_t n, size_t elem, const char *what, char *err)
{
    if (n >= SIZE_MAX / elem - 1)
        return dm_err(err, DM_E_NOMEM, "too many %s in the run record", what);
    void *p = dm_realloc(*arr, (n + 1) * elem);
    if (!p)
        return dm_err(err, DM_E_NOMEM, "out of memory adding to the %s of the run record", what);
    *arr = p;
    return DM_OK;
}

static char *dup_or_empty_json(const char *s)
{
    return dm_strdup(s ? s : "{}");
}

dm_status dm_runrec_set_attr(dm_runrec *r, const char *key, const char *value, char *err)
{
    dm_status st = DM_OK;
    char *k = NULL, *v = dm_strdup(value ? value : "");
    if (!v) {
        st = dm_err(err, DM_E_NOMEM, "out of memory setting attribute '%s'", key);
        goto out;
    }
    for (size_t i = 0; i < r->n_attrs; ++i) {
        if (strcmp(r->attrs[i].key, key) == 0) {
            dm_free(r->attrs[i].value);
            r->attrs[i].value = v;
            v = NULL;
            goto out;
        }
    }
    k = dm_strdup(key);
    if (!k) {
        st = dm_err(err, DM_E_NOMEM, "out of memory setting attribute '%s'", key);
        goto out;
    }
    st = grow_one((void **)&r->attrs, r->n_attrs, sizeof *r->attrs, "attributes", err);
    if (st)
        goto out;
    r->attrs[r->n_attrs].key = k;
    r->attrs[r->n_attrs].value = v;
    r->n_attrs++;
    k = v = NULL;
out:
    dm_free(k);
    dm_free(v);
    return st;
}

const char *dm_runrec_attr(const dm_runrec *r, const char *key)
{
    for (size_t i = 0; i < r->n_attrs; ++i)
        if (strcmp(r->attrs[i].key, key) == 0)
            return r->attrs[i].value;
    return NULL;
}

dm_status dm_runrec_add_seed(dm_runrec *r, const char *stream, uint64_t seed, char *err)
{
    dm_status st = DM_OK;
    char *s = NULL;
    for (size_t i = 0; i < r->n_seeds; ++i) {
        if (strcmp(r->seeds[i].stream, stream) == 0) {
            r->seeds[i].seed = seed;
            goto out;
        }
    }
    s = dm_strdup(stream);
    if (!s) {
        st = dm_err(err, DM_E_NOMEM, "out of memory adding seed stream '%s'", stream);
        goto out;
    }
    st = grow_one((void **)&r->seeds, r->n_seeds, sizeof *r->seeds, "seeds", err);
    if (st)
        goto out;
    r->seeds[r->n_seeds].stream = s;
    r->seeds[r->n_seeds].seed = seed;
    r->n_seeds++;
    s = NULL;
out:
    dm_free(s);
    return st;
}

/* Note: the returned pointer points into r->series and is invalidated by the next call that
 * creates a series. */
dm_status dm_runrec_series(dm_runrec *r, const char *name, dm_series **out, char *err)
{
    dm_status st = DM_OK;
    char *nm = NULL;
    *out = NULL;
    for (size_t i = 0; i < r->n_series; ++i) {
        if (strcmp(r->series[i].name, name) == 0) {
            *out = &r->series[i];
            goto out;
        }
    }
    nm = dm_strdup(name);
    if (!nm) {
        st = dm_err(err, DM_E_NOMEM, "out of memory creating series '%s'", name);
        goto out;
    }
    st = grow_one((void **)&r->series, r->n_series, sizeof *r->series, "series", err);
    if (st)
        goto out;
    dm_series *s = &r->series[r->n_series++];
    memset(s, 0, sizeof *s);
    s->name = nm;
    nm = NULL;
    *out = s;
out:
    dm_free(nm);
    return st;
}

dm_status dm_series_push(dm_series *s, int64_t step, double wall_s, double value, char *err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        if (cap > SIZE_MAX / sizeof(double))
            return dm_err(err, DM_E_NOMEM, "series '%s' is too long", s->name);
        /* Each array is reallocated separately; cap grows only once all three succeeded, and a
         * larger-than-recorded block is harmless, so a failure leaves the series consistent. */
        int64_t *st = dm_realloc(s->step, cap * sizeof *st);
        if (!st)
            goto nomem;
        s->step = st;
        double *w = dm_realloc(s->wall_s, cap * sizeof *w);
        if (!w)
            goto nomem;
        s->wall_s = w;
        double *v = dm_realloc(s->value, cap * sizeof *v);
        if (!v)
            goto nomem;
        s->value = v;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->wall_s[s->n] = wall_s;
    s->value[s->n] = value;
    s->n++;
    return DM_OK;
nomem:
    return dm_err(err, DM_E_NOMEM, "out of memory growing series '%s'", s->name);
}

void dm_series_truncate(dm_series *s, int64_t max_step)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; ++i) {
        if (s->step[i] <= max_step) {
            s->step[k] = s->step[i];
            s->wall_s[k] = s->wall_s[i];
            s->value[k] = s->value[i];
            ++k;
        }
    }
    s->n = k;
}

dm_status dm_runrec_add_samples(dm_runrec *r, const char *sampler, int64_t nfe,
                                const char *settings_json, int64_t n, int64_t d, const float *x,
                                const char **name_out, char *err)
{
    dm_status st = DM_OK;
    dm_sample_set s = {0};
    if (n < 0 || d < 0 || (d > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / (uint64_t)d))
        return dm_err(err, DM_E_INPUT, "bad sample set shape (%lld, %lld)", (long long)n,
                      (long long)d);
    size_t count = (size_t)n * (size_t)d;
    const char *settings = settings_json && settings_json[0] ? settings_json : "{}";
    char name[256];
    int len = snprintf(name, sizeof name, "%s_%lld", sampler, (long long)nfe);
    if (len < 0 || (size_t)len >= sizeof name - 10)
        return dm_err(err, DM_E_INPUT, "sampler name '%s' is too long", sampler);
    /* <sampler>_<nfe> names a set; other settings at the same NFE (DDIM's eta, a variance)
     * get "-" and 8 hex digits of SHA-256 of their settings, so neither replaces the other. */
    for (size_t i = 0; i < r->n_samples; ++i) {
        if (strcmp(r->samples[i].name, name) == 0 && strcmp(r->samples[i].settings_json, settings) != 0) {
            char hex[65];
            dm_sha256_hex(settings, strlen(settings), hex);
            snprintf(name + len, sizeof name - (size_t)len, "-%.8s", hex);
            break;
        }
    }

    s.name = dm_strdup(name);
    s.sampler = dm_strdup(sampler);
    s.settings_json = dup_or_empty_json(settings);
    s.x = count ? dm_malloc(count * sizeof(float)) : NULL;
    if (!s.name || !s.sampler || !s.settings_json || (count && !s.x)) {
        st = dm_err(err, DM_E_NOMEM, "out of memory adding sample set '%s'", name);
        goto out;
    }
    if (count)
        memcpy(s.x, x, count * sizeof(float));
    s.nfe = nfe;
    s.n = n;
    s.d = d;
    for (size_t i = 0; i < r->n_samples; ++i) {
        if (strcmp(r->samples[i].name, name) == 0) {
            samples_free(&r->samples[i]);
            r->samples[i] = s;
            memset(&s, 0, sizeof s);
            if (name_out)
                *name_out = r->samples[i].name;
            goto out;
        }
    }
    st = grow_one((void **)&r->samples, r->n_samples, sizeof *r->samples, "sample sets", err);
    if (st)
        goto out;
    r->samples[r->n_samples++] = s;
    memset(&s, 0, sizeof s);
    if (name_out)
        *name_out = r->samples[r->n_samples - 1].name;
out:
    samples_free(&s);
    return st;
}

dm_status dm_runrec_add_image_samples(dm_runrec *r, const char *sampler, int64_t nfe, const char *settings_json,
                                      int64_t n, const int32_t shape[3], const float *x, const char **name_out,
                                      char *err)
{
    if (shape[0] < 1 || shape[1] < 1 || shape[2] < 1 || shape[0] > 4096 || shape[1] > 65536 || shape[2] > 65536)
        return dm_err(err, DM_E_INPUT, "bad image shape (%d, %d, %d)", (int)shape[0], (int)shape[1], (int)shape[2]);
    const char *name = NULL;
    const int64_t d = (int64_t)shape[0] * shape[1] * shape[2];
    dm_status st = dm_runrec_add_samples(r, sampler, nfe, settings_json, n, d, x, &name, err);
    for (size_t i = 0; !st && i < r->n_samples; ++i)
        if (r->samples[i].name == name)
            memcpy(r->samples[i].shape, shape, sizeof r->samples[i].shape);
    if (!st && name_out)
        *name_out = name;
    return st;
}

dm_status dm_runrec_add_eval(dm_runrec *r, const char *metric, const char *sampler, int64_t nfe,
                             const char *settings_json, int64_t n_samples, double value, char *err)
{
    dm_status st = DM_OK;
    dm_eval e = {0};
    const char *settings = settings_json ? settings_json : "{}";
    for (size_t i = 0; i < r->n_evals; ++i) {
        dm_eval *o = &r->evals[i];
        if (strcmp(o->metric, metric) == 0 && strcmp(o->sampler, sampler) == 0 && o->nfe == nfe &&
            strcmp(o->settings_json, settings) == 0) {
            o->n_samples = n_samples;
            o->value = value;
            goto out;
        }
    }
    e.metric = dm_strdup(metric);
    e.sampler = dm_strdup(sampler);
    e.settings_json = dm_strdup(settings);
    if (!e.metric || !e.sampler || !e.settings_json) {
        st = dm_err(err, DM_E_NOMEM, "out of memory adding eval '%s'", metric);
        goto out;
    }
    e.nfe = nfe;
    e.n_samples = n_samples;
    e.value = value;
    st = grow_one((void **)&r->evals, r->n_evals, sizeof *r->evals, "evals", err);
    if (st)
        goto out;
    r->evals[r->n_evals++] = e;
    memset(&e, 0, sizeof e);
out:
    eval_free(&e);
    return st;
}
