#!/usr/bin/env bash
# Consistency distillation from a teacher run: named by id or by spec + seed, recorded and
# joinable in the index; a missing, unfinished or incompatible teacher is refused before anything
# is written; a distilled student samples in one and two steps through `difflab sample`.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SMALL=(train.batch=256 train.n_data=4000 eval.n_samples=400 eval.n_ref=400 eval.swd_projections=32
       eval.mmd_max=400 run.progress=none)

# The teacher: a short EDM run (a spec file, so that spec + seed name it: no overrides).
sed 's/steps: 3000/steps: 300/' "$SRC/configs/methods/edm.yaml" > teacher.yaml
printf 'eval: {n_samples: 400, n_ref: 400, swd_projections: 32, mmd_max: 400}\nrun: {progress: none}\n' >> teacher.yaml
sed -i 's/^train: {/train: {batch: 256, n_data: 4000, /' teacher.yaml
expect_exit 0 "$DIFFLAB" run teacher.yaml || { finish; exit 1; }
tid=$(sed -n 's/^run \(edm-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
[ -n "$tid" ] && pass || fail "no teacher run id"

STUDENT=("$SRC/configs/methods/cd.yaml" "${SMALL[@]}" train.steps=200)
# By run id (a unique prefix is enough), starting from the teacher's weights.
expect_exit 0 "$DIFFLAB" run "${STUDENT[@]}" "distill={teacher: ${tid:0:14}, init_from_teacher: true}" \
  "model={type: mlp}" && expect_out 'cm nfe 1: swd'
sid=$(sed -n 's/^run \(cd-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" query "SELECT s.run_id || ' <- ' || t.run_id || ' ' || t.status FROM runs s
    JOIN runs t ON t.run_id = s.teacher WHERE s.run_id = '$sid'" --csv && expect_out "^$sid <- $tid finished$"
if command -v h5dump >/dev/null; then
  expect_exit 0 h5dump -a /teacher "results/runs/$sid/run.h5" && expect_out "\"$tid\""
fi
# By spec and seed: the same teacher.
expect_exit 0 "$DIFFLAB" run "${STUDENT[@]}" "distill={teacher: teacher.yaml, teacher_seed: 0}"
sid2=$(sed -n 's/^run \(cd-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" query "SELECT teacher FROM runs WHERE run_id = '$sid2'" --csv && expect_out "^$tid$"

# One and two steps of the student on the same noise: recorded with their NFE.
expect_exit 0 "$DIFFLAB" sample "$sid2" --sampler cm --steps 2 && expect_out 'cm nfe 2 on 400 samples'
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM evals WHERE run_id = '$sid2' AND sampler = 'cm' AND nfe IN (1, 2) AND metric IN ('swd', 'mmd2')" \
  --csv && expect_out '^4$'

# Refusals: each names distill.teacher, exits non-zero, and writes nothing: the same run folders
# and index rows (reading the index may touch SQLite's -wal / -shm files, which hold no rows).
state() { tree_state results/runs; "$DIFFLAB" query "SELECT run_id, status FROM runs ORDER BY run_id" --csv; }
before=$(state)
refuse() {   # refuse NAME PATTERN OVERRIDES...
  local name=$1 pat=$2; shift 2
  "$DIFFLAB" run "${STUDENT[@]}" "$@" >"$TMP/out" 2>&1
  [ $? -ne 0 ] && pass || fail "$name: a bad teacher was accepted"
  expect_out "$pat"
  [ "$(state)" = "$before" ] && pass || fail "$name: results/ changed"
}
refuse missing_id 'distill.teacher: .*nosuchrun' "distill.teacher=nosuchrun"
refuse missing_seed 'distill.teacher: the run edm-[0-9a-f]*-s7 .*does not exist.*difflab run teacher.yaml seed=7' \
  "distill={teacher: teacher.yaml, teacher_seed: 7}"
refuse no_teacher 'distill.teacher: the cd loss distills a teacher' "distill.teacher="
refuse shape 'distill.init_from_teacher: run edm-[0-9a-f]*-s0 has another network shape' "distill={teacher: $tid, init_from_teacher: true}" model.width=16

# A teacher of another data dimension, one of another schedule, and one that never finished.
printf 'name: t3\ndata: {type: gmm, weights: [0.5, 0.5], means: [[0, 0, 0], [1, 1, 1]], stds: [0.2, 0.2]}\n' > t3.yaml
printf 'diffusion: {schedule: {type: edm}, param: edm, loss: {type: mse, target: x0, weighting: edm}}\n' >> t3.yaml
printf 'sampler: {type: heun, steps: 5}\ntrain: {steps: 50}\n' >> t3.yaml
expect_exit 0 "$DIFFLAB" run t3.yaml "${SMALL[@]}"
t3=$(sed -n 's/^run \(t3-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" run "$SRC/configs/methods/ddpm.yaml" "${SMALL[@]}" train.steps=50 sampler.steps=10
tddpm=$(sed -n 's/^run \(ddpm-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
sed 's/steps: 300/steps: 1000000/' teacher.yaml > long.yaml
timeout -s KILL 3 "$DIFFLAB" run long.yaml seed=9 >/dev/null 2>&1
before=$(state)
refuse dimension "distill.teacher: run $t3 has data of dimension 3" "distill.teacher=$t3"
refuse schedule "distill.teacher: run $tddpm has the schedule 'ddpm_linear'" "distill.teacher=$tddpm"
refuse unfinished 'distill.teacher: run edm-[0-9a-f]*-s9 is running, not finished' \
  "distill={teacher: long.yaml, teacher_seed: 9}"
finish
