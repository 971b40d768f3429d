#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

dm_status dm_err(char *err, dm_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, DM_ERR_SIZE, fmt, ap);
        va_end(ap);
    }
    return st;
}

void dm_err_prefix(char *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[DM_ERR_SIZE], old[DM_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err);
    /* Truncation is acceptable for a message; copy by hand to keep -Wformat-truncation quiet. */
    size_t n = strlen(head);
    if (n > DM_ERR_SIZE - 3)
        n = DM_ERR_SIZE - 3;
    memcpy(err, head, n);
    err[n++] = ':';
    err[n++] = ' ';
    size_t m = strlen(old);
    if (m > DM_ERR_SIZE - 1 - n)
        m = DM_ERR_SIZE - 1 - n;
    memcpy(err + n, old, m);
    err[n + m] = '\0';
}

const char *dm_status_name(dm_status st)
{
    switch (st) {
    case DM_OK: return "ok";
    case DM_E_INPUT: return "bad input";
    case DM_E_NOMEM: return "out of memory";
    case DM_E_IO: return "i/o error";
    case DM_E_NOTFOUND: return "not found";
    case DM_E_STATE: return "invalid state";
    case DM_E_NUMERIC: return "diverged";
    case DM_E_INTERRUPTED: return "interrupted";
    case DM_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

int dm_status_exit_code(dm_status st)
{
    switch (st) {
    case DM_OK: return 0;
    case DM_E_INPUT: return 2;
    default: return 1;
    }
}
