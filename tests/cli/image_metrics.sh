#!/usr/bin/env bash
# Image metrics (issue 17) end to end on the generated image set (image_mixture, 1x8x8, 6 shapes):
# a cnn trained as a classifier of clean items is the feature network; a U-Net run that names it
# in eval.features records fd, kid, kid_std, precision and recall for its samples and the noise
# baseline, each with "features":"<run id>" in its settings and its n; the floor (sampler exact:
# training items) sits below the model and the model below noise; exact class-conditional draws
# are assigned their class by the feature network (fnet_class_share); mmd2_ms is not recorded on
# images; a table that would mix two feature networks is refused, and one network's evals pass;
# a feature network that is not a clean classifier with a feature head, or sees other shapes, is
# refused before anything is written.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > fnet.yaml <<'Y'
name: fnet
data: {type: image_mixture, h: 8, w: 8, k: 6, std: 0.2}
model: {type: cnn, ch: 8, mult: [1, 2], groups: 4, temb: 16}
diffusion: {loss: {type: xent, clean: true}}
train: {steps: 150, batch: 64, n_data: 3000, lr: 2.0e-3, ema_decay: 0.9}
eval: {n_ref: 600}
run: {progress: none}
Y
cat > u.yaml <<'Y'
name: tiny_unet
data: {type: image_mixture, h: 8, w: 8, k: 6, std: 0.2}
model: {type: unet, ch: 16, mult: [1, 2], groups: 8, temb: 64}
diffusion: {schedule: {type: ddpm_linear, T: 1000}}
sampler: {type: ddim, steps: 20}
train: {batch: 64, n_data: 3000, lr: 2.0e-3, warmup: 50, ema_decay: 0.99}
eval: {n_samples: 400, n_ref: 600, features: fnet.yaml}
run: {progress: none}
Y
q() { "$DIFFLAB" query "$1" --csv | tail -n +2; }

expect_exit 0 timeout 300 "$DIFFLAB" run fnet.yaml
fid=$(q "SELECT run_id FROM runs WHERE name = 'fnet'")
acc=$(q "SELECT value FROM evals WHERE run_id = '$fid' AND metric = 'accuracy' AND settings = '{\"clean\":true}'")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' && pass || fail "the feature network's clean accuracy is '$acc', want >= 0.9"

# Refused before anything is written.
state() { tree_state results/runs; "$DIFFLAB" query "SELECT run_id, status FROM runs ORDER BY run_id" --csv; }
cat > noisy.yaml <<'Y'
name: noisy
data: {type: image_mixture, h: 8, w: 8, k: 6, std: 0.2}
model: {type: cnn, ch: 8, mult: [1, 2], groups: 4, temb: 16}
diffusion: {loss: xent}
train: {steps: 5, batch: 16, n_data: 200}
eval: {n_ref: 100}
run: {progress: none}
Y
expect_exit 0 "$DIFFLAB" run noisy.yaml
before=$(state)
expect_exit 2 "$DIFFLAB" run u.yaml train.steps=1 eval.features=noisy.yaml
expect_out "eval.features: run noisy-[0-9a-f]*-s0 was trained with diffusion.loss xent \\(of noisy x_t\\), not as a classifier of clean items"
expect_exit 1 "$DIFFLAB" run u.yaml train.steps=1 eval.features=fnet.yaml eval.features_seed=7
expect_out "eval.features: the run fnet-[0-9a-f]*-s7 .* does not exist.*difflab run fnet.yaml seed=7"
expect_exit 2 "$DIFFLAB" run u.yaml train.steps=1 "data={type: image_mixture, h: 16, w: 16, k: 6, std: 0.2}"
expect_out "eval.features: run fnet-[0-9a-f]*-s0 classifies 1x8x8 items \\(image_mixture\\); this run's are 1x16x16"
expect_exit 2 "$DIFFLAB" run fnet.yaml "diffusion.loss={type: mse}"
expect_out "model.type: 'cnn' pools each item into one vector: a classifier"
expect_exit 2 "$DIFFLAB" run u.yaml "eval.features=$fid" "data={type: gmm}" "model={type: mlp}" "train.steps=1"
expect_out "eval.features: run fnet-[0-9a-f]*-s0 classifies 1x8x8 items \\(image_mixture\\); this run's are 2x1x1"
[ "$(state)" = "$before" ] && pass || fail "a refused run changed results/"

expect_exit 0 timeout 600 "$DIFFLAB" run u.yaml train.steps="$(sized 600)"
uid=$(q "SELECT run_id FROM runs WHERE name = 'tiny_unet'")
# Every image metric for the samples and the noise, in the feature network's space, with its n.
for m in fd kid kid_std precision recall; do
  for s in ddim noise; do
    row=$(q "SELECT n_samples, json_extract(settings, '\$.features') FROM evals WHERE run_id = '$uid'
             AND metric = '$m' AND sampler = '$s'")
    [ "$row" = "400,$fid" ] && pass || fail "$m of $s: (n, features) = '$row', want '400,$fid'"
  done
done
[ "$(q "SELECT count(*) FROM evals WHERE run_id = '$uid' AND metric = 'mmd2_ms'")" = 0 ] \
  && pass || fail "mmd2_ms recorded on images"
h5dump -a /features "results/runs/$uid/run.h5" >"$TMP/out" 2>&1
expect_out "$fid"

# The floor: training items, the same n.
expect_exit 0 timeout 300 "$DIFFLAB" sample "$uid" sampler=exact
fd_of() { q "SELECT value FROM evals WHERE run_id = '$uid' AND metric = '$2' AND sampler = '$1'"; }
echo "fd: exact $(fd_of exact fd), ddim $(fd_of ddim fd), noise $(fd_of noise fd)"
echo "precision/recall: exact $(fd_of exact precision)/$(fd_of exact recall), ddim $(fd_of ddim precision)/$(fd_of ddim recall)"
awk -v e="$(fd_of exact fd)" -v n="$(fd_of noise fd)" 'BEGIN { exit !(e >= 0 && e < 0.05 * n) }' \
  && pass || fail "fd of the floor $(fd_of exact fd) is not far below noise's $(fd_of noise fd)"
awk -v r="$(fd_of exact recall)" -v p="$(fd_of exact precision)" -v n="$(fd_of noise precision)" \
  'BEGIN { exit !(r > 0.8 && p > 0.8 && n < 0.05) }' && pass \
  || fail "floor precision/recall $(fd_of exact precision)/$(fd_of exact recall), noise precision $(fd_of noise precision)"
if quality; then
  awk -v e="$(fd_of exact fd)" -v m="$(fd_of ddim fd)" -v n="$(fd_of noise fd)" 'BEGIN { exit !(e < m && m < 0.2 * n) }' \
    && pass || fail "fd: floor $(fd_of exact fd) < model $(fd_of ddim fd) < 0.2x noise $(fd_of noise fd) does not hold"
fi

# Class-conditional exact draws (the analytic model): the feature network names their class.
expect_exit 0 timeout 300 "$DIFFLAB" run u.yaml "model={type: analytic, conditional: true}" sampler=exact name=cond
cid=$(q "SELECT run_id FROM runs WHERE name = 'cond'")
share=$(q "SELECT value FROM evals WHERE run_id = '$cid' AND metric = 'fnet_class_share' AND sampler = 'exact'")
awk -v s="$share" -v a="$acc" 'BEGIN { exit !(s >= a - 0.06) }' && pass \
  || fail "fnet_class_share of exact conditional draws $share, the network's accuracy $acc"

# Without a feature network: the pixel-space metrics, and a note that fd needs one.
expect_exit 0 timeout 300 "$DIFFLAB" run u.yaml eval.features= train.steps=2 eval.n_samples=50 name=plain
expect_out "note: pixel-space metrics only; fd, kid, precision and recall need a feature network"
[ "$(q "SELECT count(*) FROM evals e JOIN runs r ON r.run_id = e.run_id WHERE r.name = 'plain'
        AND e.metric IN ('fd', 'kid', 'precision', 'recall')")" = 0 ] && pass || fail "fd without a feature network"

# The paired ode_err on images, on the first eval.ode_err_n samples (the exact denoiser: cheap).
expect_exit 0 timeout 300 "$DIFFLAB" run u.yaml name=oe "model={type: analytic}" "diffusion={schedule: {type: edm}, param: {type: edm}}" \
  "sampler={type: heun, steps: 5}" eval.ode_err=true eval.ode_err_n=5 eval.n_samples=100
[ "$(q "SELECT n_samples FROM evals e JOIN runs r ON r.run_id = e.run_id WHERE r.name = 'oe' AND e.metric = 'ode_err'")" = 5 ] \
  && pass || fail "no ode_err of 5 samples on images"

# Two feature networks never share a table.
expect_exit 0 timeout 300 "$DIFFLAB" run fnet.yaml seed=1
fid1=$(q "SELECT run_id FROM runs WHERE name = 'fnet' AND seed = 1")
expect_exit 0 "$DIFFLAB" table --metric fd --rows sampler --sampler ddim,exact,noise
expect_exit 0 timeout 300 "$DIFFLAB" sample "$uid" "sampler={type: ddim, steps: 10}" "eval.features=$fid1"
expect_exit 2 "$DIFFLAB" table --metric fd --rows sampler --cols nfe
expect_out "table: its evals come from two feature networks \\(eval.features runs fnet-[0-9a-f]*-s[01] and fnet-[0-9a-f]*-s[01]\\)"
expect_exit 0 "$DIFFLAB" table --metric fd --rows sampler --cols nfe --settings "\"features\":\"$fid\""
expect_out "ddim"
finish
