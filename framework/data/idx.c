/* idx.c — IDX files of unsigned bytes through zlib's gzread (plain files read as they are). */
#include "data/idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"

/* Read up to n bytes; the count read (short at the end of the data or on an error). */
static size_t read_all(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        const size_t part = n - got < (size_t)INT_MAX / 2 ? n - got : (size_t)INT_MAX / 2;
        const int r = gzread(f, (unsigned char *)buf + got, (unsigned)part);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* After a short read: zlib's own error (a damaged stream, a failed read) as DM_E_IO, or, when
 * the data simply ended (a cut file, a header promising more), DM_E_INPUT with `what`. */
static dm_status short_read(gzFile f, const char *path, const char *what, char *err)
{
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    const size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2; /* zlib's message starts with the path */
    if (code == Z_ERRNO)
        return dm_err(err, DM_E_IO, "%s: read failed: %s", path, strerror(errno));
    if (code != Z_OK && code != Z_BUF_ERROR)
        return dm_err(err, DM_E_IO, "%s: damaged gzip data (zlib: %s)", path, msg);
    return dm_err(err, DM_E_INPUT, "%s: truncated: %s", path, what);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

dm_status dm_idx_read(const char *path, int rank, dm_idx *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (rank < 1 || rank > DM_IDX_MAX_RANK)
        return dm_err(err, DM_E_INTERNAL, "dm_idx_read: rank %d (1..%d)", rank, DM_IDX_MAX_RANK);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return dm_err(err, errno == ENOENT ? DM_E_NOTFOUND : DM_E_IO, "%s: cannot open: %s", path,
                      errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 18);
    dm_status st = DM_OK;
    char what[160];
    unsigned char head[4 + 4 * DM_IDX_MAX_RANK];
    const size_t head_n = 4 + 4 * (size_t)rank;
    size_t got = read_all(f, head, 4);
    if (got == 4 && (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != rank)) {
        st = dm_err(err, DM_E_INPUT,
                    "%s: not an IDX file of unsigned bytes with %d dimension%s: magic 0x%02x%02x%02x%02x, "
                    "want 0x000008%02x",
                    path, rank, rank > 1 ? "s" : "", head[0], head[1], head[2], head[3], (unsigned)rank);
        goto out;
    }
    if (got == 4)
        got += read_all(f, head + 4, head_n - 4);
    if (got < head_n) {
        snprintf(what, sizeof what, "the header ends after %zu of its %zu bytes", got, head_n);
        st = short_read(f, path, what, err);
        goto out;
    }
    out->rank = rank;
    out->size = 1;
    int len = 0;
    for (int d = 0; d < rank; d++) {
        out->dims[d] = be32(head + 4 + 4 * d);
        if (out->dims[d] == 0) {
            st = dm_err(err, DM_E_INPUT, "%s: dimension %d of the header is 0", path, d);
            goto out;
        }
        if (out->size > ((size_t)1 << 34) / out->dims[d]) { /* 16 GiB: no IDX file is this large */
            st = dm_err(err, DM_E_INPUT, "%s: the header's dimensions make over 16 GiB of data", path);
            goto out;
        }
        out->size *= out->dims[d];
        len += snprintf(what + len, sizeof what - (size_t)len, "%s%u", d ? " x " : "", out->dims[d]);
    }
    snprintf(what + len, sizeof what - (size_t)len, " = %zu bytes", out->size);
    if (!(out->data = dm_malloc(out->size))) {
        st = dm_err(err, DM_E_NOMEM, "%s: out of memory for %s", path, what);
        goto out;
    }
    got = read_all(f, out->data, out->size);
    if (got < out->size) {
        char why[256];
        snprintf(why, sizeof why, "the header says %s of data; only %zu follow", what, got);
        st = short_read(f, path, why, err);
        goto out;
    }
    /* The end: no more data, and a complete gzip stream (its trailer read and its CRC right). */
    unsigned char extra;
    int code = Z_OK;
    const int r = gzread(f, &extra, 1);
    if (r > 0)
        st = dm_err(err, DM_E_INPUT, "%s: holds more data than its header's %s", path, what);
    else if (r < 0 || (gzerror(f, &code), code != Z_OK))
        st = short_read(f, path, "the gzip stream ends before its trailer", err);
out:;
    const int zc = gzclose(f);
    if (st == DM_OK && zc != Z_OK)
        st = dm_err(err, DM_E_IO, "%s: closing failed (zlib error %d)", path, zc);
    if (st != DM_OK)
        dm_idx_free(out);
    return st;
}

void dm_idx_free(dm_idx *idx)
{
    if (!idx)
        return;
    dm_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
