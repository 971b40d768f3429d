#!/usr/bin/env bash
# Every named 2-D method spec in configs/methods/ (and the demo) trains and samples through
# `difflab run` — shortened — and beats its own initial noise; guided specs give samples of the
# class asked for (class share), the classifier is accurate on clean data. classifier_guidance
# runs with the exact classifier here (tests/cli/guidance.sh runs it with a classifier run).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SHORT=(train.steps=$(sized 1500) train.batch=256 train.ema_decay=0.99 train.n_data=5000 eval.n_samples=400 eval.n_ref=400
       eval.swd_projections=32 eval.mmd_max=400 run.progress=none)
for spec in "$SRC"/configs/methods/*.yaml "$SRC/configs/demo.yaml"; do
  name=$(basename "$spec" .yaml)
  case $name in *_fmnist) continue ;; esac # the image methods: tests/cli/images.sh
  extra=()
  [ "$name" = classifier_guidance ] && extra=(guidance.classifier=analytic)
  if expect_exit 0 "$DIFFLAB" run "$spec" "${SHORT[@]}" "${extra[@]}"; then
    expect_out "finished in" && expect_out 'summary: loss [0-9.]+'
    id=$(sed -n 's/^run \([^ ]*\) finished.*/\1/p' "$TMP/out")
    value() { "$DIFFLAB" query "SELECT value FROM evals WHERE run_id = '$id' AND metric = '$1' ORDER BY $2 LIMIT 1" --csv | tail -n 1; }
    case $name in
    classifier)
      a=$(value accuracy "json_extract(settings, '$.t')")
      if quality; then awk -v a="$a" 'BEGIN { exit !(a > 0.8) }' && pass || fail "$name: accuracy on clean data $a"; fi
      continue ;;
    cfg | classifier_guidance)
      c=$(value class_share rowid)
      if quality; then awk -v c="$c" 'BEGIN { exit !(c > 0.8) }' && pass || fail "$name: class share $c"; fi
      continue ;;
    esac
    r=$("$DIFFLAB" query "SELECT n.value / s.value FROM evals n JOIN evals s ON s.run_id = n.run_id
          AND s.metric = 'swd' AND s.sampler <> 'noise' WHERE n.run_id = '$id' AND n.metric = 'swd'
          AND n.sampler = 'noise'" --csv | tail -n 1)
    if quality; then awk -v r="$r" 'BEGIN { exit !(r > 1) }' && pass || fail "$name: samples no closer to the data than the noise (ratio $r)"; fi
  else
    fail "$name did not run"
  fi
done
finish
