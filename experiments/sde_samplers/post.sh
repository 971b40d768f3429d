#!/usr/bin/env bash
# Sample every finished run of the sweep at matched NFE 2N, N = 10 and 100 (NFE 20 and 200):
#   em  — reverse-SDE Euler–Maruyama, 2N steps;
#   pc  — predictor reverse_diffusion, corrector_steps 0 (the reverse-diffusion / ancestral-type
#         predictor alone), 2N steps;
#   pc  — predictor reverse_diffusion + 1 Langevin corrector step (snr 0.16), N steps;
# all with denoise: false, so each uses exactly 2N network evaluations; and RK45 on the PF-ODE at
# rtol = atol 1e-2 and 1e-3 (adaptive: its NFE is whatever the tolerance needs); the exact-score runs
# also draw the floor (sampler exact: direct draws from the mixture). eval.nll=false:
# the run's NLL is already recorded (sample would compute it again). Sample sets already recorded
# are skipped. Runs are sampled JOBS at a time (one thread each); samples of one run stay in one
# process, since two writers to one run.h5 would race. QUICK: N = 10 only, RK45 at 1e-2 only.
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"
if [ -n "${QUICK:-}" ]; then export NS="10" TOLS="1e-2"; else export NS="10 100" TOLS="1e-2 1e-3"; fi

one_run() {  # sample one run with every sampler of the grid not recorded yet
  local id=$1 n m tol
  have() {  # have SAMPLER CONDITION: count of swd evals of this run matching
    q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = '$1' AND metric = 'swd' AND $2"
  }
  smp() { "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler=$1" eval.nll=false > /dev/null; }
  for n in $NS; do
    m=$((2 * n))
    [ "$(have em "json_extract(settings, '\$.steps') = $m AND json_extract(settings, '\$.denoise') = 0")" -gt 0 ] ||
      smp "{type: em, steps: $m, denoise: false}"
    [ "$(have pc "json_extract(settings, '\$.steps') = $m AND json_extract(settings, '\$.corrector_steps') = 0
                 AND json_extract(settings, '\$.denoise') = 0")" -gt 0 ] ||
      smp "{type: pc, predictor: reverse_diffusion, corrector_steps: 0, steps: $m, denoise: false}"
    [ "$(have pc "json_extract(settings, '\$.steps') = $n AND json_extract(settings, '\$.corrector_steps') = 1
                 AND json_extract(settings, '\$.denoise') = 0")" -gt 0 ] ||
      smp "{type: pc, predictor: reverse_diffusion, corrector_steps: 1, snr: 0.16, steps: $n, denoise: false}"
  done
  # The floor: exact draws from the mixture, once per exact-score run (no training, no ODE).
  if [ "$(q "SELECT text_value FROM params WHERE run_id = '$id' AND key = 'model.type'")" = analytic ]; then
    [ "$(have exact "1")" -gt 0 ] || smp "{type: exact}"
  fi
  for tol in $TOLS; do
    [ "$(have rk45 "json_extract(settings, '\$.rtol') = $tol")" -gt 0 ] ||
      smp "{type: rk45, rtol: $tol, atol: $tol}"
  done
  echo "post: $id sampled"
}
export -f one_run
for_each_run one_run
