#!/usr/bin/env bash
# Guidance through `difflab run` / `difflab sample`: a classifier run (named by spec + seed and by
# id) guides an unconditional model; a conditional model trained with label dropout is sampled
# with classifier-free guidance at several scales; the class metrics land in the index with the
# guidance in the settings (a table spreads them); the classifier's id is recorded with the
# samples; the exact classifier needs no run; bad guidance specs are refused before anything is
# written.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SMALL=(train.batch=256 train.n_data=4000 eval.n_samples=600 eval.n_ref=600 eval.swd_projections=32
       eval.mmd_max=600 run.progress=none)
# The classifier: a short run of the method spec (a spec file built on it, so that spec + seed
# name it).
cat > clf.yaml <<Y
base: $SRC/configs/methods/classifier.yaml
train: {steps: 300, batch: 256, n_data: 4000}
eval: {n_ref: 600}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" run clf.yaml || { finish; exit 1; }
cid=$(sed -n 's/^run \(classifier-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
[ -n "$cid" ] && pass || fail "no classifier run id"
# Its evaluation: accuracy at noise levels, best on the cleanest.
acc=$("$DIFFLAB" query "SELECT printf('%.3f', value) FROM evals WHERE run_id = '$cid' AND metric = 'accuracy'
        ORDER BY json_extract(settings, '$.t') LIMIT 1" --csv | tail -n 1)
awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }' && pass || fail "classifier accuracy on clean data $acc"
expect_exit 2 "$DIFFLAB" sample "$cid" && expect_out 'is a classifier'

# Classifier guidance by spec + seed, then by id, on a short unconditional model.
CG=("$SRC/configs/methods/classifier_guidance.yaml" "${SMALL[@]}" train.steps=300)
expect_exit 0 "$DIFFLAB" run "${CG[@]}" "guidance={type: classifier, scale: 2, classifier: clf.yaml}" &&
  expect_out 'ddim nfe 50: .*class_share'
gid=$(sed -n 's/^run \(classifier_guidance-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" query "SELECT DISTINCT json_extract(settings, '$.classifier') FROM evals
    WHERE run_id = '$gid' AND metric = 'class_share'" --csv && expect_out "^$cid$"
expect_exit 0 h5dump -a /classifier "results/runs/$gid/run.h5" && expect_out "\"$cid\""
expect_exit 0 "$DIFFLAB" sample "$gid" guidance.scale=0 && expect_out 'class_share|ddim nfe 50'
share() {   # share RUN SCALE: class_share of the run's samples at that guidance scale
  "$DIFFLAB" query "SELECT printf('%.4f', value) FROM evals WHERE run_id = '$1' AND metric = 'class_share'
                    AND json_extract(settings, '$.scale') = $2" --csv | tail -n 1
}
s0=$(share "$gid" 0) s2=$(share "$gid" 2)
awk -v a="$s0" -v b="$s2" 'BEGIN { exit !(b > a && a > 0.3 && a < 0.7) }' && pass ||
  fail "classifier guidance: class share $s0 at gamma 0, $s2 at gamma 2"
expect_exit 0 "$DIFFLAB" run "${CG[@]}" "guidance={type: classifier, scale: 2, classifier: ${cid:0:16}}"

# The exact classifier needs no run.
expect_exit 0 "$DIFFLAB" run "${CG[@]}" guidance.classifier=analytic train.steps=200 && expect_out 'class_share'

# Classifier-free guidance: a short conditional run, sampled at w = 0 and w = 3.
CFG=("$SRC/configs/methods/cfg.yaml" "${SMALL[@]}" train.steps=1500)
expect_exit 0 "$DIFFLAB" run "${CFG[@]}" guidance.scale=0 && expect_out 'class_share'
fid=$(sed -n 's/^run \(cfg-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" sample "$fid" guidance.scale=3
c0=$(share "$fid" 0) c3=$(share "$fid" 3)
awk -v a="$c0" -v b="$c3" 'BEGIN { exit !(b >= a && a > 0.7) }' && pass || fail "cfg: class share $c0 at w 0, $c3 at w 3"
expect_exit 0 "$DIFFLAB" table --rows settings.guidance --cols settings.scale --metric class_share --where "run_id = '$fid'" &&
  expect_out "settings.scale=3"

# Refusals: each names its key, exits non-zero and writes nothing.
state() { tree_state results/runs; "$DIFFLAB" query "SELECT run_id, status FROM runs ORDER BY run_id" --csv; }
before=$(state)
refuse() {   # refuse NAME PATTERN CMD...
  local name=$1 pat=$2; shift 2
  "$@" >"$TMP/out" 2>&1
  [ $? -ne 0 ] && pass || fail "$name: accepted"
  expect_out "$pat"
  [ "$(state)" = "$before" ] && pass || fail "$name: results/ changed"
}
refuse missing_id 'guidance.classifier: .*nosuchrun' "$DIFFLAB" run "${CG[@]}" guidance.classifier=nosuchrun
refuse missing_seed 'guidance.classifier: the run classifier-[0-9a-f]*-s5 .*does not exist.*difflab run clf.yaml seed=5' \
  "$DIFFLAB" run "${CG[@]}" "guidance={type: classifier, classifier: clf.yaml, classifier_seed: 5}"
refuse not_a_classifier "guidance.classifier: run $gid trained a 'mse' model, not a classifier" \
  "$DIFFLAB" run "${CG[@]}" "guidance.classifier=$gid"
refuse none_named 'guidance.classifier: classifier guidance needs a classifier' "$DIFFLAB" run "${CG[@]}" guidance.classifier=
refuse other_schedule "guidance.classifier: run $cid was trained on another noise schedule" \
  "$DIFFLAB" run "${CG[@]}" "guidance.classifier=$cid" diffusion.schedule.T=500
refuse cfg_unconditional 'guidance.type: cfg combines a conditional and an unconditional prediction' \
  "$DIFFLAB" run "${CG[@]}" "guidance={type: cfg}"
refuse cfg_no_dropout 'guidance.type: cfg needs train.label_dropout > 0' "$DIFFLAB" run "${CFG[@]}" train.label_dropout=0
refuse dropout_unconditional 'train.label_dropout: only a conditional network' \
  "$DIFFLAB" run "${CG[@]}" "guidance={type: none}" train.label_dropout=0.1
refuse posterior_not_mixture "eval.posterior: the exact posterior needs a Gaussian-mixture dataset.*'moons'" \
  "$DIFFLAB" run "${CG[@]}" "guidance={type: none}" data=moons eval.posterior=true
refuse analytic_clf_not_mixture "guidance.classifier: analytic needs a Gaussian-mixture dataset.*'moons'" \
  "$DIFFLAB" run "${CG[@]}" data=moons guidance.classifier=analytic
refuse sample_missing 'guidance.classifier: .*nosuchrun' "$DIFFLAB" sample "$gid" guidance.classifier=nosuchrun
finish
