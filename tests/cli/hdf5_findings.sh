#!/usr/bin/env bash
# The run files on which the runfile fuzz target broke HDF5 itself (tests/fuzz/hdf5_findings/:
# crashes, leaks, a 4 GB allocation and hangs inside HDF5 1.10.8) are regression inputs of the CLI:
# each, as the run.h5 of a run folder, costs `reindex` one clear line naming that file within the
# read limit, the good run is indexed, and `difflab` itself neither crashes nor hangs nor prints
# HDF5's "infinite loop closing library". Under the sanitizer build the vetting child's reports
# (it reads the file and dies of HDF5's fault) go to a folder of their own and must each be
# inside HDF5; a report in any other difflab process still fails the test (lib.sh).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
export DIFFLAB_READ_SECONDS=3
findings=$SRC/tests/fuzz/hdf5_findings
ls "$findings"/*.h5 >/dev/null 2>&1 && pass || { fail "no findings in $findings"; finish; }

cat > s.yaml <<'Y'
name: f
data: {type: eight_gaussians}
model: {type: mlp, width: 8, depth: 1, nfreq: 2}
diffusion: {schedule: {type: ddpm_linear, T: 50}}
sampler: {type: ddpm, steps: 3}
train: {steps: 10, batch: 16, n_data: 100}
eval: {n_samples: 20, n_ref: 20, swd_projections: 4, mmd_max: 20}
run: {progress: none, ckpt_every: 10}
Y
expect_exit 0 timeout 120 "$DIFFLAB" run s.yaml
good=$(ls results/runs)
n=0
for f in "$findings"/*.h5; do
  d=results/runs/bad-$(basename "$f" .h5)
  mkdir -p "$d" && cp "$f" "$d/run.h5"
  n=$((n + 1))
done
before=$(tree_state results/runs)

# The vetting child's sanitizer reports go apart (the parent's still go to lib.sh's folder).
child_logs=$TMP/child-sanitizer
mkdir -p "$child_logs"
t0=$(date +%s)
ASAN_OPTIONS="${ASAN_OPTIONS//$TMP\/sanitizer\//$child_logs/}" \
  expect_exit 1 timeout 300 "$DIFFLAB" reindex
took=$(( $(date +%s) - t0 ))
# At most the read limit (+ the child's restart) per file, however each one fails.
[ "$took" -le $(( n * 5 + 30 )) ] && pass || fail "reindex of $n damaged run files took $took s"
expect_out "1 run indexed, $n skipped"
# Per class: a hang is a time-out, a leak on HDF5's error path a plain refusal (the reader's own
# message), a crash or a huge allocation the end of the reader (a signal; the sanitizer's exit
# status in the sanitizer build) or a time-out.
for f in "$findings"/*.h5; do
  b=$(basename "$f" .h5)
  case $b in
    timeout_*) why="reading it took more than 3 s" ;;
    leak_*) why="not a valid run file: reading .* failed \\(HDF5: " ;;
    *) why="(reading it crashed the reader \\(signal|reading it ended the reader \\(exit status|reading it took more than 3 s).*the file is damaged" ;;
  esac
  expect_out "skipped .*runs/bad-$b: .*bad-$b/run.h5: $why"
done
if grep -q 'infinite loop closing library' "$TMP/out"; then fail "HDF5 could not shut down in reindex"; else pass; fi
expect_exit 0 "$DIFFLAB" query "SELECT run_id FROM runs" --csv
[ "$(tail -n +2 "$TMP/out")" = "$good" ] && pass || { fail "the index does not hold exactly the good run:"; cat "$TMP/out" >&2; }
[ "$(tree_state results/runs)" = "$before" ] && pass || fail "run files changed"

# Every report from a vetting child names an HDF5 frame before any difflab one: the damage is
# HDF5's, contained by the child.
for r in "$child_logs"/*; do
  [ -e "$r" ] || continue
  first=$(grep -m1 -E '^ +#[0-9]+ .* in (H5|dm_|[a-z_]+ /)' "$r" || true)
  case $first in
    *" in H5"*) pass ;;
    *) fail "a sanitizer report not inside HDF5 ($(basename "$r")): $first"; head -20 "$r" >&2 ;;
  esac
done

finish
