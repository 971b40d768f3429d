#!/usr/bin/env bash
# Progress (issue 18, point 4): on output that is not a terminal every line is led by the run's
# id (two runs under make -j 2 interleave and each line says whose it is); the training line's
# loss is the recorded one (the mean since the last logged step); sampling, the likelihood and
# the metrics each say when they start and end, in `run` and in `sample`.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > s.yaml <<'Y'
name: prog
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: vp}}
sampler: {type: euler, steps: 8}
train: {steps: 30, batch: 64, n_data: 500}
eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200, nll: true, nll_n: 50}
run: {log_every: 10}
Y
expect_exit 0 "$DIFFLAB" run s.yaml
id=$(sed -n 's/^run \(prog-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
[ -n "$id" ] && pass || fail "no run id in: $(cat "$TMP/out")"
expect_out "^$id: step 10/30  loss [0-9.]+ " && expect_out "^$id: step 30/30 "
# The loss shown at each log step is the recorded interval mean.
for step in 10 20 30; do
  shown=$(sed -n "s/^$id: step $step\/30  loss \([0-9.]*\) .*/\1/p" "$TMP/out")
  rec=$("$DIFFLAB" query "SELECT printf('%.4f', value) FROM metrics WHERE run_id = '$id' AND key = 'loss' AND step = $step" --csv | tail -n 1)
  [ -n "$shown" ] && [ "$shown" = "$rec" ] && pass || fail "step $step: shown loss '$shown', recorded '$rec'"
done
expect_out "^$id: sampling euler, 200 samples \.\.\.$"
expect_out "^$id: sampling euler, 200 samples: done in [0-9.]+ s \([0-9]+ network evaluations\)$"
expect_out "^$id: metrics of euler nfe [0-9]+: done in [0-9.]+ s$"
expect_out "^$id: likelihood \(PF-ODE\), 50 points: done in [0-9.]+ s \([0-9]+ network evaluations\)$"
# Every progress line names the run (nothing unlabelled between the run's first and last line).
unlabelled=$(sed -n '/^run prog-.*: .*runs\//,/^run prog-.* finished/p' "$TMP/out" | sed '1d;$d' | grep -v "^$id: " || true)
[ -z "$unlabelled" ] && pass || fail "progress lines without the run id: $unlabelled"

# sample: the sampling phase of the run sampled, under its id.
expect_exit 0 "$DIFFLAB" sample "$id" --steps 4
expect_out "^$id: sampling euler, 200 samples: done in " && expect_out "^$id: metrics of euler nfe "

# Two runs under make -j 2: every step line carries one of their ids.
sed 's/^name: prog/name: other/' s.yaml > o.yaml
expect_exit 0 make -s -f "$SRC/Makefile.runs" SPECS="s.yaml o.yaml" RESULTS=results2 DIFFLAB="$DIFFLAB" -j 2
n_steps=$(grep -c ' step [0-9]*/30 ' "$TMP/out")
n_named=$(grep -cE '^(prog|other)-[0-9a-f]{10}-s0: step [0-9]+/30 ' "$TMP/out")
[ "$n_steps" -ge 6 ] && [ "$n_steps" = "$n_named" ] && pass || fail "make -j 2: $n_named of $n_steps step lines name their run"
finish
