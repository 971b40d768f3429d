# study_lib.sh — helpers for a study's post.sh (sourced, not run): scripts/study.sh runs post.sh
# with DIFFLAB, RESULTS, SWEEP, STUDY_DIR, QUICK and JOBS in its environment.
#
#   q SQL             the rows of a query on the index, without the header (CSV)
#   for_each_run FN   FN RUN_ID for every finished run of the sweep, JOBS runs at a time with
#                     cores / JOBS OpenMP threads each; FN must be exported (export -f FN). The
#                     samples of one run stay in one process: two writers to one run.h5 would race.
export DIFFLAB RESULTS SWEEP
q() { "$DIFFLAB" --results "$RESULTS" query "$1" --csv | tail -n +2; }
export -f q

for_each_run() {
  local jobs=${JOBS:-1} cores
  cores=$(nproc)
  q "SELECT s.run_id FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
     WHERE s.sweep = '$SWEEP' AND r.status = 'finished' ORDER BY s.run_id" |
    OMP_NUM_THREADS=$(( cores / jobs > 0 ? cores / jobs : 1 )) xargs -r -n 1 -P "$jobs" bash -c "$1 \"\$1\"" _
}
