#!/usr/bin/env bash
# Sample every finished run of the sweep again:
#   - fixed-variance runs (own sampler: ddpm, variance beta, 100 respaced steps): variance beta~_t
#     (the posterior variance) on the same 100 steps, with eval.nll on, so the variational bound
#     is also recorded for beta~ (the bound depends on the decoder's variance);
#   - every run: its own variance on all 1000 steps (no respacing, as in the paper), eval.nll off
#     (the bound does not depend on the sampling grid and is already recorded).
# Sample sets already recorded are skipped. Runs are sampled JOBS at a time; the samples of one run
# stay in one process (two writers to one run.h5 would race). QUICK: the same on the quick sweep
# (20 and 1000 steps of 300 samples: a few seconds).
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"

one_run() {
  local id=$1 var steps
  have() {  # have VARIANCE STEPS: swd evals of this run's ddpm samples with these settings
    q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'ddpm' AND metric = 'swd'
       AND json_extract(settings, '\$.variance') = '$1' AND json_extract(settings, '\$.steps') = $2"
  }
  var=$(q "SELECT text_value FROM params WHERE run_id = '$id' AND key = 'sampler.variance'")
  steps=$(q "SELECT int_value FROM params WHERE run_id = '$id' AND key = 'sampler.steps'")
  if [ "$var" = beta ] && [ "$(have beta_tilde "$steps")" -eq 0 ]; then
    "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: ddpm, variance: beta_tilde, steps: $steps}" > /dev/null
  fi
  if [ "$(have "$var" 1000)" -eq 0 ]; then
    "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: ddpm, variance: $var, steps: 1000}" eval.nll=false > /dev/null
  fi
  echo "post: $id sampled"
}
export -f one_run
for_each_run one_run
