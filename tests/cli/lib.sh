# Shared helpers for the CLI end-to-end tests: sourced, not run. $1 of the test is the difflab
# binary, $2 the source tree.
set -u
DIFFLAB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/difflab-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export DIFFLAB_RESULTS="$TMP/results"
# Under the sanitizer build (scripts/test.sh's second pass) every difflab process, backgrounded
# and killed ones included, writes any AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer
# report to a file here rather than to the stderr a test may expect an exit code from or discard;
# finish() fails the test if any report was written. Harmless in the optimized build.
mkdir -p "$TMP/sanitizer"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TMP/sanitizer/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$TMP/sanitizer/ubsan"
FAILS=0
PASSES=0
# DIFFLAB_SANITIZED=1 (set by ctest in the sanitizer build): the tests that train for quality
# (run_e2e, methods, cm_quality) train a fifth as long there and leave their quality thresholds
# (how close samples come to the data) to the optimized build, where the same code is checked at
# full size; every other check, and every sanitizer report, still counts.
SANITIZED=${DIFFLAB_SANITIZED:-0}
# sized N: N in the optimized build, N/5 (at least 1) in the sanitizer build.
sized() { if [ "$SANITIZED" = 1 ]; then echo $(( $1 / 5 > 0 ? $1 / 5 : 1 )); else echo "$1"; fi; }
# quality: true when quality thresholds apply (the optimized build).
quality() { [ "$SANITIZED" != 1 ]; }

pass() { PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect_exit CODE CMD...: runs CMD, stdout+stderr into $TMP/out, checks the exit code.
expect_exit() {
  local want=$1; shift
  "$@" >"$TMP/out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then fail "exit $got (want $want): $*"; sed 's/^/    /' "$TMP/out" >&2; return 1; fi
  pass
}

# expect_out PATTERN: the last command's output matches the extended regex.
expect_out() {
  if grep -Eq -- "$1" "$TMP/out"; then pass; else fail "output lacks /$1/:"; sed 's/^/    /' "$TMP/out" >&2; fi
}

# tree_state DIR: a listing of every file with its checksum (to assert "unchanged").
tree_state() { (cd "$1" 2>/dev/null && find . -type f -exec sha256sum {} + | sort) || echo "absent"; }

# sanitizer_reports: fails once per report file the sanitizers wrote, showing its first lines.
sanitizer_reports() {
  local f
  for f in "$TMP"/sanitizer/*; do
    [ -e "$f" ] || continue
    fail "sanitizer report $(basename "$f"):"
    sed -n '1,40s/^/    /p' "$f" >&2
  done
}

finish() {
  sanitizer_reports
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# need_or_skip VAR REASON...: a part of a test that cannot run here (REASON says why) ends the test.
# Under CI=true or VAR=1 (scripts/test.sh sets the DIFFLAB_REQUIRE_* variables) that is a failure,
# so a missing capability can never turn CI green; elsewhere it is a visible SKIP line.
need_or_skip() {
  local var=$1; shift
  if [ "${CI:-}" = true ] || [ "${!var:-0}" = 1 ]; then
    fail "$* (a failure, not a skip: CI=${CI:-} $var=${!var:-})"
  else
    echo "SKIP: $* (CI=true or $var=1 makes this a failure)"
  fi
  finish
  exit
}

# others_snap RUNS_DIR [RUN...]: the state of every run folder in RUNS_DIR except the RUNs named,
# kept for others_same. There must be at least one, or the check would prove nothing.
others_snap() {
  OTHERS_DIR=$1; shift
  OTHERS=()
  local d id x
  for d in "$OTHERS_DIR"/*/; do
    id=$(basename "$d")
    for x in "$@"; do [ "$id" = "$x" ] && continue 2; done
    OTHERS+=("$id")
  done
  [ ${#OTHERS[@]} -gt 0 ] || fail "others_snap: no other run in $OTHERS_DIR to compare"
  for id in "${OTHERS[@]}"; do echo "== $id"; tree_state "$OTHERS_DIR/$id"; done >"$TMP/others.want"
}

# others_same WHAT: every run folder of the last others_snap is byte-identical (same files, same
# checksums); otherwise one failure naming WHAT and the difference.
others_same() {
  local id
  for id in "${OTHERS[@]}"; do echo "== $id"; tree_state "$OTHERS_DIR/$id"; done >"$TMP/others.got"
  if cmp -s "$TMP/others.want" "$TMP/others.got"; then pass; else
    fail "$1: another run's files changed:"
    diff "$TMP/others.want" "$TMP/others.got" | sed 's/^/    /' >&2
  fi
}

# use_mounts WHO: this test mounts (bind, tmpfs) under $TMP: it needs root and mount rights
# (need_or_skip DIFFLAB_REQUIRE_MOUNTS otherwise, WHO naming the test). Every mount made with
# mount_at is undone on exit, even on failure or a kill other than -9; if anything under $TMP is
# still mounted then, the test fails and $TMP is kept (removing it would go through the mount).
use_mounts() {
  MOUNTS=()
  trap mounts_on_exit EXIT
  trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
  [ "$(id -u)" -eq 0 ] || need_or_skip DIFFLAB_REQUIRE_MOUNTS "$1: not root (uid $(id -u)); its faults need mounts"
  mkdir -p "$TMP/probe"
  mount_at "$TMP/probe" -t tmpfs -o size=64k tmpfs 2>"$TMP/probe.err" ||
    need_or_skip DIFFLAB_REQUIRE_MOUNTS "$1: cannot mount a tmpfs: $(tr -s '\n ' ' ' <"$TMP/probe.err")"
  unmount "$TMP/probe"
}
mounts_on_exit() {
  local rc=$? i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null
  done
  if [ -n "$(left_mounted)" ]; then
    echo "FAIL: still mounted: $(left_mounted | tr '\n' ' '); $TMP kept" >&2
    exit 1
  fi
  rm -rf "$TMP"
  exit "$rc"
}
# left_mounted: the mount points under $TMP.
left_mounted() { awk -v t="$TMP/" 'index($5 "/", t) == 1 { print $5 }' /proc/self/mountinfo; }
# mount_at TARGET MOUNT-ARGS...: mount, remembering TARGET for the clean-up on exit.
mount_at() { local t=$1; shift; mount "$@" "$t" && MOUNTS+=("$t"); }
# bind_ro SRC TARGET: SRC seen read-only at TARGET (a file over itself works too).
bind_ro() { mount_at "$2" --bind "$1" && mount -o remount,bind,ro "$2"; }
# unmount TARGET: the last mount at TARGET undone (a check) and forgotten.
unmount() {
  umount "$1" && pass || fail "umount $1"
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    if [ "${MOUNTS[i]}" = "$1" ]; then unset 'MOUNTS[i]'; MOUNTS=("${MOUNTS[@]}"); break; fi
  done
}

# report_fixture: for the report tests (tests/cli/report.sh, tests/browser/report.sh), in the
# current folder: the README's example sweep in its quick variant (example_rho_steps_quick: rho 1,
# 3, 7 against 6 and 12 Heun steps, 5 cells of seeds 0 and 1, 100 training steps logged every 10; its
# first run sampled again at the same steps with s_churn 0.5: evals that differ in settings alone),
# and the demo run, short (150 steps), sampled at 20 and then 10 steps, with a tag and a note.
report_fixture() {
  "$DIFFLAB" sweep "$SRC/experiments/example/sweep.yaml" --quick >"$TMP/out" 2>&1 &&
    make -s -f "$SRC/Makefile.runs" RESULTS="$DIFFLAB_RESULTS" DIFFLAB="$DIFFLAB" SWEEP=example_rho_steps_quick -j 2 \
      >"$TMP/out" 2>&1 &&
    "$DIFFLAB" sample "$("$DIFFLAB" query "SELECT min(run_id) FROM sweep_runs" --csv | tail -n 1)" sampler.s_churn=0.5 \
      run.progress=none >"$TMP/out" 2>&1 &&
    "$DIFFLAB" run "$SRC/configs/demo.yaml" train.steps=150 train.batch=256 train.n_data=4000 eval.n_samples=400 \
      eval.n_ref=400 eval.swd_projections=32 run.log_every=10 run.progress=none sampler.steps=20 >"$TMP/out" 2>&1 &&
    "$DIFFLAB" sample demo --steps 10 run.progress=none >"$TMP/out" 2>&1 &&
    "$DIFFLAB" tag demo baseline=yes >"$TMP/out" 2>&1 &&
    "$DIFFLAB" note demo "a <b>bold</b> note & more" >"$TMP/out" 2>&1 &&
    pass || { fail "the report fixture:"; sed 's/^/    /' "$TMP/out" >&2; }
}

# use_report_fixture: the report fixture in $DIFFLAB_RESULTS: a copy of the one ctest made once
# (DIFFLAB_REPORT_FIXTURE, tests/browser/fixture.sh), reindexed so the index names the copy's
# files; without it (the test run by hand), report_fixture makes it here.
use_report_fixture() {
  if [ -n "${DIFFLAB_REPORT_FIXTURE:-}" ] && [ -d "$DIFFLAB_REPORT_FIXTURE/results" ]; then
    cp -r "$DIFFLAB_REPORT_FIXTURE/results" "$DIFFLAB_RESULTS" && "$DIFFLAB" reindex >"$TMP/out" 2>&1 &&
      pass || { fail "copying the report fixture:"; sed 's/^/    /' "$TMP/out" >&2; }
  else
    report_fixture
  fi
}
