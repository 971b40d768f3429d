/* index_schema.c — the SQL schema of results/index.sqlite (version DM_INDEX_SCHEMA_VERSION), and
 * the steps that put it into a file: creation, migration of an older version, and what later
 * versions of the program added or changed without changing a table (the views, metric_info
 * rows).
 *
 * Kept apart from index.c so the schema reads as one piece. Every statement is idempotent
 * (IF NOT EXISTS / OR IGNORE): dm_ix_create_schema runs the whole text inside one transaction when
 * index.c finds user_version = 0; an index of an older version is brought up to date by
 * dm_ix_migrate_schema (version 2 added the runs.slurm_* columns).
 *
 * Standard deviations are sample standard deviations (n - 1), NULL when n < 2, computed in two
 * passes (mean first, then the sum of squared deviations) to avoid the cancellation of the
 * sum-of-squares formula. sqrt() is one of SQLite's math functions, which Debian's library and
 * sqlite3 shell are built with; dm_ix_ensure_sqrt registers an equivalent on each connection
 * where the library lacks it.
 *
 * The views (group_metrics, group_evals, run_summary, group_summary, students) change without a
 * change to any table: each carries the marker DM_VIEWS_MARK in its SQL, and dm_ix_ensure_views
 * replaces every view of an index that lacks the current marker (an index written by an older
 * difflab, whatever its schema version), or, on a read-only connection, shadows them with TEMP
 * views of the current text (SQLite resolves an unqualified name in temp first). They are kept
 * in a macro of their own, used for both.
 *
 * Replicates are seeds: the group views reduce a group's runs to one value per seed first (the
 * mean of the seed's runs: a `--new` repeat, or a run that differs only in its name, has the
 * same config and seed, hence the same bits), and n counts seeds; `repeats` counts the runs
 * beyond one per seed. A repeat never shrinks a standard deviation. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>

#include "io/index.h"
#include "io/index_internal.h"

/* The views' version, in a comment inside each view's SQL (kept there by SQLite): an index whose
 * views lack it gets them replaced. 2: seeds as replicates (group views), run_summary's main
 * sample set matched on every sampler setting, and its eval_sampler. 3: run_summary's
 * eval_settings (the settings of that set). */
#define DM_VIEWS_MARK "difflab views 3"
#define DM_VIEW_NAMES "'group_metrics', 'group_evals', 'run_summary', 'group_summary', 'students'"

/* The views; TEMP is "" or "TEMP " (see docs/sql.md). Standard deviations over the per-seed values.
 * group_metrics: the last value of each series of each run, one value per (group, seed) (their
 *   mean), then n (seeds with a value), mean and std over the seeds, and repeats.
 * group_evals: the same per (group, metric, sampler, nfe, settings): evals of other sampler
 *   settings (e.g. DDIM eta) are other numbers, grouped apart.
 * run_summary: one row per run with its main params, its final training loss and the evals of
 *   its main sample set: the run's own sampler (sampler.type) with its own settings (every
 *   field of the eval's settings that is a sampler.* param equal to it; else its own steps),
 *   else the first one recorded; never 'noise' nor 'exact'. eval_sampler and eval_settings name
 *   the sampler and settings of that set. nll and vlb: the first recorded.
 * group_summary: one row per group_hash (one config across seeds): counts by status, the seeds
 *   of its finished runs (n) and the finished runs beyond one per seed (repeats), and mean / std
 *   over those seeds (each the mean of its finished runs) of final_loss, swd, mmd2.
 * students: runs with a teacher (consistency distillation) beside their teacher's summary; the
 *   teacher columns are NULL for the analytic teacher (teacher = 'analytic'). */
#define DM_VIEWS(TEMP)                                                                             \
    "CREATE " TEMP "VIEW IF NOT EXISTS group_metrics AS /* " DM_VIEWS_MARK " */\n"                \
    "  WITH v AS (SELECT r.group_hash AS group_hash, r.seed AS seed, l.key AS key,\n"             \
    "                    l.value AS value\n"                                                      \
    "             FROM last_metrics l JOIN runs r ON r.run_id = l.run_id),\n"                     \
    "       s AS (SELECT group_hash, key, seed, count(value) AS runs, avg(value) AS value\n"      \
    "             FROM v GROUP BY group_hash, key, seed),\n"                                      \
    "       m AS (SELECT group_hash, key, count(value) AS n, sum(runs) - count(value) AS repeats,\n" \
    "                    avg(value) AS mean FROM s GROUP BY group_hash, key)\n"                   \
    "  SELECT m.group_hash AS group_hash, m.key AS key, m.n AS n, m.mean AS mean,\n"              \
    "         CASE WHEN m.n < 2 THEN NULL\n"                                                      \
    "              ELSE sqrt(sum((s.value - m.mean) * (s.value - m.mean)) / (m.n - 1)) END AS std,\n" \
    "         m.repeats AS repeats\n"                                                             \
    "  FROM m JOIN s ON s.group_hash IS m.group_hash AND s.key = m.key\n"                         \
    "  GROUP BY m.group_hash, m.key;\n"                                                           \
    "CREATE " TEMP "VIEW IF NOT EXISTS group_evals AS /* " DM_VIEWS_MARK " */\n"                  \
    "  WITH v AS (SELECT r.group_hash AS group_hash, r.seed AS seed, e.metric AS metric,\n"       \
    "                    e.sampler AS sampler, e.nfe AS nfe, e.settings AS settings,\n"           \
    "                    e.value AS value\n"                                                      \
    "             FROM evals e JOIN runs r ON r.run_id = e.run_id),\n"                            \
    "       s AS (SELECT group_hash, metric, sampler, nfe, settings, seed, count(value) AS runs,\n" \
    "                    avg(value) AS value\n"                                                   \
    "             FROM v GROUP BY group_hash, metric, sampler, nfe, settings, seed),\n"           \
    "       m AS (SELECT group_hash, metric, sampler, nfe, settings, count(value) AS n,\n"        \
    "                    sum(runs) - count(value) AS repeats, avg(value) AS mean\n"               \
    "             FROM s GROUP BY group_hash, metric, sampler, nfe, settings)\n"                  \
    "  SELECT m.group_hash AS group_hash, m.metric AS metric, m.sampler AS sampler,\n"            \
    "         m.nfe AS nfe, m.settings AS settings, m.n AS n, m.mean AS mean,\n"                  \
    "         CASE WHEN m.n < 2 THEN NULL\n"                                                      \
    "              ELSE sqrt(sum((s.value - m.mean) * (s.value - m.mean)) / (m.n - 1)) END AS std,\n" \
    "         m.repeats AS repeats\n"                                                             \
    "  FROM m JOIN s ON s.group_hash IS m.group_hash AND s.metric = m.metric\n"                   \
    "               AND s.sampler IS m.sampler AND s.nfe IS m.nfe AND s.settings IS m.settings\n" \
    "  GROUP BY m.group_hash, m.metric, m.sampler, m.nfe, m.settings;\n"                          \
    "CREATE " TEMP "VIEW IF NOT EXISTS run_summary AS /* " DM_VIEWS_MARK " */\n"                  \
    "  WITH p AS (SELECT run_id,\n"                                                               \
    "      max(CASE WHEN key = 'data.type' THEN text_value END) AS data,\n"                       \
    "      max(CASE WHEN key = 'model.type' THEN text_value END) AS model,\n"                     \
    "      max(CASE WHEN key = 'diffusion.schedule.type' THEN text_value END) AS schedule,\n"     \
    "      max(CASE WHEN key = 'diffusion.param.type' THEN text_value END) AS param,\n"           \
    "      max(CASE WHEN key = 'diffusion.loss.type' THEN text_value END) AS loss_type,\n"        \
    "      max(CASE WHEN key = 'sampler.type' THEN text_value END) AS sampler,\n"                 \
    "      max(CASE WHEN key = 'sampler.steps' THEN int_value END) AS sampler_steps,\n"           \
    "      max(CASE WHEN key = 'train.steps' THEN int_value END) AS train_steps,\n"               \
    "      max(CASE WHEN key = 'train.batch' THEN int_value END) AS batch,\n"                     \
    "      max(CASE WHEN key = 'train.lr' THEN real_value END) AS lr\n"                           \
    "    FROM params GROUP BY run_id),\n"                                                         \
    "  me AS (SELECT e.run_id AS run_id, e.sampler AS sampler, e.nfe AS nfe,\n"                   \
    "           e.settings AS settings,\n"                                                        \
    "           row_number() OVER (PARTITION BY e.run_id ORDER BY (e.sampler IS p.sampler) DESC,\n" \
    "             (NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(e.settings)\n"        \
    "                 THEN e.settings ELSE '{}' END) j\n"                                         \
    "               JOIN params q ON q.run_id = e.run_id AND q.key = 'sampler.' || j.key\n"       \
    "               WHERE coalesce(q.int_value, q.real_value, q.text_value) IS NOT j.atom)) DESC,\n" \
    "             (CASE WHEN json_valid(e.settings) THEN json_extract(e.settings, '$.steps') END\n" \
    "              IS p.sampler_steps) DESC, e.rowid) AS k\n"                                     \
    "         FROM evals e LEFT JOIN p ON p.run_id = e.run_id\n"                                  \
    "         WHERE e.metric IN ('swd', 'mmd2') AND e.sampler NOT IN ('noise', 'exact'))\n"       \
    "  SELECT r.run_id AS run_id, r.name AS name, r.status AS status, r.seed AS seed,\n"          \
    "         r.group_hash AS group_hash, r.teacher AS teacher, p.data AS data,\n"                \
    "         p.model AS model, p.schedule AS schedule, p.param AS param,\n"                      \
    "         p.loss_type AS loss_type, p.sampler AS sampler, p.sampler_steps AS sampler_steps,\n" \
    "         p.train_steps AS train_steps, p.batch AS batch, p.lr AS lr,\n"                      \
    "         (SELECT m.value FROM metrics m WHERE m.run_id = r.run_id AND m.key = 'loss'\n"      \
    "          ORDER BY m.step DESC LIMIT 1) AS final_loss,\n"                                    \
    "         me.nfe AS nfe,\n"                                                                   \
    "         (SELECT e.value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'swd'\n"      \
    "          AND e.sampler IS me.sampler AND e.nfe IS me.nfe AND e.settings IS me.settings\n"   \
    "          ORDER BY e.rowid DESC LIMIT 1) AS swd,\n"                                          \
    "         (SELECT e.value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'mmd2'\n"     \
    "          AND e.sampler IS me.sampler AND e.nfe IS me.nfe AND e.settings IS me.settings\n"   \
    "          ORDER BY e.rowid DESC LIMIT 1) AS mmd2,\n"                                         \
    "         (SELECT e.value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'nll'\n"      \
    "          ORDER BY e.rowid LIMIT 1) AS nll,\n"                                               \
    "         (SELECT e.value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'vlb'\n"      \
    "          ORDER BY e.rowid LIMIT 1) AS vlb,\n"                                               \
    "         r.wall_s AS wall_s, r.created AS created, me.sampler AS eval_sampler,\n"            \
    "         me.settings AS eval_settings\n"                                                     \
    "  FROM runs r LEFT JOIN p ON p.run_id = r.run_id\n"                                          \
    "  LEFT JOIN me ON me.run_id = r.run_id AND me.k = 1;\n"                                      \
    "CREATE " TEMP "VIEW IF NOT EXISTS group_summary AS /* " DM_VIEWS_MARK " */\n"                \
    "  WITH s AS (SELECT group_hash, seed, count(*) AS runs, avg(final_loss) AS final_loss,\n"    \
    "                    avg(swd) AS swd, avg(mmd2) AS mmd2\n"                                    \
    "             FROM run_summary WHERE status = 'finished' GROUP BY group_hash, seed),\n"       \
    "       f AS (SELECT group_hash, count(*) AS n, sum(runs) - count(*) AS repeats,\n"           \
    "                    avg(final_loss) AS lm, count(final_loss) AS ln, avg(swd) AS sm,\n"       \
    "                    count(swd) AS sn, avg(mmd2) AS mm, count(mmd2) AS mn\n"                  \
    "             FROM s GROUP BY group_hash),\n"                                                 \
    "       d AS (SELECT s.group_hash AS group_hash,\n"                                           \
    "                    sum((s.final_loss - f.lm) * (s.final_loss - f.lm)) AS lss,\n"            \
    "                    sum((s.swd - f.sm) * (s.swd - f.sm)) AS sss,\n"                          \
    "                    sum((s.mmd2 - f.mm) * (s.mmd2 - f.mm)) AS mss\n"                         \
    "             FROM s JOIN f ON f.group_hash IS s.group_hash GROUP BY s.group_hash)\n"         \
    "  SELECT g.group_hash AS group_hash, min(g.name) AS name, min(g.data) AS data,\n"            \
    "         min(g.model) AS model, min(g.schedule) AS schedule, min(g.param) AS param,\n"       \
    "         min(g.loss_type) AS loss_type, min(g.sampler) AS sampler,\n"                        \
    "         min(g.sampler_steps) AS sampler_steps, min(g.train_steps) AS train_steps,\n"        \
    "         min(g.nfe) AS nfe, count(*) AS n_runs, coalesce(f.n, 0) AS n,\n"                    \
    "         coalesce(f.repeats, 0) AS repeats,\n"                                               \
    "         sum(g.status IN ('failed', 'diverged')) AS n_failed,\n"                             \
    "         f.lm AS final_loss_mean,\n"                                                         \
    "         CASE WHEN f.ln < 2 THEN NULL ELSE sqrt(d.lss / (f.ln - 1)) END AS final_loss_std,\n" \
    "         f.sm AS swd_mean,\n"                                                                \
    "         CASE WHEN f.sn < 2 THEN NULL ELSE sqrt(d.sss / (f.sn - 1)) END AS swd_std,\n"       \
    "         f.mm AS mmd2_mean,\n"                                                               \
    "         CASE WHEN f.mn < 2 THEN NULL ELSE sqrt(d.mss / (f.mn - 1)) END AS mmd2_std\n"       \
    "  FROM run_summary g LEFT JOIN f ON f.group_hash IS g.group_hash\n"                          \
    "  LEFT JOIN d ON d.group_hash IS g.group_hash\n"                                             \
    "  GROUP BY g.group_hash;\n"                                                                  \
    "CREATE " TEMP "VIEW IF NOT EXISTS students AS /* " DM_VIEWS_MARK " */\n"                     \
    "  SELECT s.run_id AS run_id, s.name AS name, s.status AS status, s.seed AS seed,\n"          \
    "         s.loss_type AS loss_type, s.sampler AS sampler, s.nfe AS nfe,\n"                    \
    "         s.final_loss AS final_loss, s.swd AS swd, s.mmd2 AS mmd2,\n"                        \
    "         s.teacher AS teacher, t.status AS teacher_status, t.name AS teacher_name,\n"        \
    "         t.loss_type AS teacher_loss_type, t.sampler AS teacher_sampler,\n"                  \
    "         t.nfe AS teacher_nfe, t.swd AS teacher_swd, t.mmd2 AS teacher_mmd2\n"               \
    "  FROM run_summary s LEFT JOIN run_summary t ON t.run_id = s.teacher\n"                      \
    "  WHERE s.teacher IS NOT NULL AND s.teacher <> '';\n"

/* The program's own metrics: inserted, and brought up to date where an older program wrote them
 * otherwise or did not know them (written only when they differ). Run when the schema is created and
 * on every writable open. */
#define DM_METRIC_INFO_SQL \
    "CREATE TABLE IF NOT EXISTS metric_info (\n" \
    "  name TEXT PRIMARY KEY, lower_is_better INTEGER NOT NULL, doc TEXT);\n" \
    "INSERT INTO metric_info (name, lower_is_better, doc) VALUES\n" \
    "  ('loss', 1, 'training loss'),\n" \
    "  ('swd', 1, 'sliced 1-Wasserstein distance to the reference set'),\n" \
    "  ('mmd2', 1, 'unbiased squared MMD to the reference set'),\n" \
    "  ('nll', 1, 'negative log-likelihood (probability-flow ODE)'),\n" \
    "  ('bpd', 1, 'bits per dimension'),\n" \
    "  ('vlb', 1, 'DDPM variational bound on the negative log-likelihood (nats per point)'),\n" \
    "  ('vlb_bpd', 1, 'DDPM variational bound in bits per dimension'),\n" \
    "  ('cond_mmd2', 1, 'mean over classes of the unbiased squared MMD to the class-conditional reference'),\n" \
    "  ('class_share', 0, 'share of samples the exact mixture posterior assigns to the class asked for'),\n" \
    "  ('class_var', -1, 'diversity: mean within-class variance of the samples'),\n" \
    "  ('class_entropy', -1, 'diversity: entropy (nats) of the samples over the components of their class'),\n" \
    "  ('accuracy', 0, 'classifier accuracy on noised (or, settings.clean, clean) reference points'),\n" \
    "  ('xent', 1, 'classifier cross-entropy on noised reference points'),\n" \
    "  ('post_std', -1, 'spread of the exact posterior p(x0 | x_t): sqrt(tr Cov / d)'),\n" \
    "  ('post_modes', -1, 'effective number of mixture components the exact posterior covers, exp(H(r))'),\n" \
    "  ('post_modes90', -1, 'fewest components holding 90% of the exact posterior'),\n" \
    "  ('gap_data', -1, 'distance from E[x0 | x_t] to the nearest data point'),\n" \
    "  ('gap_mode', -1, 'distance from E[x0 | x_t] to the nearest component mean, in its stds'),\n" \
    "  ('denoise_err', -1, 'distance from E[x0 | x_t] to the clean point that made x_t'),\n" \
    "  ('ode_err', 1, 'deterministic sampler: mean over samples of the RMS distance, in data stds, to the PF-ODE solved by RK45 at 1e-9 from the same noise'),\n" \
    "  ('ode_err_median', 1, 'deterministic sampler: median over samples of the RMS distance, in data stds, to the PF-ODE reference'),\n" \
    "  ('mmd2_ms', 1, 'unbiased squared MMD to the reference set, mean over RBF bandwidths from the data''s finest to its global scale (settings.mmd_h)'),\n" \
    "  ('data_nll', -1, 'mixture data: mean -log p_data of the samples (nats per point); rewards collapse: read beside mode_recall and mode_chi2'),\n" \
    "  ('in_mode99', -1, 'mixture data: share of samples within the 0.99 chi2_d quantile of a component; rewards collapse: read beside mode_recall and mode_chi2'),\n" \
    "  ('mode_recall', 0, 'mixture data: share of components holding at least half their expected count'),\n" \
    "  ('mode_chi2', 1, 'mixture data: Pearson X^2 of the samples'' component counts against the weights (about K - 1 for exact draws)'),\n" \
    "  ('model_err', 1, 'mixture data: mean |D_theta - D*|^2 / d against the exact denoiser at settings.sigma = sigma/alpha'),\n" \
    "  ('fd', 1, 'images: Frechet distance to the reference set in the feature space of settings.features (not FID)'),\n" \
    "  ('kid', 1, 'images: unbiased polynomial-kernel MMD^2 in the feature space, mean over 100 subsets of up to 1000'),\n" \
    "  ('kid_std', -1, 'images: the standard deviation of kid over its subsets (the estimator''s spread, not the seeds'')'),\n" \
    "  ('precision', 0, 'images: share of samples inside the reference set''s k = 3 nearest-neighbour manifold (feature space)'),\n" \
    "  ('recall', 0, 'images: share of reference items inside the samples'' k = 3 nearest-neighbour manifold (feature space)'),\n" \
    "  ('fnet_class_share', 0, 'images: share of samples the feature network assigns to the class asked for')\n" \
    "  ON CONFLICT(name) DO UPDATE SET lower_is_better = excluded.lower_is_better, doc = excluded.doc\n" \
    "  WHERE lower_is_better IS NOT excluded.lower_is_better OR doc IS NOT excluded.doc;\n"

static const char metric_info_sql[] = DM_METRIC_INFO_SQL;

static const char views_sql[] = DM_VIEWS("");
static const char views_temp_sql[] = DM_VIEWS("TEMP ");

/* A run's tags and notes (io/annotations.h; their files are the truth, reindex rebuilds these).
 * No foreign key: a run's rows are replaced on every upsert, its annotations are not. */
#define DM_ANNOT_TABLES_SQL(TEMP)                                                                  \
    "CREATE " TEMP "TABLE IF NOT EXISTS tags (\n"                                                  \
    "  run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run_id, key));\n"        \
    "CREATE " TEMP "TABLE IF NOT EXISTS notes (\n"                                                 \
    "  run_id TEXT NOT NULL, n INTEGER NOT NULL, time TEXT, text TEXT, PRIMARY KEY (run_id, n));\n"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS runs (\n"
    "  run_id TEXT PRIMARY KEY,\n"
    "  name TEXT, config_hash TEXT, group_hash TEXT, seed INTEGER, status TEXT,\n"
    "  created TEXT, finished TEXT, heartbeat TEXT, git_commit TEXT, git_dirty INTEGER,\n"
    "  host TEXT, cpu TEXT, path TEXT, params_sha256 TEXT, teacher TEXT, spec_yaml TEXT,\n"
    "  n_params INTEGER, wall_s REAL,\n"
    "  slurm_job_id INTEGER, slurm_array_job_id INTEGER, slurm_array_task_id INTEGER);\n"
    "CREATE INDEX IF NOT EXISTS runs_group ON runs(group_hash);\n"
    "CREATE INDEX IF NOT EXISTS runs_config ON runs(config_hash, seed);\n"
    /* No foreign key: a sweep names its runs before they exist (make targets). */
    "CREATE TABLE IF NOT EXISTS sweep_runs (\n"
    "  sweep TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (sweep, run_id));\n"
    "CREATE TABLE IF NOT EXISTS params (\n"
    "  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,\n"
    "  key TEXT NOT NULL, int_value INTEGER, real_value REAL, text_value TEXT,\n"
    "  PRIMARY KEY (run_id, key));\n"
    "CREATE INDEX IF NOT EXISTS params_key ON params(key);\n"
    "CREATE TABLE IF NOT EXISTS metrics (\n"
    "  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,\n"
    "  key TEXT NOT NULL, step INTEGER NOT NULL, wall_s REAL, value REAL);\n"
    "CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics(run_id, key, step);\n"
    "CREATE TABLE IF NOT EXISTS evals (\n"
    "  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,\n"
    "  metric TEXT NOT NULL, sampler TEXT, nfe INTEGER, settings TEXT,\n"
    "  n_samples INTEGER, value REAL);\n"
    "CREATE INDEX IF NOT EXISTS evals_run ON evals(run_id);\n"
    DM_ANNOT_TABLES_SQL("")
    /* lower_is_better: 1 lower, 0 higher, -1 neither (a description, not a score: no best). */
    DM_METRIC_INFO_SQL
    /* SQLite documents that with max() the bare columns come from the row holding the max. */
    "CREATE VIEW IF NOT EXISTS last_metrics AS\n"
    "  SELECT run_id, key, max(step) AS step, value FROM metrics GROUP BY run_id, key;\n"
    DM_VIEWS("");

/* ------------------------------------------------------- creation, migrations ---- */

/* SQLite's own sqrt (SQLITE_ENABLE_MATH_FUNCTIONS) has the same semantics: NULL for NULL or
 * a negative argument. */
static void sqrt_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    double x = sqlite3_value_double(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || x < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, sqrt(x));
}

/* The group views need sqrt(); register ours only where the library lacks it. */
dm_status dm_ix_ensure_sqrt(dm_index *ix, char *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(ix->db, "SELECT sqrt(4.0)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_finalize(s);
        return DM_OK;
    }
    if (sqlite3_create_function(ix->db, "sqrt", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                sqrt_fn, NULL, NULL) != SQLITE_OK)
        return dm_ix_sql_err(ix, err, "registering sqrt()");
    return DM_OK;
}

dm_status dm_ix_create_schema(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    dm_status st = DM_OK;
    sqlite3_int64 version = 0;
    int began = 0;
    if ((st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting the schema transaction", err)))
        goto out;
    began = 1;
    /* Another process may have created it while we waited for the lock. */
    if ((st = dm_ix_query_int(ix, "PRAGMA user_version", &version, "reading the schema", err)) ||
        version != 0)
        goto out;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", DM_INDEX_SCHEMA_VERSION);
    if ((st = dm_ix_exec(ix, schema_sql, "creating the schema", err)) ||
        (st = dm_ix_exec(ix, pragma, "setting the schema version", err)))
        goto out;
out:
    if (began) {
        if (st)
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        else if ((st = dm_ix_exec(ix, "COMMIT", "committing the schema", err)))
            sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return st;
}

/* Bring an index of an older version to the current one: version 1 (before the Slurm columns):
 * ALTER TABLE adds the columns, which CREATE TABLE IF NOT EXISTS would not, old rows get NULLs
 * there (a reindex fills them from the run files); version 2 (before tags and notes): the two
 * tables, empty until runs are tagged or the index is rebuilt. */
dm_status dm_ix_migrate_schema(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    dm_status st = DM_OK;
    sqlite3_int64 version = 0;
    if ((st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting the schema migration", err)))
        return st;
    /* Another process may have migrated it while we waited for the lock. */
    if (!(st = dm_ix_query_int(ix, "PRAGMA user_version", &version, "reading the schema", err)) &&
        version == 1)
        st = dm_ix_exec(ix, "ALTER TABLE runs ADD COLUMN slurm_job_id INTEGER;"
                            "ALTER TABLE runs ADD COLUMN slurm_array_job_id INTEGER;"
                            "ALTER TABLE runs ADD COLUMN slurm_array_task_id INTEGER;"
                            "PRAGMA user_version = 2;",
                        "adding the Slurm columns (schema version 1 -> 2)", err);
    if (!st && (version == 1 || version == 2))
        st = dm_ix_exec(ix, DM_ANNOT_TABLES_SQL("") "PRAGMA user_version = 3;",
                        "adding the tags and notes tables (schema version 2 -> 3)", err);
    if (st)
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    else if ((st = dm_ix_exec(ix, "COMMIT", "committing the schema migration", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* The views of an index made before their current version (DM_VIEWS_MARK; or before them):
 * replaced for good on a writable connection (all of them in one transaction, after checking
 * again under the write lock that no other process did it meanwhile), shadowed by TEMP views
 * on a read-only one. */
static const char views_current_sql[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND name IN (" DM_VIEW_NAMES ") "
    "AND instr(sql, '" DM_VIEWS_MARK " */') > 0";

dm_status dm_ix_ensure_views(dm_index *ix, void *ctx, char *err)
{
    const int readonly = ctx != NULL;
    sqlite3_int64 n = 0;
    dm_status st = dm_ix_query_int(ix, views_current_sql, &n, "looking for the views", err);
    if (st || n == 5)
        return st;
    if (readonly)
        return dm_ix_exec(ix, views_temp_sql, "adding the views", err);
    if ((st = dm_ix_exec(ix, "BEGIN IMMEDIATE", "starting the views transaction", err)))
        return st;
    if (!(st = dm_ix_query_int(ix, views_current_sql, &n, "looking for the views", err)) && n != 5 &&
        !(st = dm_ix_exec(ix, "DROP VIEW IF EXISTS students; DROP VIEW IF EXISTS group_summary; "
                              "DROP VIEW IF EXISTS run_summary; DROP VIEW IF EXISTS group_evals; "
                              "DROP VIEW IF EXISTS group_metrics;", "replacing the views", err)))
        st = dm_ix_exec(ix, views_sql, "adding the views", err);
    if (st || (st = dm_ix_exec(ix, "COMMIT", "committing the views", err)))
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* The program's metric_info rows in an index an older program wrote (a no-op write when they are
 * up to date). Writable connections only: a read-only one reads what is there. */
dm_status dm_ix_ensure_metric_info(dm_index *ix, void *ctx, char *err)
{
    (void)ctx;
    return dm_ix_exec(ix, metric_info_sql, "updating metric_info", err);
}

dm_status dm_ix_temp_annot_tables(dm_index *ix, char *err)
{
    return dm_ix_exec(ix, DM_ANNOT_TABLES_SQL("TEMP "), "adding empty tags and notes tables", err);
}
