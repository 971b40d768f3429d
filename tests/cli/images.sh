#!/usr/bin/env bash
# Images end to end (issue 16): a tiny U-Net trained on the generated image set (image_mixture,
# 1x8x8) for a few hundred steps samples closer to the data than noise — pixel MMD² at most
# 0.2x the noise baseline's (optimized build) — its sample set is stored (n, C, H, W) in run.h5
# with an 8x8 PNG grid beside it, `difflab sample` adds a set with its own grid, and the peer's
# U-Net runs on Fashion-MNIST (a few steps: the data path, 423,009 parameters), as does every
# image method of configs/methods/*_fmnist.yaml (cd_fmnist from the edm_fmnist run), shortened.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > u.yaml <<'Y'
name: tiny_unet
data: {type: image_mixture, h: 8, w: 8, k: 6, std: 0.2}
model: {type: unet, ch: 16, mult: [1, 2], groups: 8, temb: 64}
diffusion: {schedule: {type: ddpm_linear, T: 1000}}
sampler: {type: ddim, steps: 50}
train: {batch: 64, n_data: 5000, lr: 2.0e-3, warmup: 50, ema_decay: 0.99}
eval: {n_samples: 500, n_ref: 500}
run: {progress: none}
Y
expect_exit 0 timeout 600 "$DIFFLAB" run u.yaml train.steps="$(sized 800)"
id=$(ls results/runs)
dir=results/runs/$id
[ -f "$dir/ddim_50.png" ] && pass || fail "no PNG grid beside run.h5: $(ls "$dir")"
# 8 x 8 tiles of 8 x 8 pixels drawn 12x, 1-pixel gaps: 775 x 775
if command -v python3 >/dev/null; then
  size=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$dir/ddim_50.png")
  [ "$size" = "775 775" ] && pass || fail "the grid is $size pixels, want 775 775"
fi
h5ls "$dir/run.h5/samples" >"$TMP/out" 2>&1
expect_out "ddim_50 +Dataset \{500, 1, 8, 8\}"
for a in channels:1 height:8 width:8; do
  h5dump -a "/data/${a%%:*}" "$dir/run.h5" >"$TMP/out" 2>&1
  expect_out "\(0\): ${a##*:}\b"
done

mmd() { "$DIFFLAB" query "SELECT value FROM evals WHERE run_id = '$id' AND metric = 'mmd2' AND sampler = '$1'" --csv | tail -1; }
noise=$(mmd noise) model=$(mmd ddim)
echo "pixel MMD²: samples $model, noise $noise"
awk -v m="$model" -v n="$noise" 'BEGIN { exit !(m > 0 || m <= 0) }' && pass || fail "no mmd2 for ddim ($model) or noise ($noise)"
if quality; then
  awk -v m="$model" -v n="$noise" 'BEGIN { exit !(m <= 0.2 * n) }' && pass ||
    fail "pixel MMD² of the samples $model is above 0.2x the noise baseline's $noise"
fi

# difflab sample adds a set, with its grid
expect_exit 0 timeout 300 "$DIFFLAB" sample "$id" "sampler={type: ddpm, steps: 20}"
[ -f "$dir/ddpm_20.png" ] && pass || fail "difflab sample wrote no grid: $(ls "$dir")"
h5ls "$dir/run.h5/samples" >"$TMP/out" 2>&1
expect_out "ddpm_20 +Dataset \{500, 1, 8, 8\}"

# Refused before anything is written: a U-Net on points, a U-Net as a classifier.
before=$(ls results/runs)
expect_exit 2 "$DIFFLAB" run "$SRC/configs/demo.yaml" "model={type: unet}"
expect_out "model.type unet needs image data"
expect_exit 2 "$DIFFLAB" run "$SRC/configs/methods/classifier.yaml" "data={type: image_mixture, h: 8, w: 8}" \
  "model={type: unet, ch: 8, groups: 4}"
expect_out "a classifier's logits need another head"
[ "$(ls results/runs)" = "$before" ] && pass || fail "a refused run left a folder: $(ls results/runs)"

# Learned variance (improved DDPM's hybrid loss): the U-Net's output doubles its channels.
expect_exit 0 timeout 300 "$DIFFLAB" run "$SRC/configs/methods/iddpm.yaml" "data={type: image_mixture, h: 8, w: 8}" \
  "model={type: unet, ch: 8, groups: 4, temb: 16}" train.steps=3 train.batch=8 train.n_data=64 eval.n_samples=8 \
  eval.n_ref=64 sampler.steps=5 run.progress=none
expect_out "summary: loss [0-9.]+"

# The peer's U-Net on Fashion-MNIST: a few steps through the real data path.
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  need_or_skip DIFFLAB_REQUIRE_DATA "Debian's dataset-fashion-mnist is not installed"
expect_exit 0 timeout 600 "$DIFFLAB" run u.yaml name=fm "data={type: fashion_mnist}" "model={type: unet}" \
  train.steps=3 train.batch=16 train.n_data=64 eval.n_samples=16 eval.n_ref=64
fm=$(ls results/runs | grep '^fm-')
"$DIFFLAB" query "SELECT n_params FROM runs WHERE run_id = '$fm'" --csv >"$TMP/out" 2>&1
expect_out "^423009$"
h5ls "results/runs/$fm/run.h5/samples" >"$TMP/out" 2>&1
expect_out "\{16, 1, 28, 28\}"

# The image methods, a few steps each on a few images (their quality is a study's job).
TINY=(train.steps=2 train.batch=8 train.n_data=64 train.warmup=0 eval.n_samples=8 eval.n_ref=64 eval.batch=8
      run.progress=none)
for m in ddpm edm score_sde_vp ict; do
  expect_exit 0 timeout 600 "$DIFFLAB" run "$SRC/configs/methods/${m}_fmnist.yaml" "${TINY[@]}" &&
    expect_out "summary: loss [0-9.]+"
done
edm=$(ls results/runs | grep '^edm_fmnist-')
expect_exit 0 timeout 600 "$DIFFLAB" run "$SRC/configs/methods/cd_fmnist.yaml" "${TINY[@]}" distill.teacher="$edm" &&
  expect_out "summary: loss [0-9.]+"
finish
