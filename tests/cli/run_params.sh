#!/usr/bin/env bash
# The wide view run_params (docs/sql.md; issue 18, point 7): one row per run and one column per
# key of `difflab keys` (each once, in its order, after the run's identifying columns), typed by
# the key's declaration (int: integer, real: real, plug-in names and choices: text) and equal to
# the params rows; NULL where a run's plug-in lacks the key. On an index without the view, or
# with another difflab's, `difflab query` answers through a TEMP view and leaves the file as it
# is; a writing command (tag) and reindex put the current view into the file.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > s.yaml <<'Y'
name: wide
data: {type: eight_gaussians}
model: {type: mlp, width: 8, depth: 1, nfreq: 2}
diffusion: {schedule: {type: ddpm_linear, T: 50}}
sampler: {type: ddpm, steps: 5}
train: {steps: 20, batch: 16, n_data: 100}
eval: {n_samples: 50, n_ref: 50, swd_projections: 4, mmd_max: 50}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" run s.yaml train.lr=3e-3 || { finish; exit 1; }
expect_exit 0 "$DIFFLAB" run s.yaml sampler.type=ddim train.steps=30 seed=1 || { finish; exit 1; }
q() { "$DIFFLAB" query "$1" --csv 2>&1 | tail -n +2; }

# Typed columns, one row per run.
got=$(q 'SELECT typeof("train.lr"), typeof("train.steps"), typeof("sampler.type") FROM run_params')
[ "$got" = "$(printf 'real,integer,text\nreal,integer,text')" ] && pass || fail "run_params types: $got"
got=$(q 'SELECT name, seed, "train.lr", "train.steps", "sampler.type", typeof("sampler.eta") FROM run_params ORDER BY seed')
[ "$got" = "$(printf 'wide,0,0.003,20,ddpm,null\nwide,1,0.001,30,ddim,real')" ] && pass || fail "run_params values: $got"
[ "$(q 'SELECT count(*) FROM run_params')" = 2 ] && pass || fail "not one row per run"

# The columns: run_id, name, seed, status, config_hash, group_hash, created, then every key of
# `difflab keys` once in its order (name and seed are the columns above).
cols=$("$DIFFLAB" query "PRAGMA table_info(run_params)" --csv | tail -n +2 | cut -d, -f2)
want=$( { printf '%s\n' run_id name seed status config_hash group_hash created
          "$DIFFLAB" keys | awk '{print $1}' | awk '$0 != "name" && $0 != "seed" && !seen[$0]++'; } )
[ "$cols" = "$want" ] && pass || { fail "run_params columns differ from difflab keys:"; diff <(echo "$want") <(echo "$cols") | head >&2; }

# Every params row is its column's value (one statement over every key in the index).
sql=
while read -r k; do
  sql="${sql:+$sql UNION ALL }SELECT count(*) AS n, sum(coalesce(p.int_value, p.real_value, p.text_value) IS NOT v.\"$k\") AS bad FROM params p JOIN run_params v USING (run_id) WHERE p.key = '$k'"
done < <(q 'SELECT DISTINCT key FROM params')
got=$(q "SELECT sum(n), sum(bad) FROM ($sql)")
[ "$got" = "$(q 'SELECT count(*) FROM params'),0" ] && pass || fail "run_params differs from params (rows, differing): $got"

# An index without the view (as an older difflab left it): query answers, read-only.
view_in_file() { sqlite3 results/index.sqlite "SELECT count(*) FROM sqlite_master WHERE name = 'run_params' AND instr(sql, '$1') > 0"; }
sqlite3 results/index.sqlite 'DROP VIEW run_params'
[ "$(q 'SELECT count(*), typeof(max("train.lr")) FROM run_params')" = "2,real" ] && pass || fail "no TEMP run_params on a read-only open"
[ "$(view_in_file 'run_params')" = 0 ] && pass || fail "a read-only query wrote the view"
# ... or another difflab's key list: shadowed, then replaced by a command that writes.
sqlite3 results/index.sqlite "CREATE VIEW run_params AS /* difflab run_params 1 0000000000000000 */ SELECT run_id FROM runs"
[ "$(q 'SELECT max("train.steps") FROM run_params')" = 30 ] && pass || fail "the other key list's view was not shadowed"
[ "$(view_in_file 0000000000000000)" = 1 ] && pass || fail "a read-only query replaced the view"
expect_exit 0 "$DIFFLAB" tag "$(q 'SELECT run_id FROM runs WHERE seed = 1')" k=v
[ "$(view_in_file 0000000000000000)" = 0 ] && [ "$(view_in_file 'difflab run_params 1 ')" = 1 ] && pass ||
  fail "a writing command did not replace the view"
sqlite3 results/index.sqlite 'DROP VIEW run_params'
expect_exit 0 "$DIFFLAB" reindex
[ "$(view_in_file 'difflab run_params 1 ')" = 1 ] && pass || fail "reindex made no run_params"
[ "$(q 'SELECT count(*) FROM run_params WHERE typeof("train.lr") = '"'real'")" = 2 ] && pass || fail "run_params after reindex"
finish
