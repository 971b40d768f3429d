#!/usr/bin/env bash
# Run files are untrusted input (issue 15). A run.h5 with a poisoned global heap (1,536 zero bytes
# from 16 bytes after its first "GCOL": HDF5 then spins for ever in H5HG_read) and one with a
# zeroed block of metadata (HDF5 1.10 then leaks on the error path and used to print "infinite
# loop closing library" at exit) each give an error naming that file within seconds for resume,
# sample, reproduce, run, sweep status and reindex; reindex indexes the other runs; no run's files change; a
# stale temporary index of a dead reindex is removed and a live process's kept. Every command runs
# under `timeout`, so a regression fails here instead of hanging the suite.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
export DIFFLAB_READ_SECONDS=2
cat > s.yaml <<'Y'
name: u
data: {type: eight_gaussians}
model: {type: mlp, width: 16, depth: 1, nfreq: 4}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 5}
train: {steps: 30, batch: 32, n_data: 200}
eval: {n_samples: 50, n_ref: 50, swd_projections: 8, mmd_max: 50}
run: {progress: none, ckpt_every: 10}
Y

# quick CODE CMD...: expect_exit CODE under a 60 s timeout; done within 20 s (the read limit is
# 2 s); HDF5 never fails to shut down.
quick() {
  local want=$1 t0 ms
  shift
  t0=$(date +%s%N)
  expect_exit "$want" timeout 60 "$@"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$ms" -lt 20000 ] && pass || fail "took $ms ms: $*"
  if grep -q 'infinite loop closing library' "$TMP/out"; then fail "HDF5 could not shut down after: $*"; else pass; fi
}

for s in 0 1 2; do expect_exit 0 timeout 120 "$DIFFLAB" run s.yaml seed=$s; done
a=$(ls results/runs | grep -- '-s0$'); b=$(ls results/runs | grep -- '-s1$'); c=$(ls results/runs | grep -- '-s2$')
ha=results/runs/$a/run.h5; hb=results/runs/$b/run.h5
gcol=$(grep -obUaP 'GCOL' "$ha" | head -1 | cut -d: -f1)
[ -n "$gcol" ] && pass || fail "no global heap collection (GCOL) in $ha"
dd if=/dev/zero of="$ha" bs=1 seek=$((gcol + 16)) count=1536 conv=notrunc status=none
# (The root group's attribute metadata: a checksum error on reading the root attributes.)
dd if=/dev/zero of="$hb" bs=1 seek=256 count=512 conv=notrunc status=none
before=$(tree_state results/runs)

# The poisoned file: "took more than 2 s", naming it.
quick 1 "$DIFFLAB" resume "$a" && expect_out "run $a cannot resume: .*$ha: reading it took more than 2 s"
quick 1 "$DIFFLAB" sample "$a" --steps 3 && expect_out "$ha: reading it took more than 2 s"
quick 1 "$DIFFLAB" reproduce "$a" && expect_out "$ha: reading it took more than 2 s"
quick 1 "$DIFFLAB" run s.yaml && expect_out "$ha is unreadable: .*took more than 2 s.*move the folder"
# The zeroed block: the reader's own message.
quick 1 "$DIFFLAB" resume "$b" && expect_out "$hb: not a valid run file: reading the root attributes failed"
quick 1 "$DIFFLAB" sample "$b" --steps 3 && expect_out "$hb: not a valid run file"
quick 1 "$DIFFLAB" reproduce "$b" && expect_out "$hb: not a valid run file"
quick 1 "$DIFFLAB" run s.yaml seed=1 && expect_out "$hb is unreadable: .*not a valid run file"
# The good run reads as before.
quick 0 "$DIFFLAB" run s.yaml seed=2 && expect_out "already finished"
# A sweep over the three: its status reads every run file (one reader child for all).
printf 'name: sw\nbase: s.yaml\nseeds: [0, 1, 2]\n' > sw.yaml
quick 0 "$DIFFLAB" sweep sw.yaml
quick 0 "$DIFFLAB" sweep status sw && expect_out "3 runs: 0 queued, 0 running, 1 finished, 2 failed" &&
  expect_out "$a \(unreadable\): .*$ha: reading it took more than 2 s" && expect_out "$b \(unreadable\): .*$hb: not a valid"

# Temporary indexes: one left by a dead process (with its WAL), one of a live process.
true & dead=$!
wait "$dead"
sleep 300 & live=$!
touch "results/.index.sqlite.tmp.$dead" "results/.index.sqlite.tmp.$dead-wal" "results/.index.sqlite.tmp.$live"
quick 1 "$DIFFLAB" reindex
expect_out "skipped .*runs/$a: .*$a/run.h5: reading it took more than 2 s"
expect_out "skipped .*runs/$b: .*$b/run.h5: not a valid run file"
expect_out "1 run indexed, 2 skipped"
expect_out "removed .*\.index\.sqlite\.tmp\.$dead: left by process $dead, which is gone"
[ ! -e "results/.index.sqlite.tmp.$dead" ] && [ ! -e "results/.index.sqlite.tmp.$dead-wal" ] && pass ||
  fail "the dead process's temporary index was kept"
[ -e "results/.index.sqlite.tmp.$live" ] && pass || fail "the live process's temporary index was removed"
kill "$live"
expect_exit 0 "$DIFFLAB" query "SELECT run_id FROM runs ORDER BY run_id" --csv
[ "$(tail -n +2 "$TMP/out")" = "$c" ] && pass || { fail "the index does not hold exactly the good run:"; cat "$TMP/out" >&2; }

[ "$(tree_state results/runs)" = "$before" ] && pass || fail "run files changed"
ls -a results/runs/*/ | grep -q '\.tmp\.' && fail "a temporary file was left in a run folder" || pass

# Every read of another run's files goes through io/runstore (read first in a child with a time
# limit): the raw readers are called only by their own files, runstore and the vetting child.
if [ -f "$SRC/framework/io/runstore.c" ]; then
  hits=$(grep -rnE '\b(dm_runlog_read|dm_ckpt_read)\(' "$SRC/framework" --include='*.c' |
    grep -vE '^[^:]*/io/(runlog_read|runlog_ckpt|runstore|runfile_vet)\.c:')
  [ -z "$hits" ] && pass || fail "run files read without vetting (use dm_runstore_read_file/_ckpt): $hits"
else
  fail "no sources at $SRC/framework"
fi
finish
