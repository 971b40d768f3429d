#!/usr/bin/env bash
# The pictures: draws from the exact posterior p(x0 | x_t) of one noisy point at each noise level
# (posterior_<level>.svg of the std-0.1, seed-0 run), copied to figures/ with the level's sigma in
# the name. The full study only (QUICK leaves the committed figures alone).
set -euo pipefail
[ -z "${QUICK:-}" ] || exit 0
. "$(dirname "$0")/../../scripts/study_lib.sh"
id=$(q "SELECT s.run_id FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
        JOIN params p ON p.run_id = s.run_id AND p.key = 'data.std'
        WHERE s.sweep = '$SWEEP' AND r.status = 'finished' AND r.seed = 0 AND p.real_value = 0.1")
dir=$(q "SELECT path FROM runs WHERE run_id = '$id'")
mkdir -p "$STUDY_DIR/figures"
rm -f "$STUDY_DIR"/figures/posterior_*.png "$STUDY_DIR"/figures/posterior_*.svg
for pic in "$dir"/posterior_*.svg; do
  level=$(basename "$pic" .svg | sed 's/posterior_//')
  sigma=$(q "SELECT printf('%.3g', json_extract(settings, '$.sigma')) FROM evals WHERE run_id = '$id'
             AND metric = 'post_std' ORDER BY json_extract(settings, '$.sigma') DESC LIMIT 1 OFFSET $((10#$level))")
  cp "$pic" "$STUDY_DIR/figures/posterior_${level}_sigma_${sigma}.svg"
done
