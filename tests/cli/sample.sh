#!/usr/bin/env bash
# difflab sample: a finished run sampled again with other settings; an analytic spec sampled
# without training.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
SMALL=(train.steps=200 train.batch=256 train.n_data=5000 eval.n_samples=500 eval.n_ref=500
       eval.swd_projections=32 sampler.steps=50 run.progress=none)

expect_exit 0 "$DIFFLAB" run "$SRC/configs/demo.yaml" "${SMALL[@]}" || { finish; exit 1; }
id=$(sed -n 's/^run \(demo-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
dir=results/runs/$id
# The picture of 2-D samples is an SVG plot: title, axes with ticks, a legend of both sets.
svg=$dir/ddpm_50.svg
if [ -f "$svg" ]; then
  grep -q '<svg xmlns="http://www.w3.org/2000/svg" class="plot scatter"' "$svg" && grep -q '>ddpm_50</text>' "$svg" &&
    [ "$(grep -c 'class="tick"' "$svg")" -ge 6 ] && grep -q '>x\[0\]</text>' "$svg" &&
    grep -q '>reference</text>' "$svg" && grep -Eq '>samples( \(500 of 500 drawn\))?(, [0-9]+ outside the view)?</text>' "$svg" &&
    [ "$(grep -c 'class="series"' "$svg")" -eq 2 ] && pass || fail "the scatter $svg lacks its title, ticks or legend"
else
  fail "no picture of the run's samples: $(ls "$dir")"
fi
[ ! -e "$dir/ddpm_50.png" ] && pass || fail "a PNG scatter beside the SVG"

expect_exit 0 "$DIFFLAB" sample demo --steps 20 && expect_out "run $id: ddpm nfe 20 on 500 samples: swd [0-9.e-]+ mmd2"
[ -f "$dir/ddpm_20.svg" ] && pass || fail "no picture of the new samples"
expect_out "written to .*run.h5 \(/samples/ddpm_20\) and .*/ddpm_20.svg"
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM evals WHERE run_id = '$id' AND nfe = 20 AND metric IN ('swd', 'mmd2')" --csv && expect_out '^2$'
# The same settings again: the same numbers (common random numbers, deterministic), replaced not added.
v1=$("$DIFFLAB" query "SELECT printf('%.17g', value) FROM evals WHERE run_id = '$id' AND nfe = 20 AND metric = 'swd'" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" sample "$id" --sampler ddpm --steps 20
v2=$("$DIFFLAB" query "SELECT printf('%.17g', value) FROM evals WHERE run_id = '$id' AND nfe = 20 AND metric = 'swd'" --csv | tail -n 1)
[ -n "$v1" ] && [ "$v1" = "$v2" ] && pass || fail "re-sampling with the same settings gave '$v1' then '$v2'"
# Other settings at the same NFE: a sample set of their own.
expect_exit 0 "$DIFFLAB" sample "$id" --steps 20 sampler.variance=beta_tilde && expect_out '/samples/ddpm_20-[0-9a-f]{8}'
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM evals WHERE run_id = '$id' AND nfe = 20 AND metric IN ('swd', 'mmd2')" --csv && expect_out '^4$'
if command -v h5dump >/dev/null; then
  expect_exit 0 h5dump -n "$dir/run.h5" && expect_out '/samples/ddpm_20-[0-9a-f]{8}' && expect_out '/samples/ddpm_20$'
fi

# Another sampler in the README's form: the run's ddpm keys (variance) go, ddim's defaults come;
# keys given with it stay, whichever order they come in.
expect_exit 0 "$DIFFLAB" sample "$id" --sampler ddim --steps 10 && expect_out "run $id: ddim nfe 10 on 500 samples"
expect_exit 0 "$DIFFLAB" query "SELECT settings FROM evals WHERE run_id = '$id' AND sampler = 'ddim' AND metric = 'swd'" --csv \
  && expect_out '^"?\{""steps"":10,""eta"":0,""denoise"":true\}"?$'
expect_exit 0 "$DIFFLAB" sample "$id" sampler.eta=1 sampler.type=ddim sampler.steps=10 && expect_out "ddim nfe 10"
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM evals WHERE run_id = '$id' AND sampler = 'ddim' AND metric = 'swd'
                                AND json_extract(settings, '$.eta') = 1" --csv && expect_out '^1$'
# Choosing the sampler the run has keeps its keys (variance beta_tilde here, on top of the run's beta).
expect_exit 0 "$DIFFLAB" sample "$id" --sampler ddpm --steps 20 sampler.variance=beta_tilde && expect_out '/samples/ddpm_20-[0-9a-f]{8}'
# A key the new sampler does not have, given explicitly, is still an error.
if expect_exit 2 "$DIFFLAB" sample "$id" --sampler ddim sampler.variance=beta; then
  expect_out "unknown key 'sampler.variance' for sampler 'ddim'"
fi

# Bad requests: exit 2 (or 1 for a missing run) and the run untouched.
before=$(tree_state results/runs)
if expect_exit 2 "$DIFFLAB" sample "$id" train.lr=0.1; then expect_out "only sampler"; fi
if expect_exit 2 "$DIFFLAB" sample "$id" --sampler nope; then expect_out "unknown sampler 'nope'"; fi
if expect_exit 1 "$DIFFLAB" sample nosuchrun; then expect_out "no run 'nosuchrun'"; fi
if expect_exit 2 "$DIFFLAB" sample "$SRC/configs/demo.yaml"; then expect_out 'not analytic'; fi
[ "$(tree_state results/runs)" = "$before" ] && pass || fail "a refused sample changed results/runs"

# An analytic model: sampling needs no training.
cat > analytic.yaml <<'Y'
name: exact
data: {type: eight_gaussians}
model: analytic
sampler: {type: ddpm, steps: 100}
eval: {n_samples: 1000, n_ref: 1000}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" sample analytic.yaml && expect_out 'run exact-[0-9a-f]{10}-s0 finished' && expect_out 'ddpm nfe 100: swd'
expect_exit 0 "$DIFFLAB" sample analytic.yaml --steps 30 && expect_out 'ddpm nfe 30: swd'

# The PF-ODE likelihood through a run: the exact denoiser of 8 Gaussians (radius 2, std 0.1) gives
# about the mixture's entropy, log 8 + log(2 pi e 0.01) = 0.31 nats per point.
expect_exit 0 "$DIFFLAB" run analytic.yaml diffusion.schedule=vp sampler=euler eval.nll=true eval.nll_n=500 \
  && expect_out 'pf_ode nfe [0-9]+: nll [0-9.]+ bpd'
nll=$("$DIFFLAB" query "SELECT value FROM evals WHERE metric = 'nll' AND sampler = 'pf_ode'" --csv | tail -n 1)
awk -v v="$nll" 'BEGIN { exit !(v > 0.2 && v < 0.45) }' && pass || fail "analytic NLL $nll is not near the entropy 0.31"
# On a discrete schedule eval.nll records the DDPM bound: an upper bound on the same NLL.
expect_exit 0 "$DIFFLAB" run analytic.yaml eval.nll=true eval.nll_n=500 && expect_out 'ddpm nfe 1000: vlb [0-9.]+ vlb_bpd'
vlb=$("$DIFFLAB" query "SELECT value FROM evals WHERE metric = 'vlb' AND sampler = 'ddpm'" --csv | tail -n 1)
awk -v v="$vlb" -v n="$nll" 'BEGIN { exit !(v > n - 0.05 && v < n + 1.0) }' && pass \
  || fail "analytic DDPM bound $vlb is not just above the PF-ODE NLL $nll"

finish
