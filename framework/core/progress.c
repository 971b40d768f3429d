#include "core/progress.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

double dm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static dm_progress_mode resolve(dm_progress_mode mode, FILE *out)
{
    if (mode == DM_PROG_AUTO)
        mode = isatty(fileno(out)) ? DM_PROG_BAR : DM_PROG_LINES;
    return mode;
}

void dm_progress_init(dm_progress *p, dm_progress_mode mode, FILE *out, const char *id, int64_t start,
                      int64_t total, int64_t every)
{
    *p = (dm_progress){ .mode = resolve(mode, out), .out = out, .id = id, .start = start, .total = total,
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
        fprintf(p->out, "%s%sstep %lld/%lld  loss %.4f  %.1f steps/s  ETA %s\n", p->id ? p->id : "",
                p->id ? ": " : "", (long long)step, (long long)p->total, loss, rate, eta);
    }
    fflush(p->out);
    p->last_draw = now;
}

void dm_progress_done(dm_progress *p)
{
    if (p->mode == DM_PROG_BAR && p->drawn)
        fputc('\n', p->out);
}

/* final: 0 a progress line, 1 the end, 2 the end of a phase that failed. */
static void phase_line(dm_phase *p, int final)
{
    const double el = dm_now() - p->t0;
    char eta[32] = "";
    if (!final && p->total > 0 && p->done > 0) {
        char e[24];
        fmt_eta(el * (double)(p->total - p->done) / (double)p->done, e, sizeof e);
        snprintf(eta, sizeof eta, "  ETA %s", e);
    }
    char done[96];
    if (p->total > 0 && !final)
        snprintf(done, sizeof done, "%.0f%% (%lld/%lld %s)", 100.0 * (double)p->done / (double)p->total,
                 (long long)p->done, (long long)p->total, p->unit);
    else
        snprintf(done, sizeof done, "%lld %s", (long long)p->done, p->unit);
    const char *id = p->id ? p->id : "", *sep = p->id ? ": " : "";
    if (p->mode == DM_PROG_BAR) {
        fprintf(p->out, "\r%s: %s  %.1f s%s   ", p->what, done, el, eta);
        if (final)
            fputc('\n', p->out);
        p->drawn = !final;
    } else if (final && !p->done) {
        fprintf(p->out, "%s%s%s: %s %.1f s\n", id, sep, p->what, final == 2 ? "stopped after" : "done in", el);
    } else if (final) {
        fprintf(p->out, "%s%s%s: %s %.1f s (%s)\n", id, sep, p->what, final == 2 ? "stopped after" : "done in", el,
                done);
    } else {
        fprintf(p->out, "%s%s%s: %s  %.1f s%s\n", id, sep, p->what, done, el, eta);
    }
    fflush(p->out);
    p->last = dm_now();
}

void dm_phase_begin(dm_phase *p, dm_progress_mode mode, FILE *out, const char *id, int64_t total,
                    const char *unit, const char *fmt, ...)
{
    dm_phase_end(p);
    *p = (dm_phase){ .mode = resolve(mode, out), .out = out, .id = id, .unit = unit, .total = total,
                     .t0 = dm_now(), .active = 1 };
    p->last = p->t0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->what, sizeof p->what, fmt, ap);
    va_end(ap);
    if (p->mode == DM_PROG_LINES) {
        fprintf(out, "%s%s%s ...\n", id ? id : "", id ? ": " : "", p->what);
        fflush(out);
    }
}

void dm_phase_add(dm_phase *p, int64_t k)
{
    if (!p->active)
        return;
    p->done += k;
    if (p->mode == DM_PROG_NONE)
        return;
    const double since = dm_now() - p->last;
    if ((p->mode == DM_PROG_BAR && since >= 0.1) || (p->mode == DM_PROG_LINES && since >= DM_PHASE_EVERY))
        phase_line(p, 0);
}

void dm_phase_end(dm_phase *p)
{
    dm_phase_close(p, 1);
}

void dm_phase_close(dm_phase *p, int ok)
{
    if (!p->active)
        return;
    if (p->mode != DM_PROG_NONE)
        phase_line(p, ok ? 1 : 2);
    p->active = 0;
}
