#!/usr/bin/env bash
# Sample every finished run of the sweep at guidance w = 0.5, 1, 2, 4 (its own samples are w = 0),
# with its own sampler (ancestral, 50 steps). The floor: sampler exact, class-conditional training images
# (1000, the same labels) against the same test images, once per run. Sets already recorded are
# skipped. QUICK: w = 2 only.
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"
if [ -n "${QUICK:-}" ]; then export WS="2"; else export WS="0.5 1 2 4"; fi
one_run() {
  local id=$1 w have
  for w in $WS; do
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND metric = 'fd' AND sampler = 'ddpm'
              AND json_extract(settings, '$.scale') = $w")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "guidance={type: cfg, scale: $w}" > /dev/null
  done
  [ "$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'fd'")" -gt 0 ] ||
    "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: exact}" > /dev/null
}
export -f one_run
for_each_run one_run
