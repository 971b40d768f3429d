/* fault.c — crash points for tests (fault.h). */
#include "core/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const points[][2] = {
    { "ckpt", "tmp_written" }, { "ckpt", "synced" }, { "ckpt", "renamed" },
    { "run", "tmp_written" },  { "run", "synced" },  { "run", "renamed" },
    { "finish", "before_index" },
};
#define N_POINTS (sizeof points / sizeof *points)
#define KNOWN "ckpt:tmp_written, ckpt:synced, ckpt:renamed, run:tmp_written, run:synced, run:renamed, " \
              "finish:before_index, each with an optional :N (the N-th time in this process, default 1)"

/* DIFFLAB_FAULT, parsed once: the point armed (-1: none) and after how many passes it fires. */
static struct {
    int parsed, point;
    long n, passes;
    dm_status st;
    char msg[DM_ERR_SIZE];
} fault = { .point = -1 };

static dm_status parse(const char *v, char *err)
{
    size_t site_len = strcspn(v, ":");
    const char *phase = v[site_len] ? v + site_len + 1 : "";
    size_t phase_len = strcspn(phase, ":");
    long n = 1;
    if (phase[phase_len]) {
        const char *num = phase + phase_len + 1;
        char *end = NULL;
        n = strtol(num, &end, 10);
        if (*num < '0' || *num > '9' || *end || n < 1)
            return dm_err(err, DM_E_INPUT, "DIFFLAB_FAULT='%s': the count '%s' is not a whole number >= 1", v, num);
    }
    for (size_t i = 0; i < N_POINTS; i++)
        if (strlen(points[i][0]) == site_len && strncmp(v, points[i][0], site_len) == 0 &&
            strlen(points[i][1]) == phase_len && strncmp(phase, points[i][1], phase_len) == 0) {
            fault.point = (int)i;
            fault.n = n;
            return DM_OK;
        }
    return dm_err(err, DM_E_INPUT, "DIFFLAB_FAULT='%s' names no fault point; known: %s", v, KNOWN);
}

static void load(void)
{
    fault.parsed = 1;
    const char *v = getenv("DIFFLAB_FAULT");
    if (v && *v)
        fault.st = parse(v, fault.msg);
}

dm_status dm_fault_check(char *err)
{
    if (!fault.parsed)
        load();
    return fault.st ? dm_err(err, fault.st, "%s", fault.msg) : DM_OK;
}

void dm_fault_point(const char *site, const char *phase)
{
    if (!fault.parsed)
        load();
    if (fault.point < 0 || !site || strcmp(site, points[fault.point][0]) != 0 ||
        strcmp(phase, points[fault.point][1]) != 0 || ++fault.passes != fault.n)
        return;
    fprintf(stderr, "DIFFLAB_FAULT: SIGKILL at %s:%s, pass %ld\n", site, phase, fault.passes);
    fflush(stderr);
    raise(SIGKILL);
}
