/* runlist.c — the columns that list runs (runlist.h). */
#include "report/runlist.h"

#include "io/runstore.h"

const dm_runlist_col dm_runlist_cols[] = {
    { "run_id", "r.run_id", DM_RUNLIST_TEXT },
    { "name", "r.name", DM_RUNLIST_TEXT },
    { "status", "CASE WHEN r.status = 'running' AND NOT run_alive(r.run_id) THEN 'dead' ELSE r.status END",
      DM_RUNLIST_TEXT },
    { "seed", "r.seed", DM_RUNLIST_INT },
    { "sweep", "(SELECT group_concat(sweep, ' ') FROM (SELECT w.sweep FROM sweep_runs w"
               " WHERE w.run_id = r.run_id ORDER BY w.sweep))", DM_RUNLIST_TEXT },
    { "created", "r.created", DM_RUNLIST_TEXT },
    { "wall_s", "r.wall_s", DM_RUNLIST_WALL },
    { "loss", "(SELECT value FROM last_metrics m WHERE m.run_id = r.run_id AND m.key = 'loss')", DM_RUNLIST_NUM },
    { "sampler", "s.sampler", DM_RUNLIST_TEXT },
    { "nfe", "CASE WHEN s.eval_sampler IS s.sampler THEN s.nfe END", DM_RUNLIST_INT },
    { "swd", DM_RUNLIST_MAIN_EVAL("'swd'"), DM_RUNLIST_NUM },
    { "mmd2", DM_RUNLIST_MAIN_EVAL("'mmd2'"), DM_RUNLIST_NUM },
    { "fd", DM_RUNLIST_MAIN_EVAL("'fd'"), DM_RUNLIST_NUM },
};
const size_t dm_runlist_n_cols = sizeof dm_runlist_cols / sizeof dm_runlist_cols[0];

static void sql_run_alive(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *results = sqlite3_user_data(ctx);
    const unsigned char *id = sqlite3_value_text(argv[0]);
    sqlite3_result_int(ctx, id && dm_runstore_is_live(results, (const char *)id));
}

dm_status dm_runlist_register(sqlite3 *db, const char *results, char *err)
{
    if (sqlite3_create_function(db, "run_alive", 1, SQLITE_UTF8, (void *)results, sql_run_alive, NULL, NULL)
        != SQLITE_OK)
        return dm_err(err, DM_E_IO, "cannot register run_alive: %s", sqlite3_errmsg(db));
    return DM_OK;
}
