#!/usr/bin/env bash
# Crash safety: a run killed with SIGKILL at 20 random instants (checkpoints are frequent, so some
# kills land inside checkpoint writes) and resumed each time ends bit-identical to a run that never
# stopped — final params_sha256 and every metric series point; the same with SIGTERM (which
# checkpoints and marks the run interrupted). A diverging run ends `diverged` with its last good
# checkpoint readable.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > s.yaml <<'Y'
name: k
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: 12000, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none, ckpt_every: 25, log_every: 5, threads: 1}
Y
series() { "$DIFFLAB" --results "$1" query "SELECT key, step, printf('%.17g', value) FROM metrics ORDER BY key, step" --csv; }
sha() { "$DIFFLAB" --results "$1" query "SELECT status, params_sha256 FROM runs" --csv | tail -n 1; }

t0=$(date +%s.%N)
expect_exit 0 "$DIFFLAB" --results full run s.yaml
t1=$(date +%s.%N)
want_sha=$(sha full)
want_series=$(series full)
[ "$(echo "$want_series" | wc -l)" -gt 300 ] && pass || fail "the reference run logged too little"
# Kill instants scaled to this machine: after the start-up (process time not spent in the run),
# plus up to 1/25 of the run's own time, so 20 lives never finish the run and every kill hits a
# live process, some inside checkpoint writes (one every 25 steps).
wall=$("$DIFFLAB" --results full query "SELECT wall_s FROM runs" --csv | tail -n 1)
read -r startup slice < <(awk -v a="$t0" -v b="$t1" -v w="$wall" 'BEGIN { s = b - a - w; if (s < 0.05) s = 0.05; print s, w / 25 }')
delay() { awk -v s="$startup" -v l="$slice" -v r="$RANDOM" 'BEGIN { printf "%.3f", s + l * (r % 1000) / 1000 }'; }

# SIGKILL at 20 random instants; each restart (`difflab run` again) resumes the dead run.
RANDOM=7
kills=0
for i in $(seq 20); do
  "$DIFFLAB" --results k run s.yaml >/dev/null 2>&1 &
  pid=$!
  sleep "$(delay)"
  if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
done
[ "$kills" -eq 20 ] && pass || fail "only $kills of 20 kills hit a live run"
# Killed with -9: the record still says running, but no process holds it: `difflab runs` says dead.
expect_exit 0 "$DIFFLAB" --results k runs && expect_out 'k-[0-9a-f]+-s0 +dead' 
expect_exit 0 "$DIFFLAB" --results k run s.yaml
[ "$(sha k)" = "$want_sha" ] && pass || fail "after SIGKILLs: $(sha k), want $want_sha"
[ "$(series k)" = "$want_series" ] && pass || fail "after SIGKILLs the metric series differ"
h5dump -H k/runs/*/checkpoint.h5 >/dev/null && pass || fail "the checkpoint is not readable"

# SIGTERM: checkpoint, status interrupted, non-zero exit; `difflab resume` continues.
for i in 1 2 3; do
  "$DIFFLAB" --results t run s.yaml >/dev/null 2>"$TMP/err" &
  pid=$!
  sleep "$(delay)"
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  st=$("$DIFFLAB" --results t query "SELECT status FROM runs" --csv | tail -n 1)
  if [ "$st" = finished ]; then break; fi
  [ "$rc" -ne 0 ] && [ "$st" = interrupted ] && pass || fail "SIGTERM: exit $rc, status $st"
  grep -q 'interrupted by signal 15 at step [0-9]*' "$TMP/err" && pass || fail "SIGTERM: no message"
  expect_exit 0 "$DIFFLAB" --results t runs && expect_out 'interrupted'
  if [ $i -lt 3 ]; then continue; fi
done
expect_exit 0 "$DIFFLAB" --results t resume k && expect_out 'finished'
[ "$(sha t)" = "$want_sha" ] && pass || fail "after SIGTERMs: $(sha t), want $want_sha"
[ "$(series t)" = "$want_series" ] && pass || fail "after SIGTERMs the metric series differ"
expect_exit 0 "$DIFFLAB" --results t resume k && expect_out 'nothing to resume'

# Divergence: an absurd learning rate; the status says so, with the step and the quantity, and
# the last good checkpoint (step 1: one every step here) stays readable.
if expect_exit 1 "$DIFFLAB" --results d run s.yaml train.lr=1e20 train.grad_clip=0 run.ckpt_every=1; then
  expect_out 'the (loss|gradient norm|parameters).* (NaN|Inf|infinite).* step 2'
fi
expect_exit 0 "$DIFFLAB" --results d query "SELECT status FROM runs" --csv && expect_out '^diverged$'
h5dump -a /error d/runs/*/run.h5 >"$TMP/out" 2>&1 && expect_out 'NaN at step 2'
h5dump -a /step d/runs/*/checkpoint.h5 >"$TMP/out" 2>&1 && expect_out '\(0\): 1$'
finish
