/* sweep_expand.c — a parsed sweep expanded into its runs: the cartesian product of the grid axes
 * and zip groups less the excluded combinations, times the seeds, each loaded on the base spec
 * (overrides shallowest key first) into its run id and resolved spec, with the runs it needs first
 * (a cd teacher, a guidance classifier). */
#define _GNU_SOURCE 1   /* asprintf */
#include "train/sweep_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "diffusion/guidance.h"
#include "diffusion/loss.h"
#include "io/spec.h"
#include "train/runref.h"
#include "train/schema.h"

#define MAX_LINES 100000

typedef struct combo {
    size_t n;
    const char *keys[64];
    const char *vals[64];
} combo;

/* a * b, or MAX_LINES + 1 when that is more than MAX_LINES (never wraps). */
static size_t runs_times(size_t a, size_t b)
{
    return b && a > MAX_LINES / b ? (size_t)MAX_LINES + 1 : a * b;
}

/* Dots in a key: its depth in the spec ("diffusion.loss" 1, "diffusion.loss.distance" 2). */
static int key_depth(const char *key)
{
    int d = 0;
    for (; *key; key++)
        d += *key == '.';
    return d;
}

/* The base spec with the sweep's set overrides, the combination's axes and the seed. Overrides
 * go shallowest key first (stable: set before axes at equal depth), so a whole-section axis
 * (`diffusion.loss: [{type: cd}, ...]`) never wipes a key inside that section given by another
 * axis or by set (`diffusion.loss.distance`): the more specific key wins. */
static dm_status load_combo(const dm_sweep_def *s, const combo *c, int64_t seed, dm_spec **spec, char *err)
{
    const size_t n = s->n_set + c->n + 1;
    char **over = dm_calloc(n, sizeof *over);
    int *depth = dm_calloc(n, sizeof *depth);
    dm_status st = DM_OK;
    if (!over || !depth) {
        dm_free(over);
        dm_free(depth);
        return dm_err(err, DM_E_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n_set && !st; i++, k++)
        if (asprintf(&over[k], "%s=%s", s->set[i].key, s->set[i].vals[0]) < 0)
            st = dm_err(err, DM_E_NOMEM, "out of memory");
        else
            depth[k] = key_depth(s->set[i].key);
    for (size_t i = 0; i < c->n && !st; i++, k++)
        if (asprintf(&over[k], "%s=%s", c->keys[i], c->vals[i]) < 0)
            st = dm_err(err, DM_E_NOMEM, "out of memory");
        else
            depth[k] = key_depth(c->keys[i]);
    /* Insertion sort by depth: stable. */
    for (size_t i = 1; i < k && !st; i++)
        for (size_t j = i; j > 0 && depth[j - 1] > depth[j]; j--) {
            char *t = over[j];
            over[j] = over[j - 1];
            over[j - 1] = t;
            const int dt = depth[j];
            depth[j] = depth[j - 1];
            depth[j - 1] = dt;
        }
    if (!st && seed >= 0 && asprintf(&over[k++], "seed=%lld", (long long)seed) < 0)
        st = dm_err(err, DM_E_NOMEM, "out of memory");
    if (!st)
        st = dm_spec_load_file(&dm_spec_schema, s->base, (int)k, (const char *const *)over, spec, err);
    for (size_t i = 0; i < k; i++)
        free(over[i]);
    dm_free(over);
    dm_free(depth);
    return st;
}

/* Each axis value alone on the base: a key the spec lacks or a bad value is named where the
 * sweep gives it. */
static dm_status check_axis(const dm_sweep_def *s, const dm_sweep_axis *a, const char *what, char *err)
{
    for (size_t i = 0; i < a->n; i++) {
        combo c = { .n = 1, .keys = { a->key }, .vals = { a->vals[i] } };
        dm_spec *spec = NULL;
        dm_status st = load_combo(s, &c, -1, &spec, err);
        dm_spec_free(spec);
        if (st) {
            char where[512];
            dm_ytree_where(a->where, where, sizeof where);
            dm_err_prefix(err, "%s: %s axis '%s', value %s", where, what, a->key, a->vals[i]);
            return st;
        }
    }
    return DM_OK;
}

static int excluded(dm_sweep_def *s, const combo *c)
{
    int any = 0;
    for (size_t e = 0; e < s->n_excl; e++) {
        dm_sweep_excl *x = &s->excl[e];
        int all = 1;
        for (size_t j = 0; j < x->n && all; j++) {
            int hit = 0;
            for (size_t i = 0; i < c->n && !hit; i++)
                hit = strcmp(c->keys[i], x->keys[j]) == 0 && strcmp(c->vals[i], x->vals[j]) == 0;
            all = hit;
        }
        if (all) {
            x->matched = 1;
            any = 1;
        }
    }
    return any;
}

static char *combo_json(const combo *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    fputc('{', f);
    for (size_t i = 0; i < c->n; i++) {
        if (i)
            fputc(',', f);
        dm_sweep_put_json_str(f, c->keys[i]);
        fputc(':', f);
        dm_sweep_put_json_str(f, c->vals[i]);
    }
    fputc('}', f);
    if (fclose(f) != 0)
        return NULL;
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

/* One run a line needs, named by a spec file (name) and seed under key: its id into P. Not a
 * file: nothing to do (a run id is resolved when the line runs). */
static dm_status prerequisite(const char *name, int64_t seed, const char *key, dm_sweep_prereq *P, char *err)
{
    struct stat sb;
    if (!name[0] || stat(name, &sb) != 0 || !S_ISREG(sb.st_mode))
        return DM_OK;
    dm_status st = dm_run_id_of_file(name, seed, P->id, sizeof P->id, err);
    if (st) {
        dm_err_prefix(err, "%s '%s'", key, name);
        return st;
    }
    if (!realpath(name, P->spec))
        snprintf(P->spec, sizeof P->spec, "%s", name);
    P->seed = seed;
    return DM_OK;
}

/* A CD line whose distill.teacher is a spec file, a classifier-guided line whose
 * guidance.classifier is one, and a line whose eval.features is one: those runs (their ids from
 * the spec and seed) must finish first, so the make fragment makes them prerequisites, into
 * L->pre[at..at + 2]. A teacher's own prerequisites (say, the feature network its spec names) go
 * to pre[3..5], and the teacher needs them first. */
static dm_status prerequisites(const dm_spec *spec, dm_sweep_line *L, int at, char *err)
{
    const dm_loss_ops *loss = (const dm_loss_ops *)dm_spec_plugin(spec, "diffusion.loss");
    const dm_distill_opts *dist = dm_spec_opts(spec, "distill");
    const dm_guidance_ops *gu = (const dm_guidance_ops *)dm_spec_plugin(spec, "guidance");
    dm_status st = DM_OK;
    if (loss->consistency == DM_CM_KIND_CD)
        st = prerequisite(dist->teacher, dist->teacher_seed, "distill.teacher", &L->pre[at], err);
    if (!st && gu->kind == DM_GUIDE_CLASSIFIER) {
        const dm_classifier_guidance_opts *cg = dm_spec_opts(spec, "guidance");
        st = prerequisite(cg->classifier, cg->classifier_seed, "guidance.classifier", &L->pre[at + 1], err);
    }
    const dm_eval_opts *eo = dm_spec_opts(spec, "eval");
    if (!st && eo->features[0])
        st = prerequisite(eo->features, eo->features_seed, "eval.features", &L->pre[at + 2], err);
    if (!st && at == 0 && L->pre[0].id[0]) {
        dm_spec *ts = NULL;
        if ((st = dm_spec_load_file(&dm_spec_schema, L->pre[0].spec, 0, NULL, &ts, err))) {
            dm_err_prefix(err, "distill.teacher '%s'", dist->teacher);
            return st;
        }
        st = prerequisites(ts, L, 3, err);
        dm_spec_free(ts);
        for (int k = 3; k < DM_SWEEP_N_PRE; k++)
            if (L->pre[k].id[0])
                L->pre[0].needs |= 1u << k;
    }
    return st;
}

dm_status dm_sweep_expand_lines(dm_sweep_def *s, dm_sweep_line **out, size_t *n_out, char *err)
{
    dm_status st = DM_OK;
    for (size_t i = 0; i < s->n_set && !st; i++)
        st = check_axis(s, &s->set[i], "set", err);
    for (size_t i = 0; i < s->n_grid && !st; i++)
        st = check_axis(s, &s->grid[i], "grid", err);
    for (size_t z = 0; z < s->n_zip && !st; z++)
        for (size_t i = 0; i < s->zip[z].n_keys && !st; i++)
            st = check_axis(s, &s->zip[z].keys[i], "zip", err);
    if (st)
        return st;

    /* Mixed radix over the grid axes, then the zip groups. The count saturates above MAX_LINES:
     * 16 axes of 16 values are 2^64 combinations, which wrapped to 0 runs. */
    const size_t n_dims = s->n_grid + s->n_zip;
    size_t total = 1, keys = s->n_grid;
    for (size_t i = 0; i < s->n_grid; i++)
        total = runs_times(total, s->grid[i].n);
    for (size_t z = 0; z < s->n_zip; z++) {
        total = runs_times(total, s->zip[z].len);
        keys += s->zip[z].n_keys;
    }
    if (keys > 64)
        return dm_err(err, DM_E_INPUT, "a sweep has at most 64 axis keys; this one %zu", keys);
    if (runs_times(total, s->n_seeds) > MAX_LINES)
        return dm_err(err, DM_E_INPUT, "%s: the sweep expands to more than %d runs, the most a sweep may have", s->name,
                      MAX_LINES);
    dm_sweep_line *lines = dm_calloc(total * s->n_seeds + 1, sizeof *lines);
    size_t *idx = dm_calloc(n_dims + 1, sizeof *idx);
    if (!lines || !idx) {
        dm_free(lines);
        dm_free(idx);
        return dm_err(err, DM_E_NOMEM, "out of memory");
    }
    size_t nl = 0;
    for (size_t k = 0; k < total && !st; k++) {
        combo c = { 0 };
        size_t r = k;
        for (size_t d = n_dims; d-- > 0;) {
            const size_t len = d < s->n_grid ? s->grid[d].n : s->zip[d - s->n_grid].len;
            idx[d] = r % len;
            r /= len;
        }
        for (size_t i = 0; i < s->n_grid; i++) {
            c.keys[c.n] = s->grid[i].key;
            c.vals[c.n++] = s->grid[i].vals[idx[i]];
        }
        for (size_t z = 0; z < s->n_zip; z++)
            for (size_t i = 0; i < s->zip[z].n_keys; i++) {
                c.keys[c.n] = s->zip[z].keys[i].key;
                c.vals[c.n++] = s->zip[z].keys[i].vals[idx[s->n_grid + z]];
            }
        if (excluded(s, &c))
            continue;
        for (size_t j = 0; j < s->n_seeds && !st; j++) {
            dm_spec *spec = NULL;
            char hash[65];
            dm_sweep_line *L = &lines[nl];
            if ((st = load_combo(s, &c, s->seeds[j], &spec, err))) {
                char *ax = combo_json(&c);
                dm_err_prefix(err, "%s: the combination %s", s->name, ax ? ax : "?");
                dm_free(ax);
                break;
            }
            const dm_root_opts *root = dm_spec_opts(spec, "");
            L->seed = root->seed;
            st = prerequisites(spec, L, 0, err);
            if (!st && !(st = dm_run_id(spec, L->run_id, sizeof L->run_id, hash, err)) &&
                !(st = dm_spec_canonical(spec, 0, &L->spec, err)) && !(L->axes_json = combo_json(&c)))
                st = dm_err(err, DM_E_NOMEM, "out of memory");
            dm_spec_free(spec);
            nl++;
        }
    }
    /* Two combinations that make the same run are one run under two labels: an axis does not
     * change what it seems to (e.g. a value equal to the base's, or keys that override each
     * other). Refused, naming both. */
    for (size_t i = 0; i < nl && !st; i++)
        for (size_t j = 0; j < i && !st; j++)
            if (strcmp(lines[i].run_id, lines[j].run_id) == 0)
                st = dm_err(err, DM_E_INPUT, "%s: the combinations %s and %s make the same run %s: an axis does not "
                            "change the spec there", s->name, lines[j].axes_json ? lines[j].axes_json : "?",
                            lines[i].axes_json ? lines[i].axes_json : "?", lines[i].run_id);
    for (size_t e = 0; e < s->n_excl && !st; e++)
        if (!s->excl[e].matched)
            st = dm_sweep_err_at(s->excl[e].where, err, DM_E_INPUT,
                                 "this exclude matches no combination of the axes", NULL, NULL);
    dm_free(idx);
    *out = lines;
    *n_out = nl;
    return st;
}

void dm_sweep_lines_free(dm_sweep_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dm_free(lines[i].axes_json);
        dm_free(lines[i].spec);
    }
    dm_free(lines);
}
