/* alloc.h — every allocation of difflab goes through these, so that tests can fail the k-th one
 * (as SQLite's test_malloc.c does) and check that each failure ends in a clear error, no leak.
 * dm_free(NULL) is a no-op. Not thread-safe to reconfigure while other threads allocate. */
#ifndef DM_CORE_ALLOC_H
#define DM_CORE_ALLOC_H

#include <stddef.h>

void *dm_malloc(size_t n);
void *dm_calloc(size_t count, size_t size);
void *dm_realloc(void *p, size_t n);
char *dm_strdup(const char *s);
void dm_free(void *p);

/* 64-byte aligned block (for SIMD-friendly parameter and activation buffers); free with dm_free_aligned. */
void *dm_malloc_aligned(size_t n);
void dm_free_aligned(void *p);

/* Test hook: make the k-th allocation from now fail (k >= 1), or disable with k <= 0.
 * Returns the number of allocations made since the last call. */
long dm_alloc_fail_at(long k);

#endif
