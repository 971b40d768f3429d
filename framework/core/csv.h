/* csv.h — one CSV field written as RFC 4180 says: quoted when it holds a comma, a quote, CR or LF,
 * with its quotes doubled; as it is otherwise. Shared by `difflab query --csv` and tables. */
#ifndef DM_CORE_CSV_H
#define DM_CORE_CSV_H

#include <stdio.h>

void dm_csv_put(FILE *out, const char *s);

#endif
