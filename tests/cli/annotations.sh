#!/usr/bin/env bash
# Tags and notes (issue 18, point 8): `difflab tag RUN k=v` and `difflab note RUN "text"` write
# results/runs/<id>/annotations.yaml (atomically, under the run's annotation lock, never run.h5)
# and the index's tags and notes tables; `show` lists them; `runs --tag`, `--cols tag.K`,
# `--where` and `table --rows tag.K` use them; `reindex` restores them from the files; a live run
# can be tagged; concurrent taggers lose nothing; bad input is refused with nothing written.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > a.yaml <<'Y'
name: ann
data: {type: eight_gaussians}
model: analytic
sampler: {type: ddim, steps: 10}
eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" run a.yaml && expect_exit 0 "$DIFFLAB" run a.yaml seed=1 && expect_exit 0 "$DIFFLAB" run a.yaml seed=2
ids=($("$DIFFLAB" query "SELECT run_id FROM runs ORDER BY seed" --csv | tail -n +2))
a=${ids[0]} b=${ids[1]}
h5sum=$(sha256sum "results/runs/$a/run.h5")

expect_exit 0 "$DIFFLAB" tag "$a" baseline=yes 'why=first try, "quoted" & ünïcode' && expect_out "^run $a: 2 tags"
expect_exit 0 "$DIFFLAB" tag "$b" baseline=no
expect_exit 0 "$DIFFLAB" note "$a" $'lr too high:\nloss spikes at 2k' && expect_out "; 1 note$"
expect_exit 0 "$DIFFLAB" note "$a" "second note" && expect_out "; 2 notes$"
[ "$(sha256sum "results/runs/$a/run.h5")" = "$h5sum" ] && pass || fail "tagging changed run.h5"
[ -f "results/runs/$a/annotations.yaml" ] && pass || fail "no annotations.yaml"
ls -a "results/runs/$a" | grep -q '\.tmp\.' && fail "a temporary file was left" || pass

expect_exit 0 "$DIFFLAB" show "$a" && expect_out '^## tags' && expect_out '^baseline +yes' \
  && expect_out 'why +first try, "quoted" & ünïcode' && expect_out '^## notes' && expect_out 'second note'
q() { "$DIFFLAB" query "$1" --csv | tail -n +2; }
[ "$(q "SELECT text FROM notes WHERE run_id = '$a' AND n = 1")" = '"lr too high:
loss spikes at 2k"' ] && pass || fail "note text: $(q "SELECT text FROM notes WHERE run_id = '$a'")"
# runs: --tag KEY=VALUE, --tag KEY, --cols tag.KEY, --where on the tags table.
expect_exit 0 "$DIFFLAB" runs --tag baseline=yes --csv
[ "$(tail -n +2 "$TMP/out" | cut -d, -f1)" = "$a" ] && pass || fail "--tag baseline=yes: $(cat "$TMP/out")"
expect_exit 0 "$DIFFLAB" runs --tag baseline --cols tag.baseline --sort tag.baseline --csv
[ "$(tail -n +2 "$TMP/out" | awk -F, '{print $1 ":" $NF}' | tr '\n' ' ')" = "$b:no $a:yes " ] && pass \
  || fail "--tag baseline --cols tag.baseline: $(cat "$TMP/out")"
expect_exit 0 "$DIFFLAB" runs --where "r.run_id NOT IN (SELECT run_id FROM tags)" --csv
[ "$(tail -n +2 "$TMP/out" | wc -l)" = 1 ] && pass || fail "--where on tags: $(cat "$TMP/out")"
# table: a tag as a row key.
expect_exit 0 "$DIFFLAB" table --rows tag.baseline --metric swd --sampler ddim
expect_out '^\| tag.baseline \|' && expect_out '^\| no \|' && expect_out '^\| yes \|'
if expect_exit 2 "$DIFFLAB" table --rows tag.nosuch --metric swd; then expect_out "no run in the index has the tag 'nosuch'"; fi

# Removing a tag; the file and the index agree.
expect_exit 0 "$DIFFLAB" tag "$a" why= && expect_out "^run $a: 1 tag baseline=yes; 2 notes$"
[ "$(q "SELECT count(*) FROM tags WHERE run_id = '$a'")" = 1 ] && pass || fail "removed tag still indexed"

# reindex restores tags and notes from the files, byte for byte.
before=$(q "SELECT * FROM tags ORDER BY run_id, key"; q "SELECT * FROM notes ORDER BY run_id, n")
rm -f results/index.sqlite results/index.sqlite-wal results/index.sqlite-shm
expect_exit 0 "$DIFFLAB" reindex
after=$(q "SELECT * FROM tags ORDER BY run_id, key"; q "SELECT * FROM notes ORDER BY run_id, n")
[ -n "$before" ] && [ "$before" = "$after" ] && pass || fail "reindex: tags/notes '$after', were '$before'"

# Concurrent taggers of one run: every tag lands (the annotation lock serializes read-modify-write).
for k in $(seq 1 12); do "$DIFFLAB" tag "${ids[2]}" "k$k=v$k" >/dev/null 2>&1 & done
wait
[ "$(q "SELECT count(*) FROM tags WHERE run_id = '${ids[2]}'")" = 12 ] && pass \
  || fail "concurrent tags: $(q "SELECT group_concat(key) FROM tags WHERE run_id = '${ids[2]}'")"
[ "$(grep -c '^  k[0-9]*: "v' "results/runs/${ids[2]}/annotations.yaml")" = 12 ] && pass || fail "concurrent tags: the file lacks some"

# A live run can be tagged (its run.h5 is not touched; its lock is not needed).
cat > slow.yaml <<'Y'
name: slow
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
train: {steps: 200000, batch: 64, n_data: 500}
run: {log_every: 100, ckpt_every: 1000000, progress: lines}
Y
"$DIFFLAB" run slow.yaml > slow.out 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'step 100/' slow.out && break; sleep 0.1; done
sid=$("$DIFFLAB" query "SELECT run_id FROM runs WHERE name = 'slow'" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" tag "$sid" live=yes && expect_out "^run $sid: 1 tag live=yes"
kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
[ "$(q "SELECT value FROM tags WHERE run_id = '$sid' AND key = 'live'")" = yes ] && pass || fail "live run's tag lost"

# Bad input: exit 2, one message, nothing written.
state=$(tree_state results/runs)
if expect_exit 2 "$DIFFLAB" tag "$a" 'bad key=1'; then expect_out "tag 'bad key=1': a key is 1 to 64 of"; fi
if expect_exit 2 "$DIFFLAB" tag "$a" novalue; then expect_out "expected KEY=VALUE"; fi
if expect_exit 2 "$DIFFLAB" tag "$a" "x=$(printf 'l\xe9gal')"; then expect_out "not UTF-8"; fi
if expect_exit 2 "$DIFFLAB" tag "$a"; then expect_out "usage: difflab tag RUN KEY=VALUE"; fi
if expect_exit 2 "$DIFFLAB" note "$a" ""; then expect_out "note: the text is empty"; fi
if expect_exit 2 "$DIFFLAB" note "$a" two words; then expect_out "the text is one argument: quote it"; fi
if expect_exit 1 "$DIFFLAB" tag nosuchrun a=b; then expect_out "no run 'nosuchrun'"; fi
[ "$(tree_state results/runs)" = "$state" ] && pass || fail "a refused tag or note changed results/runs"
# A damaged annotations file is named (file:line:col) by reindex, which skips that run only.
printf 'tags: [1, 2\n' > "results/runs/$b/annotations.yaml"
if expect_exit 1 "$DIFFLAB" reindex; then expect_out "annotations.yaml:[0-9]+:[0-9]+: "; fi
[ "$(q "SELECT count(*) FROM runs")" -ge 3 ] && pass || fail "reindex dropped more than the damaged run"
finish
