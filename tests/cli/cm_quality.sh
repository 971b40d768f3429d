#!/usr/bin/env bash
# Consistency models on the 8-Gaussian mixture, through `difflab run` / `difflab sample` with the
# method specs (configs/methods/{ct,ict,cd}.yaml): the training loss falls, and one-step samples
# have MMD² below a tenth of the untrained model's (whose one-step samples sit at the data mean);
# two steps on the same noise do at least as well as one for iCT and for CD from the analytic
# denoiser, by MMD² and by SWD, compared on 4000 samples (at 1000 the exact-vs-exact MMD² spread,
# about 5e-4, is larger than the gap).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
EVAL=(eval.n_samples=1000 eval.n_ref=1000 eval.swd_projections=64 run.progress=none)
quality || EVAL+=(train.steps=$(sized 3000))   # the method specs train 3000 steps
mmd() {   # mmd RUN NFE [METRIC]: the run's latest cm value of METRIC (mmd2) at that NFE
  "$DIFFLAB" query "SELECT printf('%.6g', value) FROM evals WHERE run_id = '$1' AND sampler = 'cm' AND nfe = $2
                    AND metric = '${3:-mmd2}'" --csv | tail -n 1
}
id_of() { sed -n 's/^run \([^ ]*\) finished.*/\1/p' "$TMP/out"; }

expect_exit 0 "$DIFFLAB" run "$SRC/configs/methods/ct.yaml" "${EVAL[@]}" train.steps=0 || { finish; exit 1; }
base=$(mmd "$(id_of)" 1)
echo "untrained one-step MMD² $base"

for m in ct ict cd; do
  expect_exit 0 "$DIFFLAB" run "$SRC/configs/methods/$m.yaml" "${EVAL[@]}" || continue
  id=$(id_of)
  v=$(mmd "$id" 1)
  echo "$m one-step MMD² $v"
  if quality; then awk -v v="$v" -v b="$base" 'BEGIN { exit !(v < b / 10) }' && pass || fail "$m: one-step MMD² $v is not below a tenth of $base"; fi
  # The loss falls: the last logged interval's mean below the first's.
  r=$("$DIFFLAB" query "SELECT l.value / f.value FROM metrics f JOIN metrics l ON l.run_id = f.run_id AND l.key = f.key
        WHERE f.run_id = '$id' AND f.key = 'loss' AND f.step = (SELECT min(step) FROM metrics WHERE run_id = '$id' AND key = 'loss')
        AND l.step = (SELECT max(step) FROM metrics WHERE run_id = '$id' AND key = 'loss')" --csv | tail -n 1)
  if quality; then awk -v r="$r" 'BEGIN { exit !(r < 1) }' && pass || fail "$m: the loss did not fall (last/first $r)"; fi
  # One and two steps on the same 4000 noise draws (common random numbers by sample index).
  BIG=(eval.n_samples=$(sized 4000) eval.n_ref=$(sized 4000) eval.mmd_max=$(sized 4000))
  expect_exit 0 "$DIFFLAB" sample "$id" --sampler cm --steps 1 "${BIG[@]}"
  v1=$(mmd "$id" 1) s1=$(mmd "$id" 1 swd)
  expect_exit 0 "$DIFFLAB" sample "$id" --sampler cm --steps 2 "${BIG[@]}"
  v2=$(mmd "$id" 2) s2=$(mmd "$id" 2 swd)
  echo "$m on 4000 samples: one step MMD² $v1 SWD $s1; two steps MMD² $v2 SWD $s2"
  [ "$m" = ct ] && continue   # reported only: the issue asks two steps >= one of iCT and CD
  quality || continue
  awk -v a="$v2" -v b="$v1" 'BEGIN { exit !(a <= b) }' && pass || fail "$m: two steps (MMD² $v2) worse than one ($v1)"
  awk -v a="$s2" -v b="$s1" 'BEGIN { exit !(a <= b) }' && pass || fail "$m: two steps (SWD $s2) worse than one ($s1)"
done
finish
