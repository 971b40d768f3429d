#!/usr/bin/env bash
# `difflab query` can only read, quickly (issue 15): VACUUM INTO (a copy of the index at any
# path), ATTACH, writes, pragmas that set, functions that hand out pointers or load code, strings
# over 16 MB and runaway statements are refused with exit 2 and a message naming what, before
# anything is written; the index stays byte-identical; reads, schema pragmas and the views work.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
expect_exit 0 "$DIFFLAB" run "$SRC/configs/methods/edm.yaml" model.type=analytic eval.n_samples=50 eval.n_ref=50 \
  run.progress=none
# The index and the run files (a reader of a WAL database may leave empty -wal/-shm files beside it).
state() { tree_state "$TMP/results" | grep -v -e '-wal$' -e '-shm$'; }
before=$(state)
refuse() {  # refuse SQL PATTERN: exit 2 and the message
  if expect_exit 2 "$DIFFLAB" query "$1"; then expect_out "$2"; fi
}
refuse "VACUUM INTO '$TMP/copy.sqlite'" "query: the index is readonly here: a statement that would change something is refused"
[ ! -e "$TMP/copy.sqlite" ] && pass || fail "VACUUM INTO wrote $TMP/copy.sqlite"
refuse "ATTACH '$TMP/other.db' AS o" "ATTACH or VACUUM INTO \(writing a database file\) is refused"
[ ! -e "$TMP/other.db" ] && pass || fail "ATTACH created $TMP/other.db"
refuse "SELECT fts3_tokenizer('simple')" "the function fts3_tokenizer\(\) is refused"
refuse "SELECT load_extension('/tmp/x')" "the function load_extension\(\) is refused"
refuse "DELETE FROM runs" "query: the index is readonly here: "
refuse "PRAGMA user_version = 9" "PRAGMA user_version with a value is refused"
refuse "SELECT length(randomblob(1e9))" "query: a string or blob over 16777216 bytes"
start=$(date +%s)
# (timeout: without the limit this statement never ends; a regression then fails with 124.)
DIFFLAB_QUERY_SECONDS=1 expect_exit 2 timeout 20 "$DIFFLAB" query \
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" &&
  expect_out "query: stopped after 1 s"
[ $(( $(date +%s) - start )) -le 5 ] && pass || fail "a runaway query ran past its limit"
[ "$(state)" = "$before" ] && pass || fail "a refused query changed the index or a run file"
# Reads still work: a join, JSON, a window function, a schema pragma, the views.
expect_exit 0 "$DIFFLAB" query "SELECT r.run_id, json_extract(e.settings, '$.steps') AS s,
  row_number() OVER (ORDER BY e.metric) AS k FROM runs r JOIN evals e USING (run_id) LIMIT 1" --csv
expect_out '^run_id,s,k$'
expect_exit 0 "$DIFFLAB" query "PRAGMA table_info(runs)" && expect_out 'config_hash'
expect_exit 0 "$DIFFLAB" query "SELECT count(*) AS n FROM group_summary" --json && expect_out '"n": 1'
finish
