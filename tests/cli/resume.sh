#!/usr/bin/env bash
# Crash safety, proven from each life's own log. A run is killed many times and resumed each time;
# every life's output is kept and checked:
#   - a life is killed only after it has written a checkpoint past its start (its log shows the
#     progress line after which that checkpoint is written; checkpoint.h5's /step is read after
#     each death), so every life makes progress;
#   - a resumed life says "resuming at step N" with N the step of the checkpoint its predecessor
#     left, and its progress lines (run.progress: lines, one every log_every steps) continue from N:
#     a resume that restarted from step 0, whatever it reports, shows it here;
#   - the steps executed over all lives, as their logs show them (log_every steps per progress
#     line), are at most steps + kills × ckpt_every (a SIGKILL loses at most one interval), and
#     exactly steps with the signals, which checkpoint before stopping;
#   - the finished run is bit-identical to one that never stopped: params_sha256 and every metric
#     point.
# Kills: SIGKILL at varied instants (8 lives), then SIGKILL at each phase of an atomic write of
# checkpoint.h5 and of run.h5 (DIFFLAB_FAULT, core/fault.h), after which no temporary file is left;
# SIGTERM, SIGINT and SIGUSR1 (3 lives each: checkpoint, status interrupted, the signal named). A
# kill between run.h5's "finished" and the index update is repaired by the next `run` / `resume`.
# A diverging run ends `diverged` with its last good checkpoint readable.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
STEPS=3000 CE=30 LE=5
cat > s.yaml <<Y
name: k
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: $STEPS, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: lines, ckpt_every: $CE, log_every: $LE, threads: 1}
Y
series() { "$DIFFLAB" --results "$1" query "SELECT key, step, printf('%.17g', value) FROM metrics ORDER BY key, step" --csv; }
sha() { "$DIFFLAB" --results "$1" query "SELECT status, params_sha256 FROM runs" --csv | tail -n 1; }
status() { "$DIFFLAB" --results "$1" query "SELECT status FROM runs" --csv | tail -n 1; }
# The step of a checkpoint file ($1, default the chain's checkpoint.h5); empty if it is unreadable.
ckpt_step() {
  h5dump -a /step "${1:-$(echo "$RES"/runs/*)/checkpoint.h5}" 2>/dev/null | sed -n 's/^ *(0): \([0-9][0-9]*\)$/\1/p'
}
show_log() { { head -n 3 "$log"; echo ...; tail -n 4 "$log"; } | sed 's/^/    /' >&2; }

expect_exit 0 "$DIFFLAB" --results full run s.yaml
want_sha=$(sha full)
want_series=$(series full)
[ "$(echo "$want_series" | wc -l)" -eq $((2 * STEPS / LE + 1)) ] && pass || fail "the reference run logged $(echo "$want_series" | wc -l) lines"

# A value of DIFFLAB_FAULT that names no point is refused before anything is written.
for v in ckpt:bogus ckpt ckpt:synced:0 ckpt:synced:x run:renamed:2:1 'ckpt:synced: 2'; do
  DIFFLAB_FAULT=$v expect_exit 2 "$DIFFLAB" --results bad run s.yaml && expect_out "DIFFLAB_FAULT='$v'"
  case $v in ckpt:bogus) expect_out 'names no fault point; known: ckpt:tmp_written, ckpt:synced, ckpt:renamed' ;; esac
done
[ ! -e bad ] && pass || fail "a refused DIFFLAB_FAULT wrote $(ls bad)"

# ---- one chain of lives of a run: begin_chain RESULTS RESUME-ARGS, then one *_life per life.
begin_chain() { RES=$1; RESUME=$2; n=0; start=0; executed=0; kills=0; left=; }
# life_begin [VAR=VALUE ...]: the next life in the background (`run` first, then RESUME); its
# output in $log.
life_begin() {
  n=$((n + 1))
  log="$TMP/$RES.life$n.log"
  if [ "$n" -eq 1 ]; then set -- "$@" "$DIFFLAB" --results "$RES" run s.yaml
  else set -- "$@" "$DIFFLAB" --results "$RES" $RESUME; fi
  : >"$log"   # there before wait_step opens it
  env "$@" >>"$log" 2>&1 &
  pid=$!
}
# nap: about 5 ms, without starting a process (a read that times out on a FIFO nobody writes).
mkfifo "$TMP/never"
exec 9<>"$TMP/never"
nap() { read -r -t 0.005 -u 9 || :; }
# wait_step STEP: until the life's log shows its progress line of step STEP or a later one. The
# loop that prints it writes a checkpoint every CE steps right after that step's line, so the
# last checkpoint due before STEP is then on disk (after_kill reads it back). Read with bash's
# own `read`, no process started: on a busy machine polling checkpoint.h5 with h5dump lagged
# several checkpoints behind a life. A life that ends first, or takes 10 minutes, ends the test
# (the chain's later checks would only repeat the failure).
wait_step() {
  local t0=$SECONDS line part= got fd
  exec {fd}<"$log"
  while :; do
    if IFS= read -r line <&$fd; then
      line=$part$line part=
      got=${line#*: step }   # "RUN_ID: step N/T ..."
      got=${got%%/*}
      case $got in ''|*[!0-9]*) ;; *) if [ "$got" -ge "$1" ]; then exec {fd}<&-; return 0; fi ;; esac
      continue
    fi
    part=$part$line   # a line not finished yet
    if ! kill -0 "$pid" 2>/dev/null; then fail "$RES life $n ended before its progress line of step $1"; break; fi
    if [ $((SECONDS - t0)) -gt 600 ]; then fail "$RES life $n: no progress line of step $1 within 600 s"; break; fi
    nap
  done
  exec {fd}<&-
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null   # (bash would report the kill)
  show_log
  finish
  exit 1
}
# life_log: after life n ended, its log against the start it was due to resume from: the resume
# line (or none, for the first life), the temporary files its predecessor left removed and
# reported, and progress lines consecutive from the start. Sets last (the last step shown) and
# adds LE steps to executed for each progress line.
life_log() {
  if [ "$n" -eq 1 ]; then
    ! grep -q 'resuming at step' "$log" && pass || { fail "$RES life 1 resumed"; show_log; }
  else
    grep -q "resuming at step $start of $STEPS\$" "$log" && pass ||
      { fail "$RES life $n: its log lacks 'resuming at step $start of $STEPS' (the checkpoint its predecessor left)"; show_log; }
  fi
  local f
  for f in $left; do
    grep -q "^removed .*/$f, left by a write that process [0-9]* did not finish\$" "$log" && [ ! -e "$dir/$f" ] && pass ||
      { fail "$RES life $n did not remove (or report) $f, left by the life it resumed"; show_log; }
  done
  local out ok
  out=$(sed -n 's|^[^ ]*: step \([0-9][0-9]*\)/[0-9][0-9]* .*|\1|p' "$log" | awk -v s="$start" -v le=$LE -v total=$STEPS '
    { want = s - s % le + le; if (want > total) want = total
      if (!bad && $1 != want) { msg = sprintf("step %d where step %d was due", $1, want); bad = 1 }
      s = $1 }
    END { print s, NR; if (bad) print msg; exit bad }')
  ok=$?
  local counts=${out%%$'\n'*}
  last=${counts% *}
  executed=$((executed + ${counts#* } * LE))
  [ "$ok" -eq 0 ] && pass ||
    { fail "$RES life $n started at step $start but its progress lines do not continue from there: ${out#*$'\n'}"; show_log; }
}
# after_kill: a life ended by SIGKILL (raised or sent): its checkpoint and lines; the
# temporary files it left (its pid) are expected gone after the next life.
after_kill() {
  dir=$(echo "$RES"/runs/*)
  s=$(ckpt_step)
  life_log
  [ -n "$s" ] && [ "$s" -gt "$start" ] && [ "$last" -ge "$s" ] && [ "$last" -le $((s + CE)) ] && pass ||
    { fail "$RES life $n (start $start): checkpoint at step '$s', last progress line $last (want start < checkpoint <= last <= checkpoint + $CE)"; show_log; }
  left=$(cd "$dir" && ls -A | grep -E "^\..*\.tmp\.$pid\$")
  kills=$((kills + 1))
  start=$s
}

# kill_life SIG: a life signalled at a random progress line between one past its first checkpoint
# past the start and the next checkpoint's (some kills land in the writes of that checkpoint),
# after a random 0 to 3 naps.
kill_life() {
  life_begin
  local trigger=$((start + CE + LE * (1 + RANDOM % (CE / LE)))) i
  wait_step "$trigger"
  for i in $(seq $((RANDOM % 4))); do nap; done
  kill -s "$1" "$pid"
  wait "$pid" 2>/dev/null   # (bash would report the kill)
  local rc=$?
  due=$(((trigger - 1) / CE * CE))   # the checkpoint written before the trigger's line
  if [ "$1" = KILL ]; then
    [ "$rc" -eq 137 ] && pass || { fail "$RES life $n: exit $rc, not killed"; show_log; }
    after_kill
    [ "$s" -ge "$due" ] && pass || fail "$RES life $n: killed after its line of step $trigger, the checkpoint is at step $s < $due"
    [ -z "$left" ] || inside=$((inside + 1))
    return
  fi
  # SIGTERM, SIGINT, SIGUSR1: the step ends, a checkpoint of it is written, the run is interrupted.
  dir=$(echo "$RES"/runs/*)
  s=$(ckpt_step)
  life_log
  [ "$rc" -eq 1 ] && pass || { fail "SIG$1: exit $rc"; show_log; }
  grep -q "interrupted by SIG$1 (signal $(kill -l "$1")) at step $s; \`difflab resume" "$log" && pass ||
    { fail "SIG$1: no message naming the signal and the checkpoint's step $s"; show_log; }
  [ -n "$s" ] && [ "$s" -ge "$trigger" ] && [ "$last" -le "$s" ] && [ $((s - last)) -lt $LE ] && pass ||
    { fail "SIG$1 life $n: checkpoint at step '$s', last progress line $last, signalled after step $trigger"; show_log; }
  expect_exit 0 "$DIFFLAB" --results "$RES" runs && expect_out 'k-[0-9a-f]+-s0 +k +interrupted'
  left=$(cd "$dir" && ls -A | grep -E '\.tmp\.')
  [ -z "$left" ] && pass || fail "SIG$1 left $left"
  start=$s
}

# fault_life POINT[:N] CKPT TMP: a life that DIFFLAB_FAULT kills at POINT (its N-th pass); the
# checkpoint it leaves is at step CKPT, and TMP (checkpoint.h5, run.h5, or nothing) is the
# temporary file left behind, complete (a checkpoint's holds the step after CKPT).
fault_life() {
  life_begin DIFFLAB_FAULT="$1"
  wait "$pid" 2>/dev/null   # (bash would report the kill)
  local rc=$? point=${1%:[0-9]*} nth=${1##*:}
  [ "$point" = "$1" ] && nth=1
  [ "$rc" -eq 137 ] && grep -q "^DIFFLAB_FAULT: SIGKILL at $point, pass $nth\$" "$log" && pass ||
    { fail "$RES life $n: exit $rc, not killed at $1"; show_log; }
  after_kill
  [ "$s" -eq "$2" ] && pass || fail "$1: the checkpoint is at step $s, want $2"
  if [ -n "${3:-}" ]; then
    [ "$left" = ".$3.tmp.$pid" ] && pass || fail "$1 left '$left', want .$3.tmp.$pid"
    if [ "$3" = checkpoint.h5 ]; then
      [ "$(ckpt_step "$dir/.$3.tmp.$pid")" = $(($2 + CE)) ] && pass || fail "$1: the temporary checkpoint is not complete"
    fi
  else
    [ -z "$left" ] && pass || fail "$1 left $left"
  fi
}

# final_life [VAR=VALUE ...]: the last life runs to the end; no temporary file is left; the steps
# executed over all lives are counted; exit status in rc.
final_life() {
  life_begin "$@"
  wait "$pid" 2>/dev/null   # (bash would report the kill)
  rc=$?
  dir=$(echo "$RES"/runs/*)
  life_log
  [ "$last" -eq "$STEPS" ] && pass || { fail "$RES life $n ended at step $last"; show_log; }
  [ -z "$(cd "$dir" && ls -A | grep -E '\.tmp\.')" ] && pass || fail "$RES: temporary files left: $(ls -A "$dir")"
  [ "$executed" -ge "$STEPS" ] && [ "$executed" -le $((STEPS + kills * CE)) ] && pass ||
    fail "$RES: $executed steps executed over $n lives, want $STEPS to $STEPS + $kills kills x $CE"
}

# SIGKILL at varied instants; each restart (`difflab run` again) resumes the dead run. Then a
# SIGKILL in each phase of an atomic replacement of checkpoint.h5 and run.h5. A resumed life at
# step S writes run.h5 once on resuming, then run.h5 and checkpoint.h5 at S + CE, S + 2 CE, ...:
# the N-th checkpoint write is at S + N CE, the N-th run.h5 write (N >= 2) at S + (N - 1) CE.
RANDOM=7
inside=0
begin_chain k "run s.yaml"
for i in $(seq 8); do
  kill_life KILL
  if [ "$i" -eq 1 ]; then   # the record still says running, but no process holds it: dead
    expect_exit 0 "$DIFFLAB" --results k runs && expect_out 'k-[0-9a-f]+-s0 +k +dead'
  fi
done
echo "note: $inside of 8 SIGKILLs landed inside a file write"
fault_life ckpt:tmp_written:2 $((start + CE)) checkpoint.h5
fault_life ckpt:synced:3 $((start + 2 * CE)) checkpoint.h5
fault_life ckpt:renamed $((start + CE))
fault_life run:tmp_written:3 $((start + CE)) run.h5
fault_life run:synced:4 $((start + 2 * CE)) run.h5
# Only temporary files of processes that no longer exist are removed: one of this shell (alive)
# stays, one of an ended process goes like those of the killed lives.
dead=$(sh -c 'echo $$')
touch "$dir/.checkpoint.h5.tmp.$$" "$dir/.run.h5.tmp.$dead"
left="$left .run.h5.tmp.$dead"
fault_life run:renamed:3 $((start + CE))
[ -e "$dir/.checkpoint.h5.tmp.$$" ] && ! grep -q "tmp\.$$," "$log" && pass || fail "a live process's temporary file was removed"
rm -f "$dir/.checkpoint.h5.tmp.$$"
echo "note: the last life resumed at step $start of $STEPS after $kills kills"
# The last life is killed after run.h5 says finished, before the index is updated; `run` again
# finds it finished and rewrites its index rows from run.h5.
final_life DIFFLAB_FAULT=finish:before_index
[ "$rc" -eq 137 ] && grep -q '^DIFFLAB_FAULT: SIGKILL at finish:before_index, pass 1$' "$log" && pass ||
  { fail "the last life: exit $rc, not killed before the index update"; show_log; }
h5dump -a /status k/runs/*/run.h5 >"$TMP/out" 2>&1 && expect_out '"finished"'
[ "$(status k)" = running ] && pass || fail "the index says $(status k) before the repair"
expect_exit 0 "$DIFFLAB" --results k runs && expect_out 'k-[0-9a-f]+-s0 +k +dead'
expect_exit 0 "$DIFFLAB" --results k run s.yaml && expect_out 'already finished' &&
  expect_out "the index said 'running'; its rows are rewritten from .*run.h5 \(finished\)"
[ "$(sha k)" = "$want_sha" ] && pass || fail "after the kills: $(sha k), want $want_sha"
[ "$(series k)" = "$want_series" ] && pass || fail "after the kills the metric series differ"
expect_exit 0 "$DIFFLAB" --results k run s.yaml && expect_out 'already finished'
grep -q 'rewritten' "$TMP/out" && fail "a repaired index row was rewritten again" || pass
h5dump -H k/runs/*/checkpoint.h5 >/dev/null && pass || fail "the checkpoint is not readable"

# SIGTERM, SIGINT, SIGUSR1 (Slurm's signal ahead of a time limit): 3 lives each, in turn, of one
# run; `difflab resume` continues each time and no step is lost. The last life is killed before
# the index update, and `difflab resume` repairs the row.
begin_chain sig "resume k"
for i in 1 2 3; do
  for sig in TERM INT USR1; do kill_life "$sig"; done
done
final_life DIFFLAB_FAULT=finish:before_index
[ "$rc" -eq 137 ] && pass || fail "the last life after the signals: exit $rc, not killed before the index update"
expect_exit 0 "$DIFFLAB" --results sig resume k && expect_out 'nothing to resume' &&
  expect_out "the index said 'running'; its rows are rewritten"
[ "$(sha sig)" = "$want_sha" ] && pass || fail "after the signals: $(sha sig), want $want_sha"
[ "$(series sig)" = "$want_series" ] && pass || fail "after the signals the metric series differ"
expect_exit 0 "$DIFFLAB" --results sig resume k && expect_out 'nothing to resume'
grep -q 'rewritten' "$TMP/out" && fail "a repaired index row was rewritten again" || pass

# Divergence: an absurd learning rate; the status says so, with the step and the quantity, and
# the last good checkpoint (step 1: one every step here) stays readable.
if expect_exit 1 "$DIFFLAB" --results d run s.yaml train.lr=1e20 train.grad_clip=0 run.ckpt_every=1; then
  expect_out 'the (loss|gradient norm|parameters).* (NaN|Inf|infinite).* step 2'
fi
expect_exit 0 "$DIFFLAB" --results d query "SELECT status FROM runs" --csv && expect_out '^diverged$'
h5dump -a /error d/runs/*/run.h5 >"$TMP/out" 2>&1 && expect_out 'NaN at step 2'
h5dump -a /step d/runs/*/checkpoint.h5 >"$TMP/out" 2>&1 && expect_out '\(0\): 1$'
finish
