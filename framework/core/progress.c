#include "core/progress.h"

#include <time.h>
#include <unistd.h>

double dm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dm_progress_init(dm_progress *p, dm_progress_mode mode, FILE *out, int64_t start,
                      int64_t total, int64_t every)
{
    if (mode == DM_PROG_AUTO)
        mode = isatty(fileno(out)) ? DM_PROG_BAR : DM_PROG_LINES;
    *p = (dm_progress){ .mode = mode, .out = out, .start = start, .total = total,
                        .every = every > 0 ? every : 1, .t0 = dm_now() };
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%.0fs", s);
}

void dm_progress_update(dm_progress *p, int64_t step, double loss)
{
    if (p->mode == DM_PROG_NONE)
        return;
    double now = dm_now(), el = now - p->t0;
    int last = step == p->total;
    if (p->mode == DM_PROG_BAR && !last && now - p->last_draw < 0.1)
        return;
    if (p->mode == DM_PROG_LINES && !last && step % p->every)
        return;
    double rate = el > 0 ? (double)(step - p->start) / el : 0.0;
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - step) / rate : -1, eta, sizeof eta);
    if (p->mode == DM_PROG_BAR) {
        enum { W = 24 };
        char bar[W + 1];
        int fill = p->total > 0 ? (int)(W * step / p->total) : W;
        for (int i = 0; i < W; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[W] = 0;
        fprintf(p->out, "\r[%s] step %lld/%lld  loss %.4f  %.1f steps/s  ETA %s   ", bar,
                (long long)step, (long long)p->total, loss, rate, eta);
        p->drawn = 1;
    } else {
        fprintf(p->out, "step %lld/%lld  loss %.4f  %.1f steps/s  ETA %s\n", (long long)step,
                (long long)p->total, loss, rate, eta);
    }
    fflush(p->out);
    p->last_draw = now;
}

void dm_progress_done(dm_progress *p)
{
    if (p->mode == DM_PROG_BAR && p->drawn)
        fputc('\n', p->out);
}
