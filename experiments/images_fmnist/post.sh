#!/usr/bin/env bash
# Sample every finished run of the sweep at more NFE (each run's own sampler is already recorded):
# DDPM runs with ancestral sampling (sigma^2 = beta) respaced to 10, 20, 50 steps and with DDIM (eta
# 0) at 10, 20, 50, 100 steps; EDM runs with Heun at 5, 9, 18 steps (NFE 9, 17, 35) and Euler at 9,
# 17, 35 steps (the same NFE); consistency runs (ict, cd) with two steps. The EDM runs also draw the
# floor: sampler exact, 2000 training images against the same 10000 test images (one per seed).
# Every set gets fd, kid, precision and recall from the run's eval.features. Sets already recorded
# are skipped; runs are sampled JOBS at a time. QUICK: one more NFE per method. The full study
# then copies seed 0's grids (the first 64 samples of a set) of each method into grids/.
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"
if [ -n "${QUICK:-}" ]; then
  export DDPM_STEPS="10" DDIM_STEPS="10" HEUN_STEPS="5" EULER_STEPS="9"
else
  export DDPM_STEPS="10 20 50" DDIM_STEPS="10 20 50 100" HEUN_STEPS="5 9 18" EULER_STEPS="9 17 35"
fi

one_run() {
  local id=$1 name s
  name=$(q "SELECT name FROM runs WHERE run_id = '$id'")
  smp() {   # smp TYPE STEPS [EXTRA]: sample unless the set is recorded
    local have
    have=$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = '$1' AND metric = 'fd'
              AND json_extract(settings, '$.steps') = $2")
    [ "$have" -gt 0 ] || "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: $1, steps: $2${3:+, $3}}" > /dev/null
  }
  case $name in
    images_ddpm)
      for s in $DDPM_STEPS; do smp ddpm "$s" "variance: beta"; done
      for s in $DDIM_STEPS; do smp ddim "$s" "eta: 0"; done ;;
    images_edm)
      for s in $HEUN_STEPS; do smp heun "$s"; done
      for s in $EULER_STEPS; do smp euler "$s"; done
      [ "$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'fd'")" -gt 0 ] ||
        "$DIFFLAB" --results "$RESULTS" sample "$id" "sampler={type: exact}" > /dev/null ;;
    images_ict | images_cd)
      smp cm 2 ;;
  esac
}
export -f one_run
for_each_run one_run
if [ -n "${QUICK:-}" ]; then exit 0; fi
mkdir -p "$STUDY_DIR/grids"
for pick in images_ddpm:ddpm_100 images_ddpm:ddim_10 images_edm:heun_35 images_edm:euler_9 images_edm:exact_0 \
            images_ict:cm_1 images_cd:cm_1 images_cd:cm_2; do
  name=${pick%%:*} set=${pick#*:}
  dir=$(q "SELECT r.path FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id
           WHERE s.sweep = '$SWEEP' AND r.name = '$name' AND r.seed = 0")
  if [ -f "$dir/$set.png" ]; then cp "$dir/$set.png" "$STUDY_DIR/grids/${name#images_}_$set.png"; fi
done
