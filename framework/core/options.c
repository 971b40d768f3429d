#include "core/options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

const dm_plugin *dm_registry_find(const dm_plugin *const *registry, const char *name)
{
    for (size_t i = 0; registry && registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

void dm_format_real(double v, char buf[32])
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 32, "%.*g", p, v);
        if (strtod(buf, NULL) == v || isnan(v))
            return;
    }
}

/* A growable string for the JSON writer. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *t)
{
    size_t k = strlen(t);
    if (b->failed)
        return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = (b->cap ? 2 * b->cap : 128) + k;
        char *s = dm_realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, k + 1);
    b->n += k;
}

static void put_json_string(sbuf *b, const char *t)
{
    char esc[8];
    put(b, "\"");
    for (; *t; t++) {
        unsigned char c = (unsigned char)*t;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c, esc[1] = 0;
        }
        put(b, esc);
    }
    put(b, "\"");
}

char *dm_opts_json(const dm_plugin *p, const void *opts)
{
    sbuf b = { 0 };
    char num[32];
    put(&b, "{");
    for (const dm_param_desc *d = p->params; d && d->name; d++) {
        const char *at = (const char *)opts + d->offset;
        if (d != p->params)
            put(&b, ",");
        put_json_string(&b, d->name);
        put(&b, ":");
        switch (d->type) {
        case DM_OPT_INT:
            snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)at);
            put(&b, num);
            break;
        case DM_OPT_REAL:
            dm_format_real(*(const double *)at, num);
            put(&b, num);
            break;
        case DM_OPT_BOOL:
            put(&b, *(const bool *)at ? "true" : "false");
            break;
        case DM_OPT_STR:
            put_json_string(&b, at);
            break;
        case DM_OPT_CHOICE:
            put_json_string(&b, d->choices[*(const int *)at]);
            break;
        case DM_OPT_REALS: {
            const dm_reals *r = (const dm_reals *)at;
            put(&b, "[");
            for (size_t i = 0; i < r->n; i++) {
                dm_format_real(r->v[i], num);
                if (i)
                    put(&b, ",");
                put(&b, num);
            }
            put(&b, "]");
            break;
        }
        }
    }
    put(&b, "}");
    if (b.failed) {
        dm_free(b.s);
        return NULL;
    }
    return b.s;
}
