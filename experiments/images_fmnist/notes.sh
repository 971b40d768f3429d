#!/usr/bin/env bash
# RESULTS.md's section on the feature network (scripts/study.sh appends this script's output): the
# run every fd, kid, precision and recall of the sweep was computed with, and its accuracy on the
# clean test split.
set -euo pipefail
. "$(dirname "$0")/../../scripts/study_lib.sh"
echo "## The feature network"
echo
echo "Every fd, kid, precision and recall above is computed in the feature space of this run (eval.features):"
echo "its accuracy on the clean test split (n: test images)."
echo
echo "| feature network | accuracy |"
echo "|---|---:|"
q "SELECT DISTINCT json_extract(e.settings, '$.features') FROM evals e JOIN sweep_runs s ON s.run_id = e.run_id
   WHERE s.sweep = '$SWEEP' AND e.metric = 'fd'" | while read -r f; do
  echo "| \`$f\` | $(q "SELECT printf('%.4f', value) || ' (n=' || n_samples || ')' FROM evals
                         WHERE run_id = '$f' AND metric = 'accuracy' AND settings = '{\"clean\":true}'") |"
done
