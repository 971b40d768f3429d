/* sweep_grid.c — `difflab sweep --grid SPEC KEY=V1,V2 ... [seeds=N | seeds=A,B,...] [--name NAME]`:
 * a sweep from the command line, Hydra's multirun with difflab's sweeps under it.
 *
 * Every KEY=V1,V2,... is a grid axis, one value included (an axis of one value: adding values
 * later then extends the same sweep). Values are split at the commas outside brackets, braces
 * and quotes, and each is YAML, handed to the spec loader as an override, so `train.lr=1e-3,3e-3`
 * gives two reals and a value of the wrong type is refused naming the key and the value. The
 * axes go in key order, whatever order they are given in. The command line becomes a sweep spec
 * (name, base, grid, seeds), expanded as `difflab sweep FILE` expands a file: the same frozen
 * manifest, make fragment and sweep.yaml (this text) under results/sweeps/<name>/, and the same
 * rules on a second expansion: unchanged is a no-op, more values or seeds extend the sweep
 * append-only, anything else is refused. The default name is the spec's name and the axis keys
 * (`demo-sampler.steps-train.lr`; `demo-grid-<hash of the keys>` when that is too long; with
 * seeds alone `demo-seeds`), so the same grid with more values or seeds is the same sweep. */
#include "train/sweep.h"
#include "train/sweep_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "core/sha256.h"
#include "io/spec.h"
#include "train/schema.h"

#define LABEL "sweep --grid"
#define NAME_MAX_AUTO 100 /* a longer default name becomes <spec>-grid-<hash> */

typedef struct grid_axis {
    const char *arg; /* KEY=V1,V2 as given */
    char key[DM_OPT_STR_MAX];
    size_t n;
    char **vals; /* flow YAML texts */
} grid_axis;

static void axes_free(grid_axis *ax, size_t n)
{
    for (size_t i = 0; ax && i < n; i++) {
        for (size_t j = 0; j < ax[i].n; j++)
            dm_free(ax[i].vals[j]);
        dm_free(ax[i].vals);
    }
    dm_free(ax);
}

/* Length of the value at v: up to the first comma outside brackets, braces and quotes. */
static size_t piece_len(const char *v)
{
    int depth = 0;
    char quote = 0;
    size_t i = 0;
    for (; v[i]; i++) {
        const char c = v[i];
        if (quote) {
            if (c == '\\' && quote == '"' && v[i + 1])
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        } else if (c == ',' && depth == 0) {
            break;
        }
    }
    return i;
}

int dm_sweep_grid_is_list(const char *value)
{
    return value[piece_len(value)] == ',';
}

/* The values of `arg` (after its '=') into a->vals, each parsed as YAML and written back as flow
 * text, as a sweep file's axis value is. */
static dm_status split_values(grid_axis *a, const char *v, char *err)
{
    char label[DM_ERR_SIZE / 2];
    snprintf(label, sizeof label, LABEL ": argument '%.300s'", a->arg);
    for (const char *p = v;; p++) {
        const size_t len = piece_len(p);
        dm_ynode *node = NULL;
        char *piece = dm_malloc(len + 1), **vals = dm_realloc(a->vals, (a->n + 1) * sizeof *vals);
        if (vals)
            a->vals = vals;
        if (!piece || !vals) {
            dm_free(piece);
            return dm_err(err, DM_E_NOMEM, "out of memory");
        }
        memcpy(piece, p, len);
        piece[len] = '\0';
        dm_status st = dm_ytree_parse(piece, len, label, false, &node, err);
        dm_free(piece);
        if (st)
            return st;
        if (!node || (dm_ytree_is_null(node) && len == 0)) {
            dm_ytree_free(node);
            return dm_err(err, DM_E_INPUT, "%s: an empty value (KEY=V1,V2,...: values between commas)", label);
        }
        a->vals[a->n] = dm_sweep_node_text(node);
        dm_ytree_free(node);
        if (!a->vals[a->n++])
            return dm_err(err, DM_E_NOMEM, "out of memory");
        p += len;
        if (!*p)
            return DM_OK;
    }
}

static int key_ok(const char *k)
{
    if (!*k || *k == '.')
        return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_' ||
              *k == '.'))
            return 0;
    return 1;
}

static int axis_cmp(const void *pa, const void *pb)
{
    return strcmp(((const grid_axis *)pa)->key, ((const grid_axis *)pb)->key);
}

/* The default name: the spec's name and the axis keys, or a hash of the keys when too long. */
static dm_status default_name(const char *spec_name, const grid_axis *ax, size_t n, char *name, size_t size,
                              char *err)
{
    size_t used = (size_t)snprintf(name, size, "%s", spec_name);
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(name + used, size - used, "-%s", ax[i].key);
    if (!n && used < size)
        used += (size_t)snprintf(name + used, size - used, "-seeds");
    if (used > NAME_MAX_AUTO || used >= size) {
        char keys[4096] = "", hex[65];
        size_t k = 0;
        for (size_t i = 0; i < n && k < sizeof keys; i++)
            k += (size_t)snprintf(keys + k, sizeof keys - k, "%s\n", ax[i].key);
        dm_sha256_hex(keys, strlen(keys), hex);
        snprintf(name, size, "%.60s-grid-%.10s", spec_name, hex);
    }
    if (!dm_path_name_ok(name))
        return dm_err(err, DM_E_INPUT, LABEL ": the default name '%s' is not a sweep name (" DM_PATH_NAME_RULE
                      "): give one with --name NAME", name);
    return DM_OK;
}

/* The sweep spec of the command line. */
static char *grid_text(const char *name, const char *spec, const grid_axis *ax, size_t n, const grid_axis *seeds)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "# Written by `difflab sweep --grid`: its axes, in key order.\nname: %s\nbase: ", name);
    dm_sweep_put_json_str(f, spec);
    fputc('\n', f);
    if (n)
        fputs("grid:\n", f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %s:\n", ax[i].key);
        for (size_t j = 0; j < ax[i].n; j++)
            fprintf(f, "    - %s\n", ax[i].vals[j]);
    }
    if (seeds && seeds->n == 1)
        fprintf(f, "seeds: %s\n", seeds->vals[0]);
    for (size_t j = 0; seeds && seeds->n > 1 && j < seeds->n; j++)
        fprintf(f, "%s%s%s", j ? ", " : "seeds: [", seeds->vals[j], j + 1 == seeds->n ? "]\n" : "");
    if (fclose(f) != 0)
        return NULL;
    char *out = dm_strdup(buf);
    free(buf);
    return out;
}

dm_status dm_sweep_grid(const char *results, const char *spec, int n_args, const char *const *args, const char *name,
                        char *name_out, size_t name_n, FILE *out, char *err)
{
    grid_axis *ax = dm_calloc((size_t)n_args + 1, sizeof *ax), seeds = {0};
    dm_sweep_def s = {0};
    dm_spec *sp = NULL;
    char auto_name[128];
    size_t n = 0;
    dm_status st = DM_OK;
    if (!ax)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    for (int i = 0; i < n_args && !st; i++) {
        const char *eq = strchr(args[i], '=');
        grid_axis *a = &ax[n];
        a->arg = args[i];
        if (!eq || (size_t)(eq - args[i]) >= sizeof a->key) {
            st = dm_err(err, DM_E_INPUT, LABEL ": '%s' is not KEY=V1,V2,... (an axis) or seeds=N", args[i]);
            break;
        }
        snprintf(a->key, sizeof a->key, "%.*s", (int)(eq - args[i]), args[i]);
        if (!key_ok(a->key)) {
            st = dm_err(err, DM_E_INPUT, LABEL ": '%s' is not a spec key (letters, digits, '_' and '.')", a->key);
            break;
        }
        for (size_t j = 0; j < n && !st; j++)
            if (strcmp(ax[j].key, a->key) == 0)
                st = dm_err(err, DM_E_INPUT, LABEL ": '%s' is given twice (one KEY=V1,V2,... per key)", a->key);
        if (strcmp(a->key, "seeds") == 0 && seeds.arg)
            st = dm_err(err, DM_E_INPUT, LABEL ": seeds is given twice");
        if (st || (st = split_values(a, eq + 1, err)))
            break;
        if (strcmp(a->key, "seeds") == 0) {
            seeds = *a;
            memset(a, 0, sizeof *a);
        } else {
            n++;
        }
    }
    if (!st && !n && !seeds.arg)
        st = dm_err(err, DM_E_INPUT, LABEL ": give the axes as KEY=V1,V2,... (and seeds=N or seeds=A,B,...), e.g. "
                    "difflab sweep --grid SPEC.yaml train.lr=1e-3,3e-3 seeds=3");
    if (st)
        goto out;
    qsort(ax, n, sizeof *ax, axis_cmp);
    /* The spec loads as it is (its own errors first), and gives the default name. */
    if ((st = dm_spec_load_file(&dm_spec_schema, spec, 0, NULL, &sp, err))) {
        dm_err_prefix(err, LABEL);
        goto out;
    }
    if (name && !dm_path_name_ok(name)) {
        st = dm_err(err, DM_E_INPUT, LABEL ": --name '%s': " DM_PATH_NAME_RULE, name);
        goto out;
    }
    if (!name && (st = default_name(((const dm_root_opts *)dm_spec_opts(sp, ""))->name, ax, n, auto_name,
                                    sizeof auto_name, err)))
        goto out;
    char *text = grid_text(name ? name : auto_name, spec, ax, n, seeds.arg ? &seeds : NULL);
    if (!text) {
        st = dm_err(err, DM_E_NOMEM, "out of memory");
        goto out;
    }
    if (!(st = dm_sweep_parse_text(text, LABEL, &s, err)))
        st = dm_sweep_freeze(results, &s, LABEL, name_out, name_n, out, err);
out:
    dm_sweep_def_free(&s);
    dm_spec_free(sp);
    axes_free(ax, (size_t)n_args);
    for (size_t j = 0; j < seeds.n; j++)
        dm_free(seeds.vals[j]);
    dm_free(seeds.vals);
    return st;
}
