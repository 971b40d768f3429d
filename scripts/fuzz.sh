#!/usr/bin/env bash
# A long libFuzzer run of one fuzz target (docs/fuzz.md): builds the clang fuzz build in build-fuzz/
# if needed (CC=clang-14, -DDIFFLAB_FUZZ=ON: ASan + UBSan, coverage; scripts/install-deps.sh --fuzz
# brings clang), then fuzzes a scratch copy of the committed corpus, so the repository is not
# touched unless asked.
# Usage: scripts/fuzz.sh TARGET SECONDS [RUNS]
#   TARGET   spec | override | sweep | table | runfile
#   SECONDS  -max_total_time; RUNS (optional) -runs, e.g. 1000000: whichever comes first
# Environment:
#   FUZZ_MERGE=1     merge the new interesting inputs into tests/fuzz/corpus/TARGET/ at the end
#                    (-merge=1: only inputs that add coverage; name them, see docs/fuzz.md)
#   FUZZ_JOBS=N      -fork=N (crashes and timeouts then do not stop the run; runfile: 1 by default)
#   FUZZ_TIMEOUT=S   -timeout per input (default 10 s)
#   FUZZ_ARGS="..."  more libFuzzer flags
# Crashes, leaks and timeouts are written to build-fuzz/artifacts/TARGET/; the log to
# build-fuzz/logs/TARGET-<time>.log; the last lines say executions, exec/s and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [RUNS]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [RUNS]}
runs=${3:--1}
case $target in
  spec|override|sweep|table) dict=(-dict="$root/tests/fuzz/spec.dict") ;;
  runfile) dict=(-dict="$root/tests/fuzz/runfile.dict") ;;
  *) echo "fuzz.sh: unknown target '$target'; valid: spec override sweep table runfile" >&2; exit 2 ;;
esac
command -v clang-14 >/dev/null || { echo "fuzz.sh: clang-14 is missing: scripts/install-deps.sh --fuzz" >&2; exit 1; }

b=$root/build-fuzz
if [ ! -f "$b/CMakeCache.txt" ]; then
  CC=clang-14 cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDIFFLAB_FUZZ=ON -DDIFFLAB_NATIVE=OFF >/dev/null
fi
nice cmake --build "$b" -j"$(nproc)" --target "fuzz_$target" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$root/tests/fuzz/corpus/$target" "$work/corpus"
mkdir -p "$b/artifacts/$target" "$b/logs" "$work/tmp"
log=$b/logs/$target-$(date +%Y%m%d-%H%M%S).log
# One input at a time in this process: OMP and OpenBLAS single-threaded; the target's files go to
# a tmpfs when there is one (an index commit's fsync costs nothing there).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export TMPDIR=$work/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && TMPDIR=$(mktemp -d /dev/shm/difflab-fuzz-$target.XXXXXX) && trap 'rm -rf "$work" "$TMPDIR"' EXIT
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The runfile target forks by default: the HDF5 library crashes, hangs and leaks on some corrupt
# files (tests/fuzz/hdf5_findings/), which must not end a long run; its leaks in the metadata cache
# are suppressed (tests/fuzz/lsan_hdf5.supp). Every artifact is triaged by hand (docs/fuzz.md).
if [ "$target" = runfile ]; then
  FUZZ_JOBS=${FUZZ_JOBS:-1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan_hdf5.supp:print_suppressions=0}
  # HDF5 has no frame pointers: only the slow unwinder sees the H5C_protect frame to suppress.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1:fast_unwind_on_malloc=0}
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
fork=()
[ -n "${FUZZ_JOBS:-}" ] && fork=(-fork="$FUZZ_JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
echo "fuzz.sh: $target for ${seconds}s (runs $runs), corpus $(ls "$work/corpus" | wc -l) inputs, log $log" >&2
set +e
nice -n 10 "$b/tests/fuzz/fuzz_$target" "${dict[@]}" -max_total_time="$seconds" -runs="$runs" \
  -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$b/artifacts/$target/" "${fork[@]}" ${FUZZ_ARGS:-} "$work/corpus" > "$log" 2>&1
rc=$?
set -e
grep -E '^#[0-9]+(.*(DONE|pulse|NEW|REDUCE)|: cov:)' "$log" | tail -1 || true   # (the second: -fork)
grep -E '^stat::' "$log" || true
grep -E 'ERROR: |==ERROR|runtime error|invariant broken|Test unit written|timeout' "$log" | head -20 || true
echo "fuzz.sh: exit $rc; corpus now $(ls "$work/corpus" | wc -l) inputs; artifacts in $b/artifacts/$target/" >&2
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$b/tests/fuzz/fuzz_$target" -merge=1 "$root/tests/fuzz/corpus/$target" "$work/corpus" >> "$log" 2>&1
  echo "fuzz.sh: merged into tests/fuzz/corpus/$target/ (rename the new files: docs/fuzz.md)" >&2
fi
exit $rc
