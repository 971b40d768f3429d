#!/usr/bin/env bash
# Two-step sampling: every finished run of the sweep is sampled again with the consistency
# sampler at 2 steps (x <- f(x, sigma_max); x <- x + sqrt(tau_1^2 - eps^2) z; x <- f(x, tau_1), at
# the sampler's default tau_1); its own sampler (cm, 1 step) already recorded the one-step evals.
# Sample sets already recorded are skipped. QUICK: the same (two steps are cheap).
set -euo pipefail
q() { "$DIFFLAB" --results "$RESULTS" query "$1" --csv | tail -n +2; }
for id in $(q "SELECT s.run_id FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
               WHERE s.sweep = '$SWEEP' AND r.status = 'finished' ORDER BY s.run_id"); do
  for steps in 2; do
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'cm' AND metric = 'swd'
              AND json_extract(settings, '$.steps') = $steps")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" --sampler cm --steps "$steps" > /dev/null
  done
done
