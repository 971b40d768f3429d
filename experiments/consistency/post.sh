#!/usr/bin/env bash
# Two-step sampling: every finished run of the sweep is sampled again with the consistency
# sampler at 2 steps (x <- f(x, sigma_max); x <- x + sqrt(tau_1^2 - eps^2) z; x <- f(x, tau_1), at
# the sampler's default tau_1); its own sampler (cm, 1 step) already recorded the one-step evals.
# The floor row comes from exact draws of the mixture (sampler exact), once per seed. Sample sets
# already recorded are skipped. QUICK: the same (two steps are cheap).
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"

one_run() {
  local id=$1 have
  have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'cm' AND metric = 'swd'
            AND json_extract(settings, '$.steps') = 2")
  [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" --sampler cm --steps 2 > /dev/null
  # The floor: exact draws from the mixture, once per seed (they depend only on the data, the eval
  # settings and the seed): on the CD runs with EDM's time input and the l2 distance.
  if [ "$(q "SELECT count(*) FROM params WHERE run_id = '$id' AND ((key = 'diffusion.loss.type' AND text_value = 'cd')
             OR (key = 'diffusion.schedule.time_input' AND text_value = 'edm')
             OR (key = 'diffusion.loss.distance' AND text_value = 'l2'))")" = 3 ]; then
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'swd'")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: exact}" > /dev/null
  fi
}
export -f one_run
for_each_run one_run
