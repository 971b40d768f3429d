/* status.h — result codes and caller-owned error messages.
 *
 * Every fallible function returns dm_status and, on failure, writes one human-readable sentence
 * into a caller-owned buffer `char err[DM_ERR_SIZE]` (saying what is wrong and where: file, line,
 * column, key). Library code never exits or aborts on bad input. */
#ifndef DM_CORE_STATUS_H
#define DM_CORE_STATUS_H

#include <stddef.h>

#define DM_ERR_SIZE 1024

typedef enum dm_status {
    DM_OK = 0,
    DM_E_INPUT,       /* bad user input: spec, override, argument, sweep (exit code 2) */
    DM_E_NOMEM,       /* an allocation failed */
    DM_E_IO,          /* file system, HDF5 or SQLite failure */
    DM_E_NOTFOUND,    /* a named run, file or key does not exist */
    DM_E_STATE,       /* not valid in the current state (run unfinished, locked, ...) */
    DM_E_NUMERIC,     /* NaN or Inf in a loss or the parameters: the run diverged */
    DM_E_INTERRUPTED, /* a signal asked the run to stop */
    DM_E_INTERNAL,    /* a bug: an invariant that should hold did not */
} dm_status;

/* Formats the message into err (if err is not NULL) and returns st, so that
 * `return dm_err(err, DM_E_INPUT, "%s:%d: ...", ...)` reads as one statement. */
dm_status dm_err(char *err, dm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message in err (context while unwinding). */
void dm_err_prefix(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *dm_status_name(dm_status st);

/* The process exit code for a status: 0 ok, 2 bad input, 1 otherwise. */
int dm_status_exit_code(dm_status st);

#endif
