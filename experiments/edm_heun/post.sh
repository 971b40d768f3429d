#!/usr/bin/env bash
# Sample every finished run of the sweep with the sampler grid: Euler with N steps (NFE N) and
# Heun with M steps (NFE 2M - 1) at matched NFE 5, 9, 17, 25, 33, 65, 129; RK45 at rtol = atol
# 1e-2, 1e-3, 1e-4; each records ode_err against the run's one PF-ODE reference (eval.ode_err in
# the sweep). The analytic runs also get the floor: exact draws from the mixture (sampler exact,
# which follows no ODE, so without ode_err). Samples already recorded are skipped; runs are sampled
# JOBS at a time (study_lib.sh). QUICK: one NFE per sampler.
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"
if [ -n "${QUICK:-}" ]; then export NFES="5" TOLS="1e-2"; else export NFES="5 9 17 25 33 65 129" TOLS="1e-2 1e-3 1e-4"; fi

one_run() {
  local id=$1 n m tol have
  for n in $NFES; do
    m=$(( (n + 1) / 2 ))
    for sm in "euler $n" "heun $m"; do
      set -- $sm
      have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = '$1' AND metric = 'swd'
                AND json_extract(settings, '$.steps') = $2 AND json_extract(settings, '$.s_churn') IS NOT 1")
      [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: $1, steps: $2}" > /dev/null
    done
  done
  if [ "$(q "SELECT text_value FROM params WHERE run_id = '$id' AND key = 'model.type'")" = analytic ]; then
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'swd'")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: exact}" eval.ode_err=false > /dev/null
  fi
  for tol in $TOLS; do
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'rk45' AND metric = 'swd'
              AND json_extract(settings, '$.rtol') = $tol")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: rk45, rtol: $tol, atol: $tol}" > /dev/null
  done
}
export -f one_run
for_each_run one_run
