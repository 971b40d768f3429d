#!/usr/bin/env bash
# fixture.sh DIFFLAB SRC OUT: the report tests' fixture (tests/cli/lib.sh report_fixture) made once
# into OUT/results (ctest report_fixture, FIXTURES_SETUP report); cli_report and browser_report copy
# it (use_report_fixture). Made in a scratch folder and moved into place, so OUT never holds half.
. "$(dirname "$0")/../cli/lib.sh"
out=${3:?usage: fixture.sh DIFFLAB SRC OUT}
rm -rf "$out" "$out.tmp"
cd "$TMP"
report_fixture
if [ "$FAILS" -eq 0 ]; then
  mkdir -p "$out.tmp" && cp -r "$DIFFLAB_RESULTS" "$out.tmp/results" && mv "$out.tmp" "$out" &&
    pass || fail "cannot write the fixture to $out"
fi
finish
