#!/usr/bin/env bash
# Faults without mounts: an unusable results folder, a run.h5 truncated at 8 offsets spread over
# the file (a fixed seed) and a truncated checkpoint each get a clear error naming the file and a
# non-zero exit, within 60 s, leave the damaged file as it was and every other run's files
# byte-identical. (Read-only folders and index, a full disk: faults_mounts.sh. An index that is not
# a database: spec_errors.sh. Allocation failures: tests/test_faults.c.)
. "$(dirname "$0")/lib.sh"
cd "$TMP"
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
# A results "folder" that is a file, and one below a file.
echo "not a folder" > plain
if expect_exit 1 "$DIFFLAB" --results plain run s.yaml; then expect_out 'plain'; fi
if expect_exit 1 "$DIFFLAB" --results plain/sub run s.yaml; then expect_out 'plain/sub'; fi

# Three finished runs; then a's run.h5 is truncated at 8 offsets, one in each eighth of the file.
# Each reading command names the file, says what is wrong and exits 1 within 60 s; the file stays
# as it was. reindex goes last (it drops a from the index, which sample and reproduce find it
# by); before the next offset the whole file is put back and indexed again. The wording of the damage
# (unreadable | not a valid run file | damaged | corrupt | truncated) is the run-file reader's.
expect_exit 0 "$DIFFLAB" run s.yaml
expect_exit 0 "$DIFFLAB" run s.yaml seed=1
expect_exit 0 "$DIFFLAB" run s.yaml seed=2
a=$(ls results/runs | grep -- '-s0$'); b=$(ls results/runs | grep -- '-s1$')
h5=results/runs/$a/run.h5
DAMAGE='unreadable|not a valid run file|damaged|corrupt|truncated'
cp "$h5" whole.h5
size=$(stat -c %s whole.h5)
RANDOM=15
offsets=()
for i in 0 1 2 3 4 5 6 7; do offsets+=($((i * size / 8 + (RANDOM * 32768 + RANDOM) % (size / 8)))); done
echo "run.h5 of $size bytes truncated at ${offsets[*]}"
others_snap results/runs "$a"
for off in "${offsets[@]}"; do
  cp whole.h5 "$h5"
  expect_exit 0 "$DIFFLAB" reindex
  truncate -s "$off" "$h5"
  cp "$h5" truncated.h5
  for cmd in "sample $a --steps 3" "reproduce $a" "run s.yaml" reindex; do
    # shellcheck disable=SC2086 # cmd is words
    if expect_exit 1 timeout 60 "$DIFFLAB" $cmd; then
      expect_out "results/runs/$a/run\.h5"
      expect_out "$DAMAGE"
    fi
    cmp -s truncated.h5 "$h5" && pass || fail "$cmd changed the run.h5 truncated at $off"
  done
  expect_out "skipped .*results/runs/$a: " && expect_out '1 skipped'
  others_same "run.h5 truncated at $off"
done
expect_exit 0 "$DIFFLAB" sample "$b" --steps 3 && expect_out 'ddpm nfe 3'
expect_exit 0 "$DIFFLAB" run s.yaml --new && expect_out 'finished'
cp whole.h5 "$h5"
expect_exit 0 "$DIFFLAB" reindex && expect_out ' 0 skipped'
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM runs WHERE status = 'finished'" --csv && expect_out '^4$'

# A truncated checkpoint: resuming names it and leaves it as it was; the run's record stays
# readable, the other runs as they were.
"$DIFFLAB" run s.yaml seed=3 train.steps=100000 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do ls results/runs/*-s3/checkpoint.h5 >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.3
kill -TERM "$pid"; wait "$pid"
c=$(ls -d results/runs/*-s3)
truncate -s 100 "$c/checkpoint.h5"
cp "$c/checkpoint.h5" truncated.h5
others_snap results/runs "$(basename "$c")"
if expect_exit 1 timeout 60 "$DIFFLAB" resume "$(basename "$c")"; then
  expect_out "runs/$(basename "$c")/checkpoint\.h5"
fi
cmp -s truncated.h5 "$c/checkpoint.h5" && pass || fail "resume changed the truncated checkpoint"
h5dump -H "$c/run.h5" >/dev/null && pass || fail "the run record was damaged"
others_same "a truncated checkpoint"
finish
