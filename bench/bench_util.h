/* bench_util.h — what the benchmarks share: medians, and running a PyTorch peer script that
 * writes its figures as JSON. Header-only: each bench program is one .c file. */
#ifndef DM_BENCH_UTIL_H
#define DM_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v (n values), which is sorted in place. */
static inline double median_sort(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A number after "key": in a small JSON text, or -1. */
static inline double json_number(const char *text, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1.0;
}

/* Runs /usr/bin/python3 PEER ARGS --json FILE (its own output to stderr) and reads FILE into
 * buf (size bytes). 0 on success, -1 if the run failed or wrote nothing. */
static inline int run_peer_json(const char *peer, const char *args, char *buf, size_t size)
{
    char cmd[4096], json[] = "/tmp/difflab_peer_XXXXXX";
    int fd = mkstemp(json);
    if (fd < 0)
        return -1;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s --json '%s' >&2", peer, args, json);
    printf("peer: %s\n", cmd);
    fflush(stdout);
    int rc = system(cmd);
    FILE *f = fdopen(fd, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    else
        close(fd);
    unlink(json);
    return rc != 0 || n == 0 ? -1 : 0;
}

#endif
