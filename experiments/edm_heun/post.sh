#!/usr/bin/env bash
# Sample every finished run of the sweep with the sampler grid: Euler with N steps (NFE N) and
# Heun with M steps (NFE 2M - 1) at matched NFE 5, 9, 17, 33, 65; RK45 at rtol = atol 1e-2, 1e-3,
# 1e-4. Samples already recorded are skipped. QUICK: one NFE per sampler.
set -euo pipefail
q() { "$DIFFLAB" --results "$RESULTS" query "$1" --csv | tail -n +2; }
if [ -n "${QUICK:-}" ]; then nfes="5"; tols="1e-2"; else nfes="5 9 17 33 65"; tols="1e-2 1e-3 1e-4"; fi
for id in $(q "SELECT s.run_id FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
               WHERE s.sweep = '$SWEEP' AND r.status = 'finished' ORDER BY s.run_id"); do
  for n in $nfes; do
    m=$(( (n + 1) / 2 ))
    for sm in "euler $n" "heun $m"; do
      set -- $sm
      have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = '$1' AND metric = 'swd'
                AND json_extract(settings, '$.steps') = $2 AND json_extract(settings, '$.s_churn') IS NOT 1")
      [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: $1, steps: $2}" > /dev/null
    done
  done
  for tol in $tols; do
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'rk45' AND metric = 'swd'
              AND json_extract(settings, '$.rtol') = $tol")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: rk45, rtol: $tol, atol: $tol}" > /dev/null
  done
done
