/* index_schema.c — the SQL schema of results/index.sqlite (version DM_INDEX_SCHEMA_VERSION).
 *
 * Kept apart from index.c so the schema reads as one piece. Every statement is idempotent
 * (IF NOT EXISTS / OR IGNORE): index.c runs the whole text inside one transaction when it finds
 * user_version = 0; an index of an older version is brought up to date by index.c's migrations
 * (version 2 added the runs.slurm_* columns).
 *
 * Standard deviations are sample standard deviations (n - 1), NULL when n < 2, computed in two
 * passes (mean first, then the sum of squared deviations) to avoid the cancellation of the
 * sum-of-squares formula. sqrt() is one of SQLite's math functions, which Debian's library and
 * sqlite3 shell are built with; index.c registers an equivalent on its connections where the
 * library lacks it. */
/* Private to index.c, which declares it too (no header for one string). */
extern const char dm_index_schema_sql[];

const char dm_index_schema_sql[] =
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
    "CREATE TABLE IF NOT EXISTS metric_info (\n"
    "  name TEXT PRIMARY KEY, lower_is_better INTEGER NOT NULL, doc TEXT);\n"
    "INSERT OR IGNORE INTO metric_info (name, lower_is_better, doc) VALUES\n"
    "  ('loss', 1, 'training loss'),\n"
    "  ('swd', 1, 'sliced 1-Wasserstein distance to the reference set'),\n"
    "  ('mmd2', 1, 'unbiased squared MMD to the reference set'),\n"
    "  ('nll', 1, 'negative log-likelihood (probability-flow ODE)'),\n"
    "  ('bpd', 1, 'bits per dimension'),\n"
    "  ('vlb', 1, 'DDPM variational bound on the negative log-likelihood (nats per point)'),\n"
    "  ('vlb_bpd', 1, 'DDPM variational bound in bits per dimension');\n"
    /* SQLite documents that with max() the bare columns come from the row holding the max. */
    "CREATE VIEW IF NOT EXISTS last_metrics AS\n"
    "  SELECT run_id, key, max(step) AS step, value FROM metrics GROUP BY run_id, key;\n"
    "CREATE VIEW IF NOT EXISTS group_metrics AS\n"
    "  WITH v AS (SELECT r.group_hash AS group_hash, l.key AS key, l.value AS value\n"
    "             FROM last_metrics l JOIN runs r ON r.run_id = l.run_id),\n"
    "       m AS (SELECT group_hash, key, count(value) AS n, avg(value) AS mean\n"
    "             FROM v GROUP BY group_hash, key)\n"
    "  SELECT m.group_hash AS group_hash, m.key AS key, m.n AS n, m.mean AS mean,\n"
    "         CASE WHEN m.n < 2 THEN NULL\n"
    "              ELSE sqrt(sum((v.value - m.mean) * (v.value - m.mean)) / (m.n - 1)) END AS std\n"
    "  FROM m JOIN v ON v.group_hash IS m.group_hash AND v.key = m.key\n"
    "  GROUP BY m.group_hash, m.key;\n"
    /* Evals of different sampler settings (e.g. DDIM eta) are different numbers: grouped apart. */
    "CREATE VIEW IF NOT EXISTS group_evals AS\n"
    "  WITH v AS (SELECT r.group_hash AS group_hash, e.metric AS metric, e.sampler AS sampler,\n"
    "                    e.nfe AS nfe, e.settings AS settings, e.value AS value\n"
    "             FROM evals e JOIN runs r ON r.run_id = e.run_id),\n"
    "       m AS (SELECT group_hash, metric, sampler, nfe, settings,\n"
    "                    count(value) AS n, avg(value) AS mean\n"
    "             FROM v GROUP BY group_hash, metric, sampler, nfe, settings)\n"
    "  SELECT m.group_hash AS group_hash, m.metric AS metric, m.sampler AS sampler,\n"
    "         m.nfe AS nfe, m.settings AS settings, m.n AS n, m.mean AS mean,\n"
    "         CASE WHEN m.n < 2 THEN NULL\n"
    "              ELSE sqrt(sum((v.value - m.mean) * (v.value - m.mean)) / (m.n - 1)) END AS std\n"
    "  FROM m JOIN v ON v.group_hash IS m.group_hash AND v.metric = m.metric\n"
    "               AND v.sampler IS m.sampler AND v.nfe IS m.nfe AND v.settings IS m.settings\n"
    "  GROUP BY m.group_hash, m.metric, m.sampler, m.nfe, m.settings;\n";
