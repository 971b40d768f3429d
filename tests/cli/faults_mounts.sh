#!/usr/bin/env bash
# Faults made with mounts (as root: permissions do not stop root, a read-only mount does):
#   - a read-only results folder (a read-only bind mount): runs, query, table, show and reproduce
#     read it; every writing command fails naming the path and "Read-only file system"; an index
#     with a killed writer's write-ahead log is read with its -shm, and refused clearly without;
#   - a full disk (a 400 KiB tmpfs): the run too big for it fails naming the file and "No space
#     left on device", and leaves no temporary file;
#   - an index on a read-only file (index.sqlite bind-mounted read-only over itself): writing
#     commands fail naming the index and leave it as it was; what sample wrote to run.h5, and a
#     run that finishes after the index became read-only, are kept in run.h5 (the run stays
#     "finished") and `difflab reindex` adds them once the index is writable.
# Every case checks that the other runs' files are byte-identical before and after. Mounts are
# undone on exit, even on failure (lib.sh's use_mounts), and the test fails if anything is left
# mounted. Without root or mount rights it is skipped, unless CI=true or DIFFLAB_REQUIRE_MOUNTS=1
# (scripts/test.sh), where that is a failure.
. "$(dirname "$0")/lib.sh"
cd "$TMP"

use_mounts "faults_mounts.sh"

cat > s.yaml <<'Y'
name: f
data: {type: eight_gaussians}
model: {type: mlp, width: 16, depth: 1, nfreq: 4}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 5}
train: {steps: 30, batch: 32, n_data: 200}
eval: {n_samples: 50, n_ref: 50, swd_projections: 8, mmd_max: 50}
run: {progress: none, ckpt_every: 10}
Y
expect_exit 0 "$DIFFLAB" run s.yaml
expect_exit 0 "$DIFFLAB" run s.yaml seed=1
a=$(ls results/runs | grep -- '-s0$'); b=$(ls results/runs | grep -- '-s1$')

# ---- a read-only results folder ----
mkdir ro
bind_ro results ro || fail "cannot bind-mount results read-only"
whole=$(tree_state results)
others_snap results/runs
expect_exit 0 "$DIFFLAB" --results ro runs && expect_out "^$a +f +finished" && expect_out "^$b +f +finished"
expect_exit 0 "$DIFFLAB" --results ro query "SELECT count(*) FROM runs WHERE status = 'finished'" --csv && expect_out '^2$'
expect_exit 0 "$DIFFLAB" --results ro table --rows seed --metric swd && expect_out '^\| 1 \| [0-9.]+ \(n=1\) \|$'
expect_exit 0 "$DIFFLAB" --results ro show "$a" && expect_out "^$a +f +finished"
expect_exit 0 "$DIFFLAB" --results ro reproduce "$a" && expect_out "^MATCH: run $a reproduces"
for cmd in "run s.yaml seed=5" "run s.yaml" "sample $a --steps 3" "resume $a" reindex \
           "sweep $SRC/tests/cli/data/sweep3.yaml"; do
  # shellcheck disable=SC2086 # cmd is words
  if expect_exit 1 timeout 60 "$DIFFLAB" --results ro $cmd; then
    expect_out "(^|[ '])ro/[^ ]*.*Read-only file system"
  fi
done
if expect_exit 1 "$DIFFLAB" --results ro/new run s.yaml; then expect_out "'ro/new': Read-only file system"; fi
[ "$(tree_state results)" = "$whole" ] && pass || fail "a command changed the read-only results folder"
others_same "a read-only results folder"
unmount ro
# The same share where a killed writer left a write-ahead log: read with its -shm (the log's
# transaction seen); without the -shm SQLite cannot read it there, which is said.
cp -r results wal && rm -f wal/index.sqlite-*
(printf "PRAGMA wal_autocheckpoint = 0;\nUPDATE runs SET status = 'failed' WHERE run_id = '%s';\n.system kill -9 \$PPID\n" \
  "$b" | sqlite3 wal/index.sqlite) >/dev/null 2>&1
[ -s wal/index.sqlite-wal ] && [ -f wal/index.sqlite-shm ] && pass || fail "the killed writer left no -wal and -shm"
bind_ro wal ro || fail "cannot bind-mount wal read-only"
expect_exit 0 "$DIFFLAB" --results ro query "SELECT status FROM runs WHERE run_id = '$b'" --csv && expect_out '^failed$'
unmount ro
rm wal/index.sqlite-shm
bind_ro wal ro || fail "cannot bind-mount wal read-only"
if expect_exit 1 "$DIFFLAB" --results ro runs; then
  expect_out "index ro/index\.sqlite is on a read-only file system with an unmerged write-ahead log \(ro/index\.sqlite-wal\)"
fi
unmount ro

# ---- a full disk: a 400 KiB tmpfs ----
mkdir small
mount_at small -t tmpfs -o size=400k tmpfs || fail "cannot mount the small tmpfs"
expect_exit 0 "$DIFFLAB" --results small/r run s.yaml
others_snap small/r/runs
if expect_exit 1 "$DIFFLAB" --results small/r run s.yaml model.width=256 model.depth=3; then
  expect_out 'checkpoint\.h5.*No space left on device'
fi
others_same "a full disk"
ls -a small/r/runs/*/ | grep -q '\.tmp\.' && fail "a temporary file was left on the full disk" || pass
expect_exit 0 "$DIFFLAB" --results small/r query "SELECT status FROM runs ORDER BY status" --csv &&
  expect_out '^failed$' && expect_out '^finished$'
unmount small

# ---- an index on a read-only file ----
ix=results/index.sqlite
ix_sum=$(sha256sum <"$ix")
bind_ro "$ix" "$ix" || fail "cannot bind-mount $ix read-only"
others_snap results/runs
if expect_exit 1 "$DIFFLAB" run s.yaml seed=5; then expect_out "index .*results/index\.sqlite: .*Read-only file system"; fi
ls -d results/runs/*-s5 >/dev/null 2>&1 && fail "a run folder was made though the index is read-only" || pass
if expect_exit 1 "$DIFFLAB" reindex; then expect_out "results/index\.sqlite"; fi
ls -a results | grep -q '\.tmp\.' && fail "reindex left a temporary index" || pass
others_same "an index on a read-only file: run, reindex"
expect_exit 0 "$DIFFLAB" runs && expect_out "^$a +f +finished"
# sample writes its samples to run.h5, then fails on the index, saying where they are.
others_snap results/runs "$a"
if expect_exit 1 "$DIFFLAB" sample "$a" --steps 3; then
  expect_out "index .*results/index\.sqlite: .*Read-only file system"
  expect_out "samples are recorded in .*results/runs/$a/run\.h5 \(/samples/ddpm_3\).*difflab reindex"
fi
others_same "an index on a read-only file: sample"
[ "$(sha256sum <"$ix")" = "$ix_sum" ] && pass || fail "the read-only index changed"
unmount "$ix"
expect_exit 0 "$DIFFLAB" reindex
expect_exit 0 "$DIFFLAB" query "SELECT count(*) > 0 FROM evals WHERE run_id = '$a' AND nfe = 3" --csv && expect_out '^1$'

# A run whose index becomes read-only while it trains (stopped at its first checkpoint; the index
# replaced by a copy, as reindex replaces it, and that made read-only): it finishes, exits 1 naming
# the index and its run.h5, and its record says finished; reindex adds it later, and running the
# same spec again finds it finished.
"$DIFFLAB" run s.yaml seed=6 train.steps=200 >life.out 2>&1 &
pid=$!
for _ in $(seq 600); do ls results/runs/*-s6/checkpoint.h5 >/dev/null 2>&1 && break; sleep 0.05; done
kill -STOP "$pid"
c=$(ls -d results/runs/*-s6)
others_snap results/runs "$(basename "$c")"
cp "$ix" ix.new && mv ix.new "$ix"
bind_ro "$ix" "$ix" || fail "cannot bind-mount $ix read-only"
kill -CONT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 1 ] && pass || { fail "the run whose index became read-only: exit $rc (want 1)"; cat life.out >&2; }
cp life.out "$TMP/out"
expect_out "index .*results/index\.sqlite: .*Read-only file system"
expect_out "run $(basename "$c") finished and is recorded in .*$c/run\.h5: .difflab reindex. adds it"
expect_exit 0 h5dump -a /status "$c/run.h5" && expect_out '"finished"'
unmount "$ix"
others_same "an index made read-only during a run"
expect_exit 0 "$DIFFLAB" reindex && expect_out ' 0 skipped'
expect_exit 0 "$DIFFLAB" query "SELECT status FROM runs WHERE run_id = '$(basename "$c")'" --csv && expect_out '^finished$'
expect_exit 0 "$DIFFLAB" run s.yaml seed=6 train.steps=200 && expect_out '^already finished'

[ -z "$(left_mounted)" ] && pass || fail "left mounted: $(left_mounted)"
finish
