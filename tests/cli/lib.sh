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
