#!/usr/bin/env bash
# eval.ode_err through the CLI: `difflab run` of an analytic 8-Gaussians spec records ode_err and
# ode_err_median for its deterministic sampler; `difflab sample RUN` with other deterministic
# samplers reuses the stored reference (one /samples/ode_ref_* set in run.h5); stochastic
# samplers, cm and discrete schedules are refused with exit 2 before anything is written.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > exact.yaml <<'Y'
name: exact
data: {type: eight_gaussians}
model: analytic
diffusion:
  schedule: {type: edm, sigma_min: 0.002, sigma_max: 80.0, rho: 7.0}
  param: {type: edm, sigma_data: 0.5}
  loss: {type: mse, target: x0, weighting: edm}
sampler: {type: euler, steps: 32}
train: {n_data: 5000}
eval: {n_samples: 600, n_ref: 600, swd_projections: 32, ode_err: true, ode_err_n: 400}
run: {progress: none}
Y
q() { "$DIFFLAB" query "$1" --csv | tail -n 1; }
refs() { h5dump -n "$1" | grep -c '/samples/ode_ref_'; }

expect_exit 0 "$DIFFLAB" run exact.yaml || { finish; exit 1; }
expect_out 'euler nfe 32: .*ode_err [0-9.e-]+ ode_err_median'
id=$(sed -n 's/^run \(exact-[0-9a-f]*-s0\) finished.*/\1/p' "$TMP/out")
h5=results/runs/$id/run.h5
[ "$(q "SELECT count(*) FROM evals WHERE metric IN ('ode_err', 'ode_err_median') AND sampler = 'euler' AND nfe = 32 AND n_samples = 400")" = 2 ] \
  && pass || fail "no ode_err rows of n 400 for euler"
# Euler at 32 steps on the exact denoiser: about 0.016 data stds from the PF-ODE (tests/test_ode_err.c).
e=$(q "SELECT value FROM evals WHERE metric = 'ode_err' AND sampler = 'euler'")
awk -v v="$e" 'BEGIN { exit !(v > 0.008 && v < 0.03) }' && pass || fail "euler's ode_err $e is not about 0.016"
[ "$(refs "$h5")" = 1 ] && pass || fail "the run has not one reference set"

# Other deterministic samplers: the reference is found in run.h5 and reused, not stored again.
expect_exit 0 "$DIFFLAB" sample "$id" --sampler heun --steps 33
expect_exit 0 "$DIFFLAB" sample "$id" --sampler dpmpp2m --steps 20
expect_exit 0 "$DIFFLAB" sample "$id" --sampler ddim --steps 64
[ "$(refs "$h5")" = 1 ] && pass || fail "another sampler stored another reference: $(h5dump -n "$h5" | grep ode_ref)"
h=$(q "SELECT value FROM evals WHERE metric = 'ode_err' AND sampler = 'heun' AND nfe = 65")
awk -v h="$h" -v e="$e" 'BEGIN { exit !(h > 0 && h < e / 3) }' && pass || fail "heun at 65 NFE ($h) is not far below euler at 32 ($e)"
[ "$(q "SELECT count(*) FROM evals WHERE metric = 'ode_err' AND sampler IN ('dpmpp2m', 'ddim')")" = 2 ] \
  && pass || fail "no ode_err rows for dpmpp2m and ddim"
# Another n is another reference (a row of the batch depends on the others through the step sizes).
expect_exit 0 "$DIFFLAB" sample "$id" --sampler euler --steps 16 eval.ode_err_n=100
[ "$(refs "$h5")" = 2 ] && pass || fail "eval.ode_err_n=100 did not make its own reference"

# Refusals: exit 2, a message naming the sampler and why, nothing written.
before=$(tree_state results/runs)
if expect_exit 2 "$DIFFLAB" sample "$id" --sampler heun sampler.s_churn=40; then
  expect_out "eval.ode_err: sampler 'heun' leaves the PF-ODE with s_churn > 0"; fi
if expect_exit 2 "$DIFFLAB" sample "$id" --sampler ddim sampler.eta=1; then
  expect_out "eval.ode_err: sampler 'ddim' is stochastic with eta > 0"; fi
if expect_exit 2 "$DIFFLAB" sample "$id" "sampler={type: cm}"; then expect_out "eval.ode_err: sampler 'cm' solves no ODE"; fi
if expect_exit 2 "$DIFFLAB" sample "$id" "sampler={type: exact}"; then
  expect_out "eval.ode_err: sampler 'exact' draws from the data distribution itself and follows no ODE"; fi
if expect_exit 2 "$DIFFLAB" run exact.yaml diffusion.schedule=vp sampler=em; then
  expect_out "eval.ode_err: sampler 'em' is stochastic"; fi
if expect_exit 2 "$DIFFLAB" run exact.yaml diffusion.schedule=ddpm_linear diffusion.param=eps diffusion.loss=mse sampler=ddpm; then
  expect_out "eval.ode_err: sampler 'ddpm' is stochastic"; fi
if expect_exit 2 "$DIFFLAB" run exact.yaml diffusion.schedule=ddpm_linear diffusion.param=eps diffusion.loss=mse sampler=ddim; then
  expect_out "sampler 'ddim' has no reference on 'ddpm_linear': it is a discrete schedule"; fi
after=$(tree_state results/runs); [ "$after" = "$before" ] && pass || { fail "a refused request changed results/runs"; diff <(echo "$before") <(echo "$after") >&2; }
# Without eval.ode_err the same samplers run.
expect_exit 0 "$DIFFLAB" sample "$id" "sampler={type: cm}" eval.ode_err=false

finish
