/* spec_hint.c — the unknown-key error: the closest valid keys ("did you mean"), or the
 * plug-ins that do have the key. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/spec_internal.h"
#include "io/yaml_tree.h"

#define MAX_HINTS 3
#define MAX_CANDIDATES 256

/* Optimal string alignment distance (edits, with adjacent transpositions as one); case is
 * ignored, since "t" for "T" is the same slip as a missing letter. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), d[3][65];
    if (na > 64 || nb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return d[na % 3][nb];
}

typedef struct hint {
    const char *name;
    size_t len; /* a child component is not NUL-terminated at its end */
    size_t dist;
} hint;

static void add_candidate(hint *h, size_t *n, const char *typed, const char *name, size_t len)
{
    char cand[DM_SPEC_KEY_MAX];
    if (*n == MAX_CANDIDATES || len >= DM_SPEC_KEY_MAX)
        return;
    memcpy(cand, name, len);
    cand[len] = '\0';
    for (size_t i = 0; i < *n; i++)
        if (h[i].len == len && strncmp(h[i].name, name, len) == 0)
            return;
    size_t d = edit_distance(typed, cand), lt = strlen(typed), most = lt > len ? lt : len;
    bool sub = (lt >= 3 && strstr(cand, typed)) || (len >= 3 && strstr(typed, cand));
    if (d <= most / 3 + 1 || sub)
        h[(*n)++] = (hint){name, len, d};
}

static int hint_cmp(const void *pa, const void *pb)
{
    const hint *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = strncmp(a->name, b->name, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* "; did you mean: train.lr, train.lr_min?" from the section's params, `type`, child names. */
static void closest_keys(const dm_schema *s, const char *path, const dm_plugin *pl, bool plug,
                         const char *typed, char *buf, size_t size)
{
    hint h[MAX_CANDIDATES];
    size_t n = 0, used = 0, plen = strlen(path);
    buf[0] = '\0';
    for (const dm_param_desc *p = pl ? pl->params : NULL; p && p->name; p++)
        add_candidate(h, &n, typed, p->name, strlen(p->name));
    if (plug)
        add_candidate(h, &n, typed, "type", 4);
    for (size_t i = 0; i < s->n_sections; i++) {
        const char *p = s->sections[i].path;
        if (!p[0] || (plen && (strncmp(p, path, plen) != 0 || p[plen] != '.')))
            continue;
        const char *c = plen ? p + plen + 1 : p;
        add_candidate(h, &n, typed, c, strcspn(c, "."));
    }
    qsort(h, n, sizeof *h, hint_cmp);
    for (size_t i = 0; i < n && i < MAX_HINTS && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s%s%.*s", i ? ", " : "; did you mean: ", path,
                         plen ? "." : "", (int)h[i].len, h[i].name);
        used += w > 0 ? (size_t)w : 0;
    }
    if (n && used < size)
        snprintf(buf + used, size - used, "?");
}

dm_status dm_spec_unknown_key(dm_spec_loader *L, const char *path, const dm_section_desc *d,
                              const dm_plugin *pl, const dm_ynode *key, const dm_ynode *type_node)
{
    char hints[512] = "", other[256] = "", via[300] = "";
    const char *k = key->text, *sep = path[0] ? "." : "";
    if (strcmp(k, "<<") == 0)
        return dm_spec_bad(L->err, key, "%s%s<<: merge keys are not supported; write the keys out", path,
                           sep);
    if (strchr(k, '.'))
        return dm_spec_bad(L->err, key, "unknown key '%s%s%s': write nested mappings, not dotted keys", path,
                           sep, k);
    closest_keys(L->schema, path, pl, d && d->registry, k, hints, sizeof hints);
    if (d && d->registry) {
        /* The key belongs to another plug-in: say so, and whether an override switched type. */
        size_t used = 0;
        for (size_t i = 0; d->registry[i] && used < sizeof other; i++) {
            if (d->registry[i] == pl || !dm_spec_find_param(d->registry[i], k))
                continue;
            int w = snprintf(other + used, sizeof other - used, "%s%s",
                             used ? ", " : " (a key of: ", d->registry[i]->name);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used && used < sizeof other)
            snprintf(other + used, sizeof other - used, ")");
        if (type_node && type_node->line == 0 && type_node->origin != key->origin)
            snprintf(via, sizeof via, ", chosen by %s", type_node->origin);
        return dm_spec_bad(L->err, key, "unknown key '%s%s%s' for %s '%s'%s%s%s", path, sep, k,
                           d->kind ? d->kind : "plug-in", pl->name, via, other, other[0] ? "" : hints);
    }
    return dm_spec_bad(L->err, key, "unknown key '%s%s%s'%s", path, sep, k, hints);
}
