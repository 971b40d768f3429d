/* progress.h — progress of a run's long phases: a one-line bar redrawn at most ten times a second
 * on a terminal, or plain log lines otherwise, each line led by the run's id (so the lines of
 * runs interleaved under make -j say whose they are). Writes to the given stream (stderr), never
 * to stdout, so a command's output stays parseable.
 *
 * Training (dm_progress): step, loss, steps/s, ETA, a line every `every` steps (run.log_every).
 * The loss shown is the one recorded: the mean over the steps since the last logged step.
 * Other phases (dm_phase: sampling, likelihoods, metrics): a line when the phase starts, one at
 * most every DM_PHASE_EVERY seconds with the work done (network evaluations of items, out of a
 * total when it is known) and one when it ends with its wall time. */
#ifndef DM_CORE_PROGRESS_H
#define DM_CORE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef enum dm_progress_mode { DM_PROG_AUTO, DM_PROG_BAR, DM_PROG_LINES, DM_PROG_NONE } dm_progress_mode;

typedef struct dm_progress {
    dm_progress_mode mode;   /* resolved: BAR, LINES or NONE */
    FILE *out;
    const char *id;          /* the run's id, leading each line (not owned; may be NULL) */
    int64_t start, total, every;
    double t0, last_draw;
    int drawn;
} dm_progress;

/* Monotonic seconds. */
double dm_now(void);

void dm_progress_init(dm_progress *p, dm_progress_mode mode, FILE *out, const char *id, int64_t start,
                      int64_t total, int64_t every);
/* After finishing step `step` (1-based count of steps done); loss is the mean since the last
 * logged step (what the run records at a log step). */
void dm_progress_update(dm_progress *p, int64_t step, double loss);
/* Ends the bar's line. */
void dm_progress_done(dm_progress *p);

#define DM_PHASE_EVERY 10.0 /* seconds between a phase's lines (log lines; the bar redraws faster) */

typedef struct dm_phase {
    dm_progress_mode mode;   /* resolved; NONE: silent */
    FILE *out;
    const char *id;          /* not owned; may be NULL */
    char what[160];          /* "sampling ddpm, 1000 samples" */
    const char *unit;        /* "network evaluations" */
    int64_t done, total;     /* total 0: not known */
    double t0, last;
    int active, drawn;
} dm_phase;

/* Starts a phase (ending one still open): what (printf format) names it; total is the work
 * expected in `unit`s, 0 when it is not known ahead (an adaptive solver). */
void dm_phase_begin(dm_phase *p, dm_progress_mode mode, FILE *out, const char *id, int64_t total,
                    const char *unit, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* k more units done. No-op when no phase is open. */
void dm_phase_add(dm_phase *p, int64_t k);
/* Ends the open phase (no-op if none) with a line of its wall time. */
void dm_phase_end(dm_phase *p);
/* The same, saying "stopped after" instead of "done in" when !ok (the phase failed). */
void dm_phase_close(dm_phase *p, int ok);

#endif
