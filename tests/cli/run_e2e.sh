#!/usr/bin/env bash
# A short run of the demo spec end to end: trained, logged, indexed, reproducible.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SHORT=(train.steps=$(sized 1500) train.batch=512 train.ema_decay=0.99 train.n_data=20000 eval.n_samples=$(sized 2000) eval.n_ref=$(sized 2000)
       eval.swd_projections=64 eval.mmd_max=1000 run.ckpt_every=300 run.log_every=50)

expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SHORT[@]}" run.threads=2 || { finish; exit 1; }
expect_out 'written to .*/runs/demo-[0-9a-f]{10}-s0/run\.h5'
expect_out 'summary: loss [0-9.]+ .*ddpm nfe 1000: swd [0-9.e-]+ mmd2'
id=$(sed -n 's/^run \(demo-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
[ -n "$id" ] && pass || fail "no run id in the output"
h5=results/runs/$id/run.h5

# Listed, readable with h5dump, queryable with a join of runs, params and evals.
expect_exit 0 "$DIFFLAB" runs && expect_out "$id +demo +finished"
if command -v h5dump >/dev/null; then
  expect_exit 0 h5dump -A "$h5" && expect_out 'ATTRIBUTE "params_sha256"'
  expect_exit 0 h5dump -d /metrics/loss "$h5" && expect_out 'DATASET "/metrics/loss"'
  expect_exit 0 h5dump -A results/runs/$id/checkpoint.h5
fi
expect_exit 0 "$DIFFLAB" query "SELECT r.run_id, p.int_value AS steps, e.sampler, e.metric, e.n_samples, e.value
  FROM runs r JOIN params p ON p.run_id = r.run_id AND p.key = 'train.steps'
  JOIN evals e ON e.run_id = r.run_id WHERE e.metric = 'swd' ORDER BY e.sampler" --csv
expect_out "^$id,$(sized 1500),ddpm,swd,$(sized 2000),[0-9.e-]+"
expect_out "^$id,$(sized 1500),noise,swd,$(sized 2000),[0-9.e-]+"
expect_exit 0 "$DIFFLAB" show "$id" && expect_out 'diffusion.schedule.T +\| *1000|diffusion\.schedule\.T.*1000'

# Samples are measurably closer to the data than the initial noise: SWD at least 5x smaller.
expect_exit 0 "$DIFFLAB" query "SELECT (SELECT value FROM evals WHERE run_id = '$id' AND metric = 'swd' AND sampler = 'noise')
  / (SELECT value FROM evals WHERE run_id = '$id' AND metric = 'swd' AND sampler = 'ddpm') AS improvement" --csv
ratio=$(tail -n 1 "$TMP/out")
if quality; then awk -v r="$ratio" 'BEGIN { exit !(r >= 5) }' && pass || fail "SWD improvement over noise is only ${ratio}x"; fi

sha() { "$DIFFLAB" query "SELECT params_sha256 FROM runs WHERE run_id = '$1'" --csv | tail -n 1; }
sha1=$(sha "$id")
[ ${#sha1} -eq 64 ] && pass || fail "params_sha256 missing: '$sha1'"

# Same inputs again: a no-op.
before=$(tree_state results/runs)
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SHORT[@]}" run.threads=1 && expect_out 'already finished'
[ "$(tree_state results/runs)" = "$before" ] && pass || fail "a repeat without --new changed results/runs"

# --new on the other thread count: a fresh run with equal params_sha256 and metrics.
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SHORT[@]}" run.threads=1 --new && expect_out "run $id-r2 finished"
[ "$(sha "$id-r2")" = "$sha1" ] && pass || fail "params_sha256 differs between 2 threads and 1 thread"
m() { "$DIFFLAB" query "SELECT group_concat(metric || '=' || printf('%.17g', value), ' ') FROM (SELECT * FROM evals WHERE run_id = '$1' ORDER BY sampler, metric)" --csv | tail -n 1; }
[ "$(m "$id")" = "$(m "$id-r2")" ] && pass || fail "metrics differ between the run and its repeat"
lm() { "$DIFFLAB" query "SELECT group_concat(printf('%.17g', value), ' ') FROM (SELECT * FROM metrics WHERE run_id = '$1' ORDER BY key, step)" --csv | tail -n 1; }
[ "$(lm "$id")" = "$(lm "$id-r2")" ] && pass || fail "metric series differ between the run and its repeat"

# A different seed gives different parameters.
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SHORT[@]}" seed=1 train.steps=50
id1=$(sed -n 's/^run \(demo-[0-9a-f]*-s1\) finished.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SHORT[@]}" seed=2 train.steps=50
id2=$(sed -n 's/^run \(demo-[0-9a-f]*-s2\) finished.*/\1/p' "$TMP/out")
[ -n "$id1" ] && [ -n "$id2" ] && [ "$(sha "$id1")" != "$(sha "$id2")" ] && pass || fail "seeds 1 and 2 gave equal params"
# Same config, different seeds: one group.
expect_exit 0 "$DIFFLAB" query "SELECT n FROM group_evals WHERE metric = 'swd' AND sampler = 'ddpm' AND n = 2" --csv
expect_out '^2$'

finish
