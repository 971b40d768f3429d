/* progress.h — training progress: a one-line bar (step, loss, steps/s, ETA) redrawn at most ten
 * times a second on a terminal, or plain log lines every `every` steps otherwise. Writes to the
 * given stream (stderr), never to stdout, so a command's output stays parseable. */
#ifndef DM_CORE_PROGRESS_H
#define DM_CORE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef enum dm_progress_mode { DM_PROG_AUTO, DM_PROG_BAR, DM_PROG_LINES, DM_PROG_NONE } dm_progress_mode;

typedef struct dm_progress {
    dm_progress_mode mode;   /* resolved: BAR, LINES or NONE */
    FILE *out;
    int64_t start, total, every;
    double t0, last_draw;
    int drawn;
} dm_progress;

/* Monotonic seconds. */
double dm_now(void);

void dm_progress_init(dm_progress *p, dm_progress_mode mode, FILE *out, int64_t start,
                      int64_t total, int64_t every);
/* After finishing step `step` (1-based count of steps done) with the given loss. */
void dm_progress_update(dm_progress *p, int64_t step, double loss);
/* Ends the bar's line. */
void dm_progress_done(dm_progress *p);

#endif
