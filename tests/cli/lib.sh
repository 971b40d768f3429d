# Shared helpers for the CLI end-to-end tests: sourced, not run. $1 of the test is the difflab
# binary, $2 the source tree.
set -u
DIFFLAB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/difflab-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export DIFFLAB_RESULTS="$TMP/results"
FAILS=0
PASSES=0

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

finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
