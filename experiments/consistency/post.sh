#!/usr/bin/env bash
# Two-step sampling: every finished run of the sweep is sampled again with the consistency
# sampler at 2 steps (x <- f(x, sigma_max); x <- x + sqrt(tau_1^2 - eps^2) z; x <- f(x, tau_1), at
# the sampler's default tau_1); its own sampler (cm, 1 step) already recorded the one-step evals.
# Sample sets already recorded are skipped. QUICK: the same (two steps are cheap).
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"

one_run() {
  local id=$1 have
  have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'cm' AND metric = 'swd'
            AND json_extract(settings, '$.steps') = 2")
  [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" --sampler cm --steps 2 > /dev/null
}
export -f one_run
for_each_run one_run
