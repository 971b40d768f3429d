/* spec_value.c — one value of the spec read into an options struct: the YAML scalar checked
 * against its param's type (int, real, bool, string, choice, reals) and range. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "io/spec_internal.h"
#include "io/yaml_tree.h"

void dm_spec_fmt_num(double x, char buf[40])
{
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, 40, "%.0f", x);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 40, "%.*g", p, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* YAML 1.2 core schema: an int is [-+]?[0-9]+ (we take decimal only). */
static bool int_syntax(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* YAML 1.2 core float without the .inf / .nan words: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)
 * ([eE][-+]?[0-9]+)? — checked before strtod, which would also take hex, "infinity", ... */
static bool real_syntax(const char *s)
{
    int digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool inf_nan_word(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '.')
        s++;
    return strcasecmp(s, "inf") == 0 || strcasecmp(s, "nan") == 0 || strcasecmp(s, "infinity") == 0;
}

static bool has_bounds(const dm_param_desc *p)
{
    return !(p->min == 0 && p->max == 0);
}

static dm_status check_range(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, double x)
{
    if (!has_bounds(p) || (x >= p->min && x <= p->max))
        return DM_OK;
    char lo[40], hi[40];
    dm_spec_fmt_num(p->min, lo);
    dm_spec_fmt_num(p->max, hi);
    return dm_spec_bad(err, v, "%s: %s is out of range [%s, %s]", key, v->text, lo, hi);
}

static dm_status get_real(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, double *out)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR || v->quoted || dm_ytree_is_null(v))
        return dm_spec_bad(err, v, "%s: expected a real number, got %s", key, dm_spec_got(v, g, sizeof g));
    if (inf_nan_word(v->text))
        return dm_spec_bad(err, v, "%s: expected a finite real number, got '%s'", key, v->text);
    if (!real_syntax(v->text))
        return dm_spec_bad(err, v, "%s: expected a real number, got %s", key, dm_spec_got(v, g, sizeof g));
    double x = strtod(v->text, NULL);
    if (!isfinite(x))
        return dm_spec_bad(err, v, "%s: %s is too large for a real number", key, v->text);
    *out = x;
    return check_range(err, v, key, p, x);
}

static dm_status get_int(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, int64_t *out)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR || v->quoted || !int_syntax(v->text))
        return dm_spec_bad(err, v, "%s: expected an integer, got %s", key, dm_spec_got(v, g, sizeof g));
    errno = 0;
    long long x = strtoll(v->text, NULL, 10);
    if (errno == ERANGE)
        return dm_spec_bad(err, v, "%s: %s is too large for an integer", key, v->text);
    *out = x;
    return check_range(err, v, key, p, (double)x);
}

static dm_status get_bool(char *err, const dm_ynode *v, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
    char g[96];
    for (int i = 0; v->kind == DM_Y_SCALAR && !v->quoted && i < 3; i++) {
        if (strcmp(v->text, yes[i]) == 0 || strcmp(v->text, no[i]) == 0) {
            *out = strcmp(v->text, yes[i]) == 0;
            return DM_OK;
        }
    }
    return dm_spec_bad(err, v, "%s: expected true or false, got %s", key, dm_spec_got(v, g, sizeof g));
}

static dm_status get_choice(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p, int *out)
{
    char g[96], valid[512];
    size_t used = 0;
    valid[0] = '\0';
    if (!p->choices)
        return dm_err(err, DM_E_INTERNAL, "option table: %s is a choice without choices", key);
    for (int i = 0; p->choices[i]; i++) {
        if (v->kind == DM_Y_SCALAR && strcmp(v->text, p->choices[i]) == 0) {
            *out = i;
            return DM_OK;
        }
        int w = snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", p->choices[i]);
        used += w > 0 && (size_t)w < sizeof valid - used ? (size_t)w : 0;
    }
    if (v->kind != DM_Y_SCALAR)
        return dm_spec_bad(err, v, "%s: expected one of %s, got %s", key, valid, dm_spec_got(v, g, sizeof g));
    return dm_spec_bad(err, v, "%s: unknown choice %s; valid: %s", key, dm_spec_got(v, g, sizeof g), valid);
}

static dm_status get_str(char *err, const dm_ynode *v, const char *key, char *dst)
{
    char g[96];
    if (v->kind != DM_Y_SCALAR)
        return dm_spec_bad(err, v, "%s: expected a string, got %s", key, dm_spec_got(v, g, sizeof g));
    if (v->len >= DM_OPT_STR_MAX)
        return dm_spec_bad(err, v, "%s: string is longer than %d bytes", key, DM_OPT_STR_MAX - 1);
    if (memchr(v->text, '\0', v->len))
        return dm_spec_bad(err, v, "%s: string contains a NUL character", key);
    memset(dst, 0, DM_OPT_STR_MAX);
    memcpy(dst, v->text, v->len);
    return DM_OK;
}

/* A sequence of numbers, or of equal-length sequences of numbers (rows, flattened row-major). */
static dm_status get_reals(char *err, const dm_ynode *v, const char *key, const dm_param_desc *p,
                           dm_reals *out)
{
    char g[96], ek[DM_SPEC_KEY_MAX + 48];
    dm_status st = DM_OK;
    double *a = NULL;
    size_t rows = 0, cols = v->n, n = v->n;
    if (v->kind != DM_Y_SEQ)
        return dm_spec_bad(err, v, "%s: expected a sequence of numbers, got %s", key,
                           dm_spec_got(v, g, sizeof g));
    if (v->n && v->item[0]->kind == DM_Y_SEQ) {
        rows = v->n;
        cols = v->item[0]->n;
        for (size_t r = 0; r < rows; r++) {
            const dm_ynode *row = v->item[r];
            if (row->kind != DM_Y_SEQ)
                return dm_spec_bad(err, row, "%s[%zu]: expected a sequence of numbers (a row), got %s", key,
                                   r, dm_spec_got(row, g, sizeof g));
            if (row->n == 0)
                return dm_spec_bad(err, row, "%s[%zu]: a row may not be empty", key, r);
            if (row->n != cols)
                return dm_spec_bad(err, row, "%s: rows of different lengths (%zu and %zu)", key, cols,
                                   row->n);
        }
        n = rows * cols;
    }
    if (n && !(a = dm_malloc(n * sizeof *a)))
        return dm_err(err, DM_E_NOMEM, "out of memory reading %s", key);
    for (size_t k = 0; k < n; k++) {
        const dm_ynode *e = rows ? v->item[k / cols]->item[k % cols] : v->item[k];
        if (rows)
            snprintf(ek, sizeof ek, "%s[%zu][%zu]", key, k / cols, k % cols);
        else
            snprintf(ek, sizeof ek, "%s[%zu]", key, k);
        if (e->kind != DM_Y_SCALAR) {
            st = dm_spec_bad(err, e, "%s: expected a number, got %s", ek, dm_spec_got(e, g, sizeof g));
            goto out;
        }
        if ((st = get_real(err, e, ek, p, &a[k])) != DM_OK)
            goto out;
    }
    *out = (dm_reals){a, n, rows};
    a = NULL;
out:
    dm_free(a);
    return st;
}

/* Parses v into the options struct; frees a REALS array it replaces. */
dm_status dm_spec_set_param(char *err, const char *key, const dm_param_desc *p, const dm_ynode *v, void *opts)
{
    char *dst = (char *)opts + p->offset;
    dm_status st = DM_OK;
    switch (p->type) {
    case DM_OPT_INT: {
        int64_t x = 0;
        if ((st = get_int(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_REAL: {
        double x = 0;
        if ((st = get_real(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_BOOL: {
        bool x = false;
        if ((st = get_bool(err, v, key, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_STR:
        st = get_str(err, v, key, dst);
        break;
    case DM_OPT_CHOICE: {
        int x = 0;
        if ((st = get_choice(err, v, key, p, &x)) == DM_OK)
            memcpy(dst, &x, sizeof x);
        break;
    }
    case DM_OPT_REALS: {
        dm_reals x = {0}, old;
        if ((st = get_reals(err, v, key, p, &x)) == DM_OK) {
            memcpy(&old, dst, sizeof old);
            dm_free(old.v);
            memcpy(dst, &x, sizeof x);
        }
        break;
    }
    default:
        st = dm_err(err, DM_E_INTERNAL, "option table: %s has an unknown type", key);
    }
    return st;
}

/* A value's text as YAML (an override's value, a table default); empty text is a null scalar. */
dm_status dm_spec_parse_value(const char *text, const char *label, dm_ynode **out, char *err)
{
    dm_status st = dm_ytree_parse(text, strlen(text), label, false, out, err);
    if (st == DM_OK && !*out && !(*out = dm_ytree_new_scalar(label, 0, 0, "", false)))
        st = dm_err(err, DM_E_NOMEM, "out of memory reading %s", label);
    return st;
}

/* The default text is parsed like user input, so the table and the spec cannot disagree; a
 * default that does not parse is a bug in the table, not the user's fault. */
dm_status dm_spec_set_default(char *err, const char *key, const dm_param_desc *p, void *opts)
{
    const char *def = p->def ? p->def : p->type == DM_OPT_STR ? "" : p->type == DM_OPT_REALS ? "[]" : NULL;
    dm_ynode *v = NULL;
    dm_status st = DM_OK;
    char label[DM_SPEC_KEY_MAX + 16];   /* the value's origin, in its messages */
    if (!def) {
        st = dm_err(err, DM_E_INTERNAL, "option table: %s has no default", key);
        goto out;
    }
    snprintf(label, sizeof label, "the default of %s", key);
    if ((st = dm_spec_parse_value(def, label, &v, err)) == DM_OK)
        st = dm_spec_set_param(err, key, p, v, opts);
    if (st == DM_E_INPUT) {
        char msg[DM_ERR_SIZE];
        snprintf(msg, sizeof msg, "%s", err ? err : "");
        st = dm_err(err, DM_E_INTERNAL, "option table: bad default '%s' of %s (%s)", def, key, msg);
    }
out:
    dm_ytree_free(v);
    return st;
}
