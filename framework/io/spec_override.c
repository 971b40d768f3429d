/* spec_override.c — "key.path=value" overrides applied to the YAML tree before validation, so an
 * override is checked exactly like the file's own key. */
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
