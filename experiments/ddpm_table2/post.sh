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
export DIFFLAB RESULTS
q() { "$DIFFLAB" --results "$RESULTS" query "$1" --csv | tail -n +2; }

one_run() {
  local id=$1 var steps
  q() { "$DIFFLAB" --results "$RESULTS" query "$1" --csv | tail -n +2; }
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

q "SELECT s.run_id FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
   WHERE s.sweep = '$SWEEP' AND r.status = 'finished' ORDER BY s.run_id" |
  OMP_NUM_THREADS=$(( $(nproc) / ${JOBS:-1} > 0 ? $(nproc) / ${JOBS:-1} : 1 )) \
  xargs -r -n 1 -P "${JOBS:-1}" bash -c 'one_run "$1"' _
