#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Fault injection counter: process-wide by nature (like sqlite3_config), touched only by tests. */
static long fail_at = 0;
static long count = 0;

static int should_fail(void)
{
    ++count;
    return fail_at > 0 && count == fail_at;
}

long dm_alloc_fail_at(long k)
{
    long n = count;
    count = 0;
    fail_at = k;
    return n;
}

void *dm_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *dm_calloc(size_t c, size_t s)
{
    if (should_fail())
        return NULL;
    return calloc(c ? c : 1, s ? s : 1);
}

void *dm_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *dm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = dm_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void dm_free(void *p) { free(p); }

void *dm_malloc_aligned(size_t n)
{
    if (should_fail())
        return NULL;
    size_t r = (n + 63) / 64 * 64;
    return aligned_alloc(64, r ? r : 64);
}

void dm_free_aligned(void *p) { free(p); }
