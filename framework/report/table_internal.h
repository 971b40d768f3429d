/* table_internal.h — what the parts of the table module share (table_def.c, table_query.c,
 * table_cells.c, table_render.c); included only by them. Not an API: see table.h. */
#ifndef DM_REPORT_TABLE_INTERNAL_H
#define DM_REPORT_TABLE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "report/table.h"

/* table_def.c: option names by DM_TOPT_*, --agg names by dm_table_agg. */
extern const char *const dm_table_opt_names[DM_TOPT_COUNT];
extern const char *const dm_table_agg_names[4];
int dm_table_all_blank(const char *s);

/* table_query.c. Keys are the row keys then the column key (nk of them). */
int dm_table_is_eval_field(const char *key);
/* A NULL sql is an allocation that failed while building it. */
dm_status dm_table_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err);
/* Checks of the definition against the index: sweep, where, metric, keys; *training is 1 when
 * the metric is a training series. */
dm_status dm_table_check_def(sqlite3 *db, const dm_table_def *d, const char *const *keys, size_t nk,
                             int *training, char *err);
/* The queries (sqlite3_free them); NULL when out of memory. Finished runs: run_id, the keys,
 * count of values reduced, the reduced value. Failed and diverged runs: run_id, the keys. */
char *dm_table_finished_sql(const dm_table_def *d, const char *const *keys, size_t nk, int training);
char *dm_table_failed_sql(const dm_table_def *d, const char *const *keys, size_t nk);

/* table_render.c: the shortest "%.*g" text that reads back to the same double. */
void dm_table_format_real(char *buf, size_t n, double v);

#endif
