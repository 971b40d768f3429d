#include "io/yaml_tree.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"

/* An open sequence or mapping; its anchor is registered only when it is complete, so an alias
 * inside its own anchor ("&a [*a]") is an unknown alias rather than a cycle. */
typedef struct frame {
    dm_ynode *node;
    char *anchor;
} frame;

typedef struct anchor {
    char *name;
    const dm_ynode *node; /* owned by the tree */
} anchor;

typedef struct builder {
    const char *text;
    size_t len;
    const char *origin;
    bool has_lines;
    frame stack[DM_YTREE_MAX_DEPTH];
    int depth;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t n_nodes, n_bytes; /* totals so far, copies included */
    dm_ynode *root;
    int n_docs;
    char *err;
} builder;

static int mark_int(size_t v)
{
    return v >= (size_t)INT_MAX ? INT_MAX : (int)v + 1;
}

static dm_status fail(const builder *b, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static dm_status fail(const builder *b, yaml_mark_t m, const char *fmt, ...)
{
    char msg[DM_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->has_lines)
        return dm_err(b->err, DM_E_INPUT, "%s:%d:%d: %s", b->origin, mark_int(m.line), mark_int(m.column),
                      msg);
    return dm_err(b->err, DM_E_INPUT, "%s: %s", b->origin, msg);
}

static dm_ynode *node_new(dm_ykind kind, const char *origin, int line, int col)
{
    dm_ynode *n = dm_calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->origin = origin;
    n->line = line;
    n->col = col;
    n->n_nodes = 1;
    return n;
}

void dm_ytree_free(dm_ynode *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++)
        dm_ytree_free(node->item[i]);
    dm_free(node->item);
    dm_free(node->text);
    dm_free(node);
}

/* A scalar from `len` bytes (which may include NULs from "\0" escapes). */
static dm_ynode *scalar_new(const char *origin, int line, int col, const char *text, size_t len, bool quoted)
{
    dm_ynode *n = node_new(DM_Y_SCALAR, origin, line, col);
    if (!n)
        return NULL;
    n->text = dm_malloc(len + 1);
    if (!n->text) {
        dm_free(n);
        return NULL;
    }
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->len = len;
    n->quoted = quoted;
    n->n_bytes = len;
    return n;
}

dm_ynode *dm_ytree_new_scalar(const char *origin, int line, int col, const char *text, bool quoted)
{
    return scalar_new(origin, line, col, text, strlen(text), quoted);
}

dm_ynode *dm_ytree_new_map(const char *origin, int line, int col)
{
    return node_new(DM_Y_MAP, origin, line, col);
}

static dm_status push_item(dm_ynode *parent, dm_ynode *child, char *err)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 4;
        dm_ynode **item = dm_realloc(parent->item, cap * sizeof *item);
        if (!item)
            return dm_err(err, DM_E_NOMEM, "out of memory building the YAML tree");
        parent->item = item;
        parent->cap = cap;
    }
    parent->item[parent->n++] = child;
    return DM_OK;
}

long dm_ytree_map_find(const dm_ynode *map, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const dm_ynode *k = map->item[i];
        if (k->len == len && memcmp(k->text, key, len) == 0)
            return (long)i;
    }
    return -1;
}

dm_status dm_ytree_map_add(dm_ynode *map, dm_ynode *key, dm_ynode *value, char *err)
{
    dm_status st = push_item(map, key, err);
    if (st != DM_OK)
        return st;
    st = push_item(map, value, err);
    if (st != DM_OK)
        map->n--; /* give the key back to the caller */
    return st;
}

bool dm_ytree_is_null(const dm_ynode *node)
{
    if (node->kind != DM_Y_SCALAR || node->quoted)
        return false;
    const char *t = node->text;
    return node->len == 0 || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

void dm_ytree_where(const dm_ynode *node, char *buf, size_t size)
{
    if (node->line > 0)
        snprintf(buf, size, "%s:%d:%d", node->origin, node->line, node->col);
    else
        snprintf(buf, size, "%s", node->origin);
}

/* Deep copy for an alias; the copy sits where the alias is, its children where they were. */
static dm_ynode *node_copy(const dm_ynode *src)
{
    dm_ynode *n = src->kind == DM_Y_SCALAR
                      ? scalar_new(src->origin, src->line, src->col, src->text, src->len, src->quoted)
                      : node_new(src->kind, src->origin, src->line, src->col);
    if (!n)
        return NULL;
    if (src->n) {
        n->item = dm_malloc(src->n * sizeof *n->item);
        if (!n->item)
            goto fail;
        n->cap = src->n;
        for (; n->n < src->n; n->n++) {
            n->item[n->n] = node_copy(src->item[n->n]);
            if (!n->item[n->n])
                goto fail;
        }
    }
    n->n_nodes = src->n_nodes;
    n->n_bytes = src->n_bytes;
    n->height = src->height;
    return n;
fail:
    dm_ytree_free(n);
    return NULL;
}

/* "train.lr", "data.means[2]": where the innermost `upto` frames' current children are. */
static void frames_path(const builder *b, int upto, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < upto && used < size; i++) {
        const dm_ynode *p = b->stack[i].node;
        int w;
        if (p->kind == DM_Y_MAP && p->n >= 2)
            w = snprintf(buf + used, size - used, "%s%s", used ? "." : "", p->item[p->n - 2]->text);
        else
            w = snprintf(buf + used, size - used, "[%zu]", p->n ? p->n - 1 : 0);
        used += w > 0 ? (size_t)w : 0;
    }
}

typedef struct keyref {
    const dm_ynode *key;
    size_t idx;
} keyref;

static int keyref_cmp(const void *pa, const void *pb)
{
    const keyref *a = pa, *b = pb;
    size_t n = a->key->len < b->key->len ? a->key->len : b->key->len;
    int c = memcmp(a->key->text, b->key->text, n);
    if (c)
        return c;
    if (a->key->len != b->key->len)
        return a->key->len < b->key->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sorting (not pairwise comparison) keeps a mapping with many keys from taking quadratic time. */
static dm_status check_duplicates(builder *b, const dm_ynode *map, yaml_mark_t m)
{
    size_t n = map->n / 2;
    if (n < 2)
        return DM_OK;
    dm_status st = DM_OK;
    keyref *ref = dm_malloc(n * sizeof *ref);
    if (!ref)
        return dm_err(b->err, DM_E_NOMEM, "out of memory checking duplicate keys");
    for (size_t i = 0; i < n; i++)
        ref[i] = (keyref){map->item[2 * i], i};
    qsort(ref, n, sizeof *ref, keyref_cmp);
    const keyref *first = NULL, *again = NULL;
    for (size_t i = 1; i < n; i++) {
        if (keyref_cmp(&(keyref){ref[i].key, 0}, &(keyref){ref[i - 1].key, 0}) != 0)
            continue;
        size_t j = i - 1; /* the first occurrence begins the run of equal keys */
        while (j > 0 && keyref_cmp(&(keyref){ref[j - 1].key, 0}, &(keyref){ref[i].key, 0}) == 0)
            j--;
        if (!again || ref[i].idx < again->idx) {
            again = &ref[i];
            first = &ref[j];
        }
    }
    if (again) {
        char path[512];
        frames_path(b, b->depth - 1, path, sizeof path);
        const dm_ynode *k = again->key;
        yaml_mark_t at = m;
        at.line = k->line > 0 ? (size_t)k->line - 1 : m.line;
        at.column = k->col > 0 ? (size_t)k->col - 1 : m.column;
        if (b->has_lines)
            st = fail(b, at, "duplicate key '%s%s%s' (first at line %d)", path, path[0] ? "." : "", k->text,
                      first->key->line);
        else
            st = fail(b, at, "duplicate key '%s%s%s'", path, path[0] ? "." : "", k->text);
    }
    dm_free(ref);
    return st;
}

/* Hangs a new node under the open collection (or makes it the root); frees it on failure. */
static dm_status attach(builder *b, dm_ynode *node, yaml_mark_t m)
{
    if (b->depth == 0) {
        b->root = node;
        return DM_OK;
    }
    dm_ynode *parent = b->stack[b->depth - 1].node;
    if (parent->kind == DM_Y_MAP && parent->n % 2 == 0 && node->kind != DM_Y_SCALAR) {
        dm_ytree_free(node);
        return fail(b, m, "a mapping key must be a scalar");
    }
    dm_status st = push_item(parent, node, b->err);
    if (st != DM_OK)
        dm_ytree_free(node);
    return st;
}

static dm_status count(builder *b, size_t nodes, size_t bytes, yaml_mark_t m, const char *what)
{
    if (nodes > DM_YTREE_MAX_NODES - b->n_nodes)
        return fail(b, m, "%s makes the document larger than %d nodes (an alias bomb?)", what,
                    DM_YTREE_MAX_NODES);
    if (bytes > DM_YTREE_MAX_BYTES - b->n_bytes)
        return fail(b, m, "%s makes the document larger than %u bytes of text", what,
                    (unsigned)DM_YTREE_MAX_BYTES);
    b->n_nodes += nodes;
    b->n_bytes += bytes;
    return DM_OK;
}

static dm_status add_anchor(builder *b, char *name, const dm_ynode *node)
{
    if (b->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? 2 * b->cap_anchors : 8;
        anchor *a = dm_realloc(b->anchors, cap * sizeof *a);
        if (!a) {
            dm_free(name);
            return dm_err(b->err, DM_E_NOMEM, "out of memory recording a YAML anchor");
        }
        b->anchors = a;
        b->cap_anchors = cap;
    }
    b->anchors[b->n_anchors++] = (anchor){name, node};
    return DM_OK;
}

static bool scalar_quoted(const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0))
        return true;
    if (tag && (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0 ||
                strcmp(tag, YAML_BOOL_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0))
        return false;
    return ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.style != YAML_ANY_SCALAR_STYLE;
}

static dm_status on_scalar(builder *b, const yaml_event_t *ev)
{
    yaml_mark_t m = ev->start_mark;
    dm_status st = count(b, 1, ev->data.scalar.length, m, "this scalar");
    if (st != DM_OK)
        return st;
    dm_ynode *n = scalar_new(b->origin, b->has_lines ? mark_int(m.line) : 0, mark_int(m.column),
                             (const char *)ev->data.scalar.value, ev->data.scalar.length, scalar_quoted(ev));
    if (!n)
        return dm_err(b->err, DM_E_NOMEM, "out of memory building the YAML tree");
    st = attach(b, n, m);
    if (st != DM_OK || !ev->data.scalar.anchor)
        return st;
    char *name = dm_strdup((const char *)ev->data.scalar.anchor);
    if (!name)
        return dm_err(b->err, DM_E_NOMEM, "out of memory recording a YAML anchor");
    return add_anchor(b, name, n);
}

static dm_status on_start(builder *b, const yaml_event_t *ev, dm_ykind kind)
{
    yaml_mark_t m = ev->start_mark;
    if (b->depth == DM_YTREE_MAX_DEPTH)
        return fail(b, m, "nesting deeper than %d levels", DM_YTREE_MAX_DEPTH);
    dm_status st = count(b, 1, 0, m, "this collection");
    if (st != DM_OK)
        return st;
    dm_ynode *n = node_new(kind, b->origin, b->has_lines ? mark_int(m.line) : 0, mark_int(m.column));
    if (!n)
        return dm_err(b->err, DM_E_NOMEM, "out of memory building the YAML tree");
    st = attach(b, n, m);
    if (st != DM_OK)
        return st;
    const yaml_char_t *a = kind == DM_Y_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    b->stack[b->depth++] = (frame){n, NULL};
    if (a && !(b->stack[b->depth - 1].anchor = dm_strdup((const char *)a)))
        return dm_err(b->err, DM_E_NOMEM, "out of memory recording a YAML anchor");
    return DM_OK;
}

static dm_status on_end(builder *b, const yaml_event_t *ev)
{
    frame *f = &b->stack[b->depth - 1];
    dm_ynode *n = f->node;
    n->n_nodes = 1;
    n->n_bytes = 0;
    n->height = 1;
    for (size_t i = 0; i < n->n; i++) {
        n->n_nodes += n->item[i]->n_nodes;
        n->n_bytes += n->item[i]->n_bytes;
        if (n->item[i]->height + 1 > n->height)
            n->height = n->item[i]->height + 1;
    }
    dm_status st = n->kind == DM_Y_MAP ? check_duplicates(b, n, ev->start_mark) : DM_OK;
    char *name = f->anchor;
    f->anchor = NULL;
    b->depth--;
    if (st != DM_OK) {
        dm_free(name);
        return st;
    }
    return name ? add_anchor(b, name, n) : DM_OK;
}

static dm_status on_alias(builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    yaml_mark_t m = ev->start_mark;
    const dm_ynode *src = NULL;
    for (size_t i = b->n_anchors; i-- > 0 && !src;) /* the latest definition wins */
        if (strcmp(b->anchors[i].name, name) == 0)
            src = b->anchors[i].node;
    if (!src)
        return fail(b, m, "unknown alias '*%s' (no complete anchor '&%s' before it)", name, name);
    if (b->depth + src->height > DM_YTREE_MAX_DEPTH)
        return fail(b, m, "alias '*%s' nests deeper than %d levels", name, DM_YTREE_MAX_DEPTH);
    char what[160];
    snprintf(what, sizeof what, "alias '*%s'", name);
    dm_status st = count(b, src->n_nodes, src->n_bytes, m, what);
    if (st != DM_OK)
        return st;
    dm_ynode *n = node_copy(src);
    if (!n)
        return dm_err(b->err, DM_E_NOMEM, "out of memory expanding alias '*%s'", name);
    n->line = b->has_lines ? mark_int(m.line) : 0;
    n->col = mark_int(m.column);
    return attach(b, n, m);
}

static dm_status parser_error(const builder *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return dm_err(b->err, DM_E_NOMEM, "%s: out of memory in the YAML parser", b->origin);
    if (p->error == YAML_READER_ERROR) {
        /* the reader reports a byte offset only: turn it into a line and column */
        yaml_mark_t m = {0};
        for (size_t i = 0; i < p->problem_offset && i < b->len; i++, m.column++)
            if (b->text[i] == '\n') {
                m.line++;
                m.column = (size_t)-1;
            }
        return fail(b, m, "%s", p->problem ? p->problem : "unreadable text");
    }
    char ctx[256] = "";
    if (p->context && b->has_lines)
        snprintf(ctx, sizeof ctx, " (%s at line %d)", p->context, mark_int(p->context_mark.line));
    else if (p->context)
        snprintf(ctx, sizeof ctx, " (%s)", p->context);
    return fail(b, p->problem_mark, "%s%s", p->problem ? p->problem : "YAML syntax error", ctx);
}

dm_status dm_ytree_parse(const char *text, size_t len, const char *origin, bool has_lines, dm_ynode **out,
                         char *err)
{
    builder b = {.text = text, .len = len, .origin = origin, .has_lines = has_lines, .err = err};
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_parser = false, have_event = false, done = false;
    dm_status st = DM_OK;
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        st = dm_err(err, DM_E_NOMEM, "%s: out of memory starting the YAML parser", origin);
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            st = parser_error(&b, &parser);
            goto out;
        }
        have_event = true;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.n_docs > 1)
                st = fail(&b, ev.start_mark, "more than one YAML document (a spec is one document)");
            break;
        case YAML_SCALAR_EVENT:
            st = on_scalar(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            st = on_start(&b, &ev, DM_Y_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            st = on_start(&b, &ev, DM_Y_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            st = on_end(&b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            st = on_alias(&b, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        have_event = false;
        if (st != DM_OK)
            goto out;
    }
    *out = b.root;
    b.root = NULL;
out:
    if (have_event)
        yaml_event_delete(&ev);
    if (have_parser)
        yaml_parser_delete(&parser);
    for (int i = 0; i < b.depth; i++)
        dm_free(b.stack[i].anchor);
    for (size_t i = 0; i < b.n_anchors; i++)
        dm_free(b.anchors[i].name);
    dm_free(b.anchors);
    dm_ytree_free(b.root);
    return st;
}
