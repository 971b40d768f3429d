/* spec_override.c — "key.path=value" overrides applied to the YAML tree before validation, so an
 * override is checked exactly like the file's own key.
 *
 * Switching a plug-in section to another plug-in (`sampler.type=ddim` where the spec has
 * `sampler: {type: ddpm, variance: beta}`) drops the section's other keys: they belong to the old
 * plug-in, and the new one starts from its own defaults. The loader applies such switches before
 * every other override (dm_spec_is_type_switch), so `sampler.steps=50 sampler.type=ddim` keeps
 * its steps in either order. Setting the type a section already has changes nothing. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "io/spec_internal.h"
#include "io/yaml_tree.h"

static bool is_plugin_section(const dm_schema *s, const char *path)
{
    long i = dm_spec_find_section(s, path);
    return i >= 0 && s->sections[i].registry;
}

/* Makes the value at item[k+1] of `map` a mapping to descend into: a null becomes {}, a plug-in
 * shorthand `sampler: ddim` becomes {type: ddim}. */
static dm_status descend(dm_spec_loader *L, dm_ynode *map, long k, const char *path, const char *label,
                         dm_ynode **out)
{
    dm_ynode *v = map->item[k + 1], *m = NULL, *t = NULL;
    if (v->kind == DM_Y_MAP) {
        *out = v;
        return DM_OK;
    }
    if (dm_ytree_is_null(v)) {
        v->kind = DM_Y_MAP; /* a null scalar has no items: only its text goes */
        dm_free(v->text);
        v->text = NULL;
        v->len = 0;
        *out = v;
        return DM_OK;
    }
    if (v->kind != DM_Y_SCALAR || !is_plugin_section(L->schema, path))
        return dm_err(L->err, DM_E_INPUT, "%s: cannot set a key under '%s': it is not a mapping", label,
                      path);
    if (!(m = dm_ytree_new_map(v->origin, v->line, v->col)) ||
        !(t = dm_ytree_new_scalar(v->origin, v->line, v->col, "type", false)) ||
        dm_ytree_map_add(m, t, v, NULL) != DM_OK) {
        dm_ytree_free(m);
        dm_ytree_free(t);
        return dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
    }
    map->item[k + 1] = m;
    *out = m;
    return DM_OK;
}

bool dm_spec_is_type_switch(const dm_schema *s, const char *ov)
{
    const char *eq = strchr(ov, '=');
    static const char suffix[] = ".type";
    const size_t n = sizeof suffix - 1;
    if (!eq || (size_t)(eq - ov) <= n || memcmp(eq - n, suffix, n) != 0 || (size_t)(eq - ov) - n >= DM_SPEC_KEY_MAX)
        return false;
    char path[DM_SPEC_KEY_MAX];
    memcpy(path, ov, (size_t)(eq - ov) - n);
    path[(eq - ov) - (long)n] = '\0';
    return is_plugin_section(s, path);
}

/* `map` is the plug-in section `path`, about to get type `val`: when that is another plug-in
 * than the one it has (its `type`, or the section's default), its other keys go. */
static void switch_plugin(const dm_schema *s, dm_ynode *map, const char *path, const dm_ynode *val)
{
    const long i = dm_spec_find_section(s, path);
    if (i < 0 || !s->sections[i].registry || val->kind != DM_Y_SCALAR)
        return;
    const long k = dm_ytree_map_find(map, "type");
    const char *cur = s->sections[i].default_type;
    if (k >= 0)
        cur = map->item[k + 1]->kind == DM_Y_SCALAR ? map->item[k + 1]->text : NULL;
    if (cur && strcmp(cur, val->text) == 0)
        return;
    size_t w = 0;
    for (size_t j = 0; j + 1 < map->n; j += 2) {
        if ((long)j == k) {
            map->item[w++] = map->item[j];
            map->item[w++] = map->item[j + 1];
        } else {
            dm_ytree_free(map->item[j]);
            dm_ytree_free(map->item[j + 1]);
        }
    }
    map->n = w;
}

dm_status dm_spec_apply_override(dm_spec_loader *L, dm_ynode *root, const char *ov, const char *label)
{
    const char *eq = strchr(ov, '=');
    char *key = NULL, path[DM_SPEC_KEY_MAX] = "";
    dm_ynode *val = NULL, *kn = NULL, *cur = root;
    dm_status st = DM_OK;
    if (!eq) {
        st = dm_err(L->err, DM_E_INPUT, "%s: expected KEY=VALUE", label);
        goto out;
    }
    if (!(key = dm_malloc((size_t)(eq - ov) + 1))) {
        st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
        goto out;
    }
    memcpy(key, ov, (size_t)(eq - ov));
    key[eq - ov] = '\0';
    if ((st = dm_spec_parse_value(eq + 1, label, &val, L->err)) != DM_OK)
        goto out;
    for (char *c = key, *dot;; c = dot + 1) {
        dot = strchr(c, '.');
        if (dot)
            *dot = '\0';
        if (!c[0]) {
            st = dm_err(L->err, DM_E_INPUT, "%s: empty component in key '%.*s'", label, (int)(eq - ov), ov);
            goto out;
        }
        char sub[DM_SPEC_KEY_MAX];
        bool fits = dm_spec_join(sub, path, c);
        long k = dm_ytree_map_find(cur, c);
        if (!dot) { /* the last component: set or replace */
            if (strcmp(c, "type") == 0) {
                switch_plugin(L->schema, cur, path, val);
                k = dm_ytree_map_find(cur, c);
            }
            if (!(kn = dm_ytree_new_scalar(label, 0, 0, c, false))) {
                st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
                goto out;
            }
            if (k >= 0) {
                dm_ytree_free(cur->item[k]);
                dm_ytree_free(cur->item[k + 1]);
                cur->item[k] = kn;
                cur->item[k + 1] = val;
            } else if ((st = dm_ytree_map_add(cur, kn, val, L->err)) != DM_OK) {
                goto out;
            }
            kn = val = NULL;
            break;
        }
        if (!fits) { /* no schema key is this long: name what exists */
            st = dm_err(L->err, DM_E_INPUT, "%s: unknown key '%.*s'", label, (int)(eq - ov), ov);
            goto out;
        }
        if (k < 0) {
            dm_ynode *m = dm_ytree_new_map(label, 0, 0);
            if (!m || !(kn = dm_ytree_new_scalar(label, 0, 0, c, false)) ||
                dm_ytree_map_add(cur, kn, m, NULL) != DM_OK) {
                dm_ytree_free(m);
                st = dm_err(L->err, DM_E_NOMEM, "out of memory applying %s", label);
                goto out;
            }
            kn = NULL;
            cur = m;
        } else if ((st = descend(L, cur, k, sub, label, &cur)) != DM_OK) {
            goto out;
        }
        memcpy(path, sub, sizeof path);
    }
out:
    dm_ytree_free(kn);
    dm_ytree_free(val);
    dm_free(key);
    return st;
}
