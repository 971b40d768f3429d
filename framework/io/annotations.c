/* annotations.c — a run's tags and notes in results/runs/<id>/annotations.yaml (annotations.h). */
#include "io/annotations.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/path.h"
#include "io/atomic.h"
#include "io/yaml_tree.h"

#define FILE_NAME "annotations.yaml"

void dm_annotations_free(dm_annotations *a)
{
    for (size_t i = 0; i < a->n_tags; i++) {
        dm_free(a->tags[i].key);
        dm_free(a->tags[i].value);
    }
    for (size_t i = 0; i < a->n_notes; i++)
        dm_free(a->notes[i].text);
    dm_free(a->tags);
    dm_free(a->notes);
    *a = (dm_annotations){ 0 };
}

static int key_ok(const char *k, size_t n)
{
    if (n == 0 || n > DM_ANNOT_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Sets key to value (value "" removes it), keeping the tags sorted by key. */
static dm_status set_tag(dm_annotations *a, const char *key, size_t kn, const char *value, char *err)
{
    size_t i = 0;
    int cmp = 1;
    for (; i < a->n_tags; i++) {
        cmp = strncmp(a->tags[i].key, key, kn);
        if (cmp == 0 && a->tags[i].key[kn])
            cmp = 1;
        if (cmp >= 0)
            break;
    }
    if (i < a->n_tags && cmp == 0) {
        if (!value[0]) { /* remove */
            dm_free(a->tags[i].key);
            dm_free(a->tags[i].value);
            memmove(a->tags + i, a->tags + i + 1, (a->n_tags - i - 1) * sizeof *a->tags);
            a->n_tags--;
            return DM_OK;
        }
        char *v = dm_strdup(value);
        if (!v)
            return dm_err(err, DM_E_NOMEM, "out of memory for a tag");
        dm_free(a->tags[i].value);
        a->tags[i].value = v;
        return DM_OK;
    }
    if (!value[0])
        return DM_OK;
    dm_annot_tag *t = dm_realloc(a->tags, (a->n_tags + 1) * sizeof *t);
    if (!t)
        return dm_err(err, DM_E_NOMEM, "out of memory for a tag");
    a->tags = t;
    char *k = dm_malloc(kn + 1), *v = dm_strdup(value);
    if (!k || !v) {
        dm_free(k);
        dm_free(v);
        return dm_err(err, DM_E_NOMEM, "out of memory for a tag");
    }
    memcpy(k, key, kn);
    k[kn] = '\0';
    memmove(a->tags + i + 1, a->tags + i, (a->n_tags - i) * sizeof *a->tags);
    a->tags[i] = (dm_annot_tag){ k, v };
    a->n_tags++;
    return DM_OK;
}

static dm_status add_note(dm_annotations *a, const char *time, const char *text, char *err)
{
    dm_annot_note *n = dm_realloc(a->notes, (a->n_notes + 1) * sizeof *n);
    if (!n)
        return dm_err(err, DM_E_NOMEM, "out of memory for a note");
    a->notes = n;
    char *t = dm_strdup(text);
    if (!t)
        return dm_err(err, DM_E_NOMEM, "out of memory for a note");
    snprintf(a->notes[a->n_notes].time, sizeof a->notes[a->n_notes].time, "%s", time);
    a->notes[a->n_notes++].text = t;
    return DM_OK;
}

/* ---- reading ---- */

static dm_status bad(char *err, const dm_ynode *n, const char *what)
{
    char where[512];
    dm_ytree_where(n, where, sizeof where);
    return dm_err(err, DM_E_INPUT, "%s: %s", where, what);
}

static int is_text(const dm_ynode *n)
{
    return n->kind == DM_Y_SCALAR && strlen(n->text) == n->len && n->len <= DM_ANNOT_MAX;
}

static dm_status from_tree(const dm_ynode *root, dm_annotations *a, char *err)
{
    if (root->kind != DM_Y_MAP)
        return bad(err, root, "expected a mapping with tags and notes");
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const dm_ynode *k = root->item[i], *v = root->item[i + 1];
        dm_status st = DM_OK;
        if (strcmp(k->text, "tags") == 0) {
            if (dm_ytree_is_null(v))
                continue;
            if (v->kind != DM_Y_MAP)
                return bad(err, v, "tags: expected a mapping of key: value");
            for (size_t j = 0; j + 1 < v->n && !st; j += 2) {
                const dm_ynode *tk = v->item[j], *tv = v->item[j + 1];
                if (!key_ok(tk->text, strlen(tk->text)))
                    return bad(err, tk, "tags: a key is 1 to 64 of A-Z a-z 0-9 _ . -");
                if (!is_text(tv) || !tv->len)
                    return bad(err, tv, "tags: a value is non-empty text");
                st = set_tag(a, tk->text, strlen(tk->text), tv->text, err);
            }
        } else if (strcmp(k->text, "notes") == 0) {
            if (dm_ytree_is_null(v))
                continue;
            if (v->kind != DM_Y_SEQ)
                return bad(err, v, "notes: expected a sequence of {time, text}");
            for (size_t j = 0; j < v->n && !st; j++) {
                const dm_ynode *m = v->item[j];
                const long kt = m->kind == DM_Y_MAP ? dm_ytree_map_find(m, "time") : -1;
                const long kx = m->kind == DM_Y_MAP ? dm_ytree_map_find(m, "text") : -1;
                if (kt < 0 || kx < 0 || m->n != 4 || !is_text(m->item[kt + 1]) || !is_text(m->item[kx + 1]) ||
                    m->item[kt + 1]->len >= sizeof a->notes[0].time)
                    return bad(err, m, "notes: each note is {time: TEXT, text: TEXT}");
                st = add_note(a, m->item[kt + 1]->text, m->item[kx + 1]->text, err);
            }
        } else {
            return bad(err, k, "unknown key (an annotations file has tags and notes)");
        }
        if (st)
            return st;
    }
    return DM_OK;
}

dm_status dm_annotations_read(const char *dir, dm_annotations *a, char *err)
{
    char path[DM_PATH_SIZE];
    *a = (dm_annotations){ 0 };
    dm_status st = dm_path_fmt(path, sizeof path, err, "%s/" FILE_NAME, dir);
    if (st)
        return st;
    char *buf = NULL;
    size_t len = 0;
    if ((st = dm_read_file(path, 16u << 20, &buf, &len, err)))
        return st == DM_E_NOTFOUND ? DM_OK : st;
    dm_ynode *root = NULL;
    st = dm_ytree_parse(buf, len, path, true, &root, err);
    if (!st && root)
        st = from_tree(root, a, err);
    dm_ytree_free(root);
    dm_free(buf);
    if (st)
        dm_annotations_free(a);
    return st;
}

/* ---- writing ---- */

static int put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

static dm_status write_file(const char *path, const char *id, const dm_annotations *a, char *err)
{
    char *tmp = NULL;
    dm_status st = dm_atomic_tmp_path(path, &tmp, err);
    if (st)
        return st;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = dm_err(err, DM_E_IO, "cannot write %s: %s", tmp, strerror(errno));
        dm_free(tmp);
        return st;
    }
    fprintf(f, "# difflab annotations of run %s (difflab tag, difflab note)\ntags:\n", id);
    for (size_t i = 0; i < a->n_tags; i++) {
        fprintf(f, "  %s: ", a->tags[i].key);
        put_quoted(f, a->tags[i].value);
        fputc('\n', f);
    }
    fputs("notes:\n", f);
    for (size_t i = 0; i < a->n_notes; i++) {
        fputs("  - {time: ", f);
        put_quoted(f, a->notes[i].time);
        fputs(", text: ", f);
        put_quoted(f, a->notes[i].text);
        fputs("}\n", f);
    }
    if (ferror(f) | fclose(f)) {
        dm_atomic_discard(tmp);
        st = dm_err(err, DM_E_IO, "cannot write %s", tmp);
    } else {
        st = dm_atomic_commit(tmp, path, NULL, err);
    }
    dm_free(tmp);
    return st;
}

/* Whether s is valid UTF-8 (what a YAML file must hold). */
static int utf8_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0)
            return 0;
        for (p++; n > 0; n--, p++)
            if ((*p >> 6) != 2)
                return 0;
    }
    return 1;
}

/* The checks of the arguments, before the lock: every problem named, nothing written. */
static dm_status check_args(int n_kv, const char *const *kv, const char *note, char *err)
{
    for (int i = 0; i < n_kv; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq)
            return dm_err(err, DM_E_INPUT, "tag '%s': expected KEY=VALUE (KEY= removes the tag)", kv[i]);
        if (!key_ok(kv[i], (size_t)(eq - kv[i])))
            return dm_err(err, DM_E_INPUT, "tag '%s': a key is 1 to %d of A-Z a-z 0-9 _ . -", kv[i], DM_ANNOT_KEY_MAX);
        if (strlen(eq + 1) > DM_ANNOT_MAX || !utf8_ok(eq + 1))
            return dm_err(err, DM_E_INPUT, "tag '%.*s': the value is longer than %d bytes or not UTF-8 text",
                          (int)(eq - kv[i]), kv[i], DM_ANNOT_MAX);
    }
    if (note && (!note[0] || strlen(note) > DM_ANNOT_MAX || !utf8_ok(note)))
        return dm_err(err, DM_E_INPUT, "note: the text is empty, longer than %d bytes or not UTF-8", DM_ANNOT_MAX);
    return DM_OK;
}

dm_status dm_annotations_update(const char *results, const char *id, const char *dir, int n_kv,
                                const char *const *kv, const char *note, dm_annotations_fn after, void *ctx,
                                dm_annotations *out, char *err)
{
    char lock[DM_PATH_SIZE], locks[DM_PATH_SIZE], path[DM_PATH_SIZE];
    *out = (dm_annotations){ 0 };
    dm_status st = check_args(n_kv, kv, note, err);
    if (st || (st = dm_path_fmt(locks, sizeof locks, err, "%s/locks", results)) || (st = dm_mkdir_p(locks, err)) ||
        (st = dm_path_fmt(lock, sizeof lock, err, "%s/%s.annotations.lock", locks, id)) ||
        (st = dm_path_fmt(path, sizeof path, err, "%s/" FILE_NAME, dir)))
        return st;
    const int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return dm_err(err, DM_E_IO, "cannot open the lock %s: %s", lock, strerror(errno));
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            st = dm_err(err, DM_E_IO, "cannot lock %s: %s", lock, strerror(errno));
            close(fd);
            return st;
        }
    if ((st = dm_annotations_read(dir, out, err)))
        goto out;
    for (int i = 0; i < n_kv && !st; i++) {
        const char *eq = strchr(kv[i], '=');
        st = set_tag(out, kv[i], (size_t)(eq - kv[i]), eq + 1, err);
    }
    if (!st && note) {
        char now[32];
        const time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
        st = add_note(out, now, note, err);
    }
    if (!st)
        st = write_file(path, id, out, err);
    if (!st && after)
        st = after(ctx, out, err);
out:
    close(fd); /* releases the lock */
    if (st)
        dm_annotations_free(out);
    return st;
}
