#!/usr/bin/env bash
# Issue 14's mixture metrics through the program: model_err rows by noise level on a short trained
# run, the exact pseudo-sampler (the floor row) with every metric recorded for it, the metrics of
# every sample set (mmd2_ms with its kernel in the settings; on mixture data data_nll, in_mode99,
# mode_recall, mode_chi2), and the refusals on data that is not a mixture (before anything is
# written).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SMALL=(train.steps=200 train.batch=256 train.n_data=5000 eval.n_samples=500 eval.n_ref=500
       eval.swd_projections=32 sampler.steps=50 run.progress=none)
q() { "$DIFFLAB" query "$1" --csv | tail -n +2; }

# A short trained run with model_err at three levels.
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SMALL[@]}" eval.model_err=true \
  "eval.model_err_levels=[0.05, 0.5, 5]" eval.nll_n=300 || { finish; exit 1; }
expect_out 'model nfe 0: model_err [0-9.e-]+ model_err [0-9.e-]+ model_err [0-9.e-]+'
id=$(sed -n 's/^run \(demo-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
# One row per level: sampler model, nfe 0, n = nll_n, the level (the nearest DDPM step's sigma/alpha)
# and the step in the settings; finite and positive (a network is not the exact denoiser).
[ "$(q "SELECT count(*) FROM evals WHERE run_id = '$id' AND metric = 'model_err' AND sampler = 'model'
        AND nfe = 0 AND n_samples = 300 AND value > 0 AND value < 10")" = 3 ] && pass \
  || fail "not three model_err rows: $(q "SELECT settings, value FROM evals WHERE metric = 'model_err'")"
levels=$(q "SELECT group_concat(printf('%.2f', json_extract(settings, '\$.sigma')), ' ') AS levels FROM
            (SELECT settings FROM evals WHERE metric = 'model_err' ORDER BY json_extract(settings, '\$.sigma'))")
[ "$levels" = "0.05 0.50 4.99" ] && pass || fail "model_err levels '$levels', want 0.05 0.50 4.99"
[ "$(q "SELECT count(*) FROM evals WHERE metric = 'model_err' AND json_extract(settings, '\$.t') = 11")" = 1 ] \
  && pass || fail "model_err at sigma/alpha 0.05 is not at DDPM step 11"
# Every sample set of a mixture run: the new metrics beside swd and mmd2, noise baseline included.
for s in ddpm noise; do
  got=$(q "SELECT group_concat(metric, ' ') AS m FROM (SELECT metric FROM evals WHERE run_id = '$id' AND sampler = '$s'
           ORDER BY metric)")
  [ "$got" = "data_nll in_mode99 mmd2 mmd2_ms mode_chi2 mode_recall swd" ] && pass || fail "$s set has metrics '$got'"
done
# mmd2_ms carries its kernel (8 Gaussians: bandwidths 0.1 to 2.84, kappa = E k(x, x') in closed form).
[ "$(q "SELECT settings = '{\"steps\":50,\"variance\":\"beta\",\"mmd_h\":[0.1,0.231,0.532,1.23,2.84],\"mmd_kappa\":[0.0417,0.0909,0.122,0.26,0.646]}'
        AS ok FROM evals WHERE run_id = '$id' AND sampler = 'ddpm' AND metric = 'mmd2_ms'")" = 1 ] \
  && pass || fail "mmd2_ms settings: $(q "SELECT settings FROM evals WHERE metric = 'mmd2_ms' AND sampler = 'ddpm'")"
[ "$(q "SELECT settings = '{\"steps\":50,\"variance\":\"beta\"}' AS ok FROM evals WHERE run_id = '$id'
        AND sampler = 'ddpm' AND metric = 'data_nll'")" = 1 ] && pass || fail "data_nll carries other settings than the sample set"

# The floor: the exact pseudo-sampler on the trained run, nfe 0, every metric recorded. (The whole
# section, sampler=exact: --sampler keeps the run's sampler keys, and exact has no steps.)
expect_exit 0 "$DIFFLAB" sample "$id" sampler=exact && expect_out "run $id: exact nfe 0 on 500 samples: swd"
got=$(q "SELECT group_concat(metric, ' ') AS m FROM (SELECT metric FROM evals WHERE run_id = '$id' AND sampler = 'exact'
         AND nfe = 0 ORDER BY metric)")
[ "$got" = "data_nll in_mode99 mmd2 mmd2_ms mode_chi2 mode_recall swd" ] && pass || fail "exact set has metrics '$got'"
[ "$(q "SELECT value FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'mode_recall'")" = 1 ] \
  && pass || fail "exact draws miss a mode"
awk -v v="$(q "SELECT value FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'in_mode99'")" \
  'BEGIN { exit !(v >= 0.95 && v <= 1) }' && pass || fail "exact draws: in_mode99 is not about 0.99"
# The floor is at the floor: swd of the exact draws below the trained model's.
[ "$(q "SELECT (SELECT value FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'swd')
           < (SELECT value FROM evals WHERE run_id = '$id' AND sampler = 'ddpm' AND metric = 'swd') AS ok")" = 1 ] \
  && pass || fail "exact draws score worse swd than a 200-step model"
# Stream discipline: the same draws with one thread and another batch size.
v1=$(q "SELECT printf('%.17g', value) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'mmd2_ms'")
expect_exit 0 "$DIFFLAB" sample "$id" sampler=exact run.threads=1 eval.batch=7
v2=$(q "SELECT printf('%.17g', value) FROM evals WHERE run_id = '$id' AND sampler = 'exact' AND metric = 'mmd2_ms'")
[ -n "$v1" ] && [ "$v1" = "$v2" ] && pass || fail "exact draws changed with threads and batch: '$v1' then '$v2'"
# A table can show the floor beside the sampler.
# exact is a row when asked for (like noise, it is not a sampler of the run) and the floor with --floor.
expect_exit 0 "$DIFFLAB" table --rows sampler --metric mode_chi2 --sampler exact,ddpm && expect_out '\| exact \|' &&
  expect_out '\| ddpm \|'
expect_exit 0 "$DIFFLAB" table --rows sampler --metric mode_chi2 --floor && expect_out '\| exact \(floor\) \|' &&
  expect_out '\| ddpm \|'

# Not a mixture: refused with the key named, exit 2, nothing written.
cat > moons.yaml <<'Y'
name: moons
data: {type: moons}
train: {steps: 50, batch: 128, n_data: 2000}
eval: {n_samples: 300, n_ref: 300, swd_projections: 16}
sampler: {type: ddpm, steps: 20}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" run moons.yaml
mid=$(sed -n 's/^run \(moons-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
# Other data: mmd2_ms from the reference set's scale, and no mixture metric.
[ "$(q "SELECT count(*) FROM evals WHERE run_id = '$mid' AND metric = 'mmd2_ms'
        AND json_array_length(settings, '\$.mmd_h') = 5")" = 2 ] && pass || fail "moons: no mmd2_ms with 5 bandwidths"
[ "$(q "SELECT count(*) FROM evals WHERE run_id = '$mid' AND metric IN ('data_nll', 'mode_recall')")" = 0 ] \
  && pass || fail "moons got mixture metrics"
before=$(tree_state results)
# exact on other data draws the run's training items, never more than it holds.
if expect_exit 2 "$DIFFLAB" sample "$mid" sampler=exact eval.n_samples=2001; then
  expect_out "sampler exact: 2001 samples are more than the 2000 training items"
fi
if expect_exit 2 "$DIFFLAB" run moons.yaml eval.model_err=true; then
  expect_out "eval.model_err: .*needs a Gaussian-mixture dataset"
fi
if expect_exit 2 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SMALL[@]}" eval.model_err=true "eval.model_err_levels=[1000]"; then
  expect_out "eval.model_err_levels: no step of the schedule has sigma/alpha within a factor 2 of 1000"
fi
[ "$(tree_state results)" = "$before" ] && pass || fail "a refused request changed results/"
expect_exit 0 "$DIFFLAB" sample "$mid" sampler=exact
# Training items against the reference set: SWD far below the noise baseline's, NFE 0.
swd_of() { q "SELECT value FROM evals WHERE run_id = '$mid' AND metric = 'swd' AND sampler = '$1'"; }
awk -v e="$(swd_of exact)" -v z="$(swd_of noise)" 'BEGIN { exit !(e > 0 && e < 0.2 * z) }' \
  && pass || fail "exact on moons: swd $(swd_of exact) against noise $(swd_of noise)"
[ "$(q "SELECT nfe FROM evals WHERE run_id = '$mid' AND metric = 'swd' AND sampler = 'exact'")" = 0 ] \
  && pass || fail "exact on moons: nfe not 0"

finish
