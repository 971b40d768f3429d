#!/usr/bin/env bash
# Values that become paths cannot leave the results folder (issue 15): a run's `name` (its run id
# is <name>-<hash>-s<seed>, a folder under results/runs/ and a lock under results/locks/) and a
# sweep's `name` (results/sweeps/<name>/) must be 1 to 127 letters, digits, '_', '-' or '.', not
# starting with '.'. Each bad value is refused with exit 2, with the key and the rule, from an
# override and from a spec file (with its file:line:col), and nothing is written anywhere.
. "$(dirname "$0")/lib.sh"
mkdir -p "$TMP/work" && cd "$TMP/work"
before=$(tree_state "$TMP/results")
for n in ../../escaped /abs/path .. . .hidden 'a b' 'x/y'; do
  if expect_exit 2 "$DIFFLAB" run "$SRC/configs/demo.yaml" "name=$n" train.steps=2; then
    expect_out "name: '${n//./\\.}' cannot name a run folder: a run name is 1 to 127 letters"
  fi
done
[ "$(tree_state "$TMP/results")" = "$before" ] && [ "$before" = absent ] && pass || fail "a refused name wrote files"
# The results folder is $TMP/results: ../../escaped would have made $TMP/escaped-<hash>-s0.
ls -d "$TMP"/escaped* /abs/path* 2>/dev/null | grep -q . && fail "a run folder was written outside the results folder" || pass

# From a spec file: the location of the key.
printf 'name: ../up\ndata: eight_gaussians\n' > bad.yaml
if expect_exit 2 "$DIFFLAB" run bad.yaml; then expect_out "bad.yaml:1:7: name: '\.\./up' cannot name a run folder"; fi

# A sweep's name: '..' would put its manifest in results/ itself.
printf 'name: ..\nbase: %s\ngrid: {train.lr: [1e-3]}\n' "$SRC/configs/demo.yaml" > sweep.yaml
before=$(tree_state "$TMP/results")
if expect_exit 2 "$DIFFLAB" sweep sweep.yaml; then expect_out "name: 1 to 127 letters, digits, '_', '-' or '\.', not starting with '\.'"; fi
[ "$(tree_state "$TMP/results")" = "$before" ] && pass || fail "a refused sweep wrote files"

# A good name still runs.
expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" name=ok.name-1 train.steps=2 eval.n_samples=50 eval.n_ref=50 \
  run.progress=none && expect_out "run ok\.name-1-[0-9a-f]{10}-s0 finished"
ls "$TMP/results/runs" | grep -q '^ok\.name-1-[0-9a-f]*-s0$' && pass || fail "the good run is not in results/runs"
finish
