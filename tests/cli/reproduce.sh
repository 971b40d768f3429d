#!/usr/bin/env bash
# difflab reproduce: a finished run re-run from its record in a scratch folder prints MATCH; after
# one stored metric point is changed by 1e-9 it prints MISMATCH naming that metric and step.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
TAMPER="$(dirname "$DIFFLAB")/tests/dm_tamper"
cat > s.yaml <<'Y'
name: rep
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: 300, batch: 64, n_data: 500}
eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200}
run: {progress: none, log_every: 20}
Y
expect_exit 0 "$DIFFLAB" run s.yaml
expect_exit 0 "$DIFFLAB" reproduce rep && expect_out '^MATCH: run rep-[0-9a-f]+-s0 reproduces'
step=$("$TAMPER" results/runs/rep-*/run.h5 loss 7) || fail "dm_tamper failed"
[ "$step" = "step 160" ] && pass || fail "tampered point: $step"
if expect_exit 1 "$DIFFLAB" reproduce rep; then
  expect_out '^MISMATCH: metric loss at step 160: recorded'
fi
expect_exit 1 "$DIFFLAB" reproduce nosuchrun && expect_out "no run 'nosuchrun'"
finish
