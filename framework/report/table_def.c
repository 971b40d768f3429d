/* table_def.c — a table definition from command-line options and YAML files: each option checked
 * and parsed into dm_table_def as it is set, so a bad one is reported where it was given. */
#include "report/table_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/yaml_tree.h"

const char *const dm_table_opt_names[DM_TOPT_COUNT] = {
    "sweep", "rows", "cols", "metric", "where", "agg", "err", "format", "sampler", "nfe", "settings",
    "merge", "floor",
};
const char *const dm_table_agg_names[4] = {"last", "mean", "min", "max"};

#define DEF_FILE_MAX (1u << 20)

void dm_table_def_init(dm_table_def *d)
{
    memset(d, 0, sizeof *d);
    d->agg = DM_TABLE_LAST;
    d->errbar = DM_TABLE_STD;
    d->fmt = DM_TABLE_MD;
}

static void clear_list(char **v, int *n)
{
    for (int i = 0; i < *n; ++i) {
        dm_free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void dm_table_def_free(dm_table_def *d)
{
    if (!d)
        return;
    dm_free(d->sweep);
    dm_free(d->col);
    dm_free(d->metric);
    dm_free(d->where);
    dm_free(d->settings);
    clear_list(d->rows, &d->n_rows);
    clear_list(d->samplers, &d->n_samplers);
    clear_list(d->merges, &d->n_merges);
    for (int i = 0; i < DM_TOPT_COUNT; ++i)
        dm_free(d->origin[i]);
    dm_table_def_init(d);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The comma-separated items of `value`, trimmed, into v (owned); an empty item is an error. */
static dm_status split_list(const char *value, char **v, int *n, int max, const char *origin,
                            char *err)
{
    const char *p = value;
    *n = 0;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_blank(*a))
            ++a;
        while (b > a && is_blank(b[-1]))
            --b;
        if (a == b)
            return dm_err(err, DM_E_INPUT, "%s: empty item in the list '%s'", origin, value);
        if (*n == max)
            return dm_err(err, DM_E_INPUT, "%s: more than %d items in '%s'", origin, max, value);
        char *s = dm_malloc((size_t)(b - a) + 1);
        if (!s)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        memcpy(s, a, (size_t)(b - a));
        s[b - a] = '\0';
        v[(*n)++] = s;
        if (!*end)
            return DM_OK;
        p = end + 1;
    }
}

int dm_table_all_blank(const char *s)
{
    while (*s && is_blank(*s))
        ++s;
    return *s == '\0';
}

/* A copy of s without its surrounding blanks (NULL if only blanks; *nomem on failure). */
static char *trimmed(const char *s, int *nomem)
{
    while (is_blank(*s))
        ++s;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        --n;
    *nomem = 0;
    if (!n)
        return NULL;
    char *t = dm_malloc(n + 1);
    if (!t) {
        *nomem = 1;
        return NULL;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    return t;
}

static int choice(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; ++i)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

/* A list option: replaced by the comma-separated value (cleared by a blank one). */
static dm_status set_list(const char *value, char **v, int *n, int max, const char *origin, char *err)
{
    clear_list(v, n);
    if (dm_table_all_blank(value))
        return DM_OK;
    const dm_status st = split_list(value, v, n, max, origin, err);
    if (st)
        clear_list(v, n);
    return st;
}

dm_status dm_table_def_set(dm_table_def *d, const char *name, const char *value,
                           const char *origin, char *err)
{
    int opt = -1;
    for (int i = 0; i < DM_TOPT_COUNT; ++i)
        if (!strcmp(name, dm_table_opt_names[i]))
            opt = i;
    if (opt < 0)
        return dm_err(err, DM_E_INPUT, "%s: unknown table option '%s' (valid: sweep, rows, cols, "
                      "metric, where, agg, err, format, sampler, nfe, settings, merge, floor)", origin, name);
    if (!value)
        value = "";
    char *o = dm_strdup(origin);
    if (!o)
        return dm_err(err, DM_E_NOMEM, "out of memory");
    dm_free(d->origin[opt]);
    d->origin[opt] = o;
    int nomem = 0;
    char *text = NULL;
    dm_status st = DM_OK;
    switch (opt) {
    case DM_TOPT_SWEEP:
    case DM_TOPT_METRIC:
    case DM_TOPT_COLS:
    case DM_TOPT_SETTINGS: {
        char **dst = opt == DM_TOPT_SWEEP ? &d->sweep : opt == DM_TOPT_METRIC ? &d->metric
                     : opt == DM_TOPT_COLS ? &d->col : &d->settings;
        /* settings is a substring: kept as given (blanks may matter inside JSON) */
        if (opt == DM_TOPT_SETTINGS) {
            text = *value ? dm_strdup(value) : NULL;
            nomem = *value && !text;
        } else {
            text = trimmed(value, &nomem);
        }
        if (nomem)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        if (opt == DM_TOPT_COLS && text && strchr(text, ',')) {
            dm_free(text);
            return dm_err(err, DM_E_INPUT, "%s: one column key only, got '%s' (row keys go to "
                          "rows)", origin, value);
        }
        dm_free(*dst);
        *dst = text;
        return DM_OK;
    }
    case DM_TOPT_WHERE:
        text = dm_table_all_blank(value) ? NULL : dm_strdup(value);
        if (!dm_table_all_blank(value) && !text)
            return dm_err(err, DM_E_NOMEM, "out of memory");
        dm_free(d->where);
        d->where = text;
        return DM_OK;
    case DM_TOPT_ROWS:
        return set_list(value, d->rows, &d->n_rows, DM_TABLE_MAX_KEYS, origin, err);
    case DM_TOPT_SAMPLER:
        return set_list(value, d->samplers, &d->n_samplers, DM_TABLE_MAX_LIST, origin, err);
    case DM_TOPT_MERGE:
        return set_list(value, d->merges, &d->n_merges, DM_TABLE_MAX_KEYS, origin, err);
    case DM_TOPT_FLOOR: {
        /* a flag on the command line (--floor), a boolean in a file (floor: true) */
        static const char *const words[] = {"", "false", "no", "0", "true", "yes", "1"};
        int k = choice(value, words, 7);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not a boolean (true or false)", origin,
                          value);
        d->floor = k >= 4;
        return DM_OK;
    }
    case DM_TOPT_NFE: {
        char *items[DM_TABLE_MAX_LIST];
        int n = 0;
        d->n_nfes = 0;
        if (dm_table_all_blank(value))
            return DM_OK;
        if ((st = split_list(value, items, &n, DM_TABLE_MAX_LIST, origin, err)))
            goto nfe_out;
        for (int i = 0; i < n; ++i) {
            char *end;
            errno = 0;
            long long x = strtoll(items[i], &end, 10);
            if (*end || errno || x < 0) {
                st = dm_err(err, DM_E_INPUT, "%s: '%s' is not a number of function evaluations "
                            "(a non-negative integer)", origin, items[i]);
                d->n_nfes = 0;
                goto nfe_out;
            }
            d->nfes[d->n_nfes++] = x;
        }
    nfe_out:
        clear_list(items, &n);
        return st;
    }
    case DM_TOPT_AGG: {
        int k = choice(value, dm_table_agg_names, 4);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of last, mean, min, max", origin,
                          value);
        d->agg = (dm_table_agg)k;
        return DM_OK;
    }
    case DM_TOPT_ERR: {
        int k = choice(value, (const char *const[]){"std", "sem"}, 2);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of std, sem", origin, value);
        d->errbar = (dm_table_errbar)k;
        return DM_OK;
    }
    default: { /* DM_TOPT_FORMAT */
        int k = choice(value, (const char *const[]){"md", "markdown", "latex", "tex", "csv", "html"}, 6);
        if (k < 0)
            return dm_err(err, DM_E_INPUT, "%s: '%s' is not one of md, latex, csv, html", origin, value);
        d->fmt = k < 2 ? DM_TABLE_MD : k < 4 ? DM_TABLE_LATEX : k < 5 ? DM_TABLE_CSV : DM_TABLE_HTML;
        return DM_OK;
    }
    }
}

/* A definition file: a missing or unreadable one is bad input (exit 2), as a bad option is. */
static dm_status read_text(const char *path, char **out, size_t *len_out, char *err)
{
    dm_status st = dm_read_file(path, DEF_FILE_MAX, out, len_out, err);
    if (st && st != DM_E_NOMEM) {
        dm_err_prefix(err, "--def");
        st = DM_E_INPUT;
    }
    return st;
}

dm_status dm_table_def_load(dm_table_def *d, const char *path, char *err)
{
    char *text = NULL, *joined = NULL;
    size_t len = 0;
    dm_ynode *root = NULL;
    dm_status st;
    if ((st = read_text(path, &text, &len, err)) ||
        (st = dm_ytree_parse(text, len, path, true, &root, err)))
        goto out;
    if (!root || root->kind != DM_Y_MAP) {
        st = dm_err(err, DM_E_INPUT, "%s: a table definition is a mapping of options (rows, cols, "
                    "metric, ...)", path);
        goto out;
    }
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const dm_ynode *k = root->item[i], *v = root->item[i + 1];
        char where[512], origin[700];
        dm_ytree_where(v, where, sizeof where);
        snprintf(origin, sizeof origin, "%s: %s", where, k->kind == DM_Y_SCALAR ? k->text : "?");
        if (k->kind != DM_Y_SCALAR) {
            st = dm_err(err, DM_E_INPUT, "%s: a key must be a plain name", where);
            goto out;
        }
        if (v->kind == DM_Y_MAP) {
            st = dm_err(err, DM_E_INPUT, "%s: expected a value or a list, got a mapping", origin);
            goto out;
        }
        const char *value;
        if (v->kind == DM_Y_SCALAR) {
            value = dm_ytree_is_null(v) ? "" : v->text;
        } else {
            size_t n = 1;
            for (size_t j = 0; j < v->n; ++j) {
                if (v->item[j]->kind != DM_Y_SCALAR) {
                    st = dm_err(err, DM_E_INPUT, "%s: a list of plain values is expected", origin);
                    goto out;
                }
                n += v->item[j]->len + 1;
            }
            dm_free(joined);
            if (!(joined = dm_malloc(n))) {
                st = dm_err(err, DM_E_NOMEM, "out of memory");
                goto out;
            }
            joined[0] = '\0';
            for (size_t j = 0; j < v->n; ++j) {
                if (j)
                    strcat(joined, ",");
                strcat(joined, v->item[j]->text);
            }
            value = joined;
        }
        if ((st = dm_table_def_set(d, k->text, value, origin, err)))
            goto out;
    }
out:
    dm_ytree_free(root);
    dm_free(text);
    dm_free(joined);
    return st;
}
