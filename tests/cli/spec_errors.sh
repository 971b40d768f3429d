#!/usr/bin/env bash
# Every bad input: exit code 2, a message naming what and where, and results/ unchanged.
. "$(dirname "$0")/lib.sh"
cd "$TMP"

# A results folder with content, to check that nothing in it changes.
mkdir -p results/runs/keep && echo "precious" > results/runs/keep/file
before=$(tree_state results)

check() {   # check NAME PATTERN CMD...
  local name=$1 pat=$2; shift 2
  if expect_exit 2 "$@"; then expect_out "$pat"; fi
  [ "$(tree_state results)" = "$before" ] && pass || fail "$name: results/ changed"
}

cat > unknown_key.yaml <<'Y'
name: t
train:
  stepz: 10
Y
check unknown_key 'unknown_key.yaml:3:3: .*train\.stepz.*steps' "$DIFFLAB" run unknown_key.yaml

printf 'train:\n  lr: fast\n' > wrong_type.yaml
check wrong_type 'wrong_type.yaml:2:7: .*train\.lr.*real' "$DIFFLAB" run wrong_type.yaml

printf 'train:\n  batch: 0\n' > range.yaml
check out_of_range 'range.yaml:2:10: .*train\.batch.*range' "$DIFFLAB" run range.yaml

printf 'sampler:\n  type: heunn\n' > plugin.yaml
check unknown_plugin 'plugin.yaml:2:9: .*heunn.*valid: .*ddpm' "$DIFFLAB" run plugin.yaml

check missing_file "cannot read spec 'nope.yaml'" "$DIFFLAB" run nope.yaml

printf 'train:\n  steps: [1, 2\n' > syntax.yaml
check yaml_syntax 'syntax.yaml:[0-9]+:[0-9]+: ' "$DIFFLAB" run syntax.yaml

printf 'train:\n  steps: 1\n  steps: 2\n' > dup.yaml
check duplicate_key 'dup.yaml:3:3: .*duplicate.*steps' "$DIFFLAB" run dup.yaml

printf -- '- 1\n- 2\n' > seq.yaml
check not_a_mapping 'seq.yaml:1:1: .*mapping' "$DIFFLAB" run seq.yaml

printf 'name: a\n---\nname: b\n' > two.yaml
check two_documents 'two.yaml:[0-9]+:[0-9]+: .*(document)' "$DIFFLAB" run two.yaml

cat > bomb.yaml <<'Y'
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
Y
check alias_bomb 'bomb.yaml:[0-9]+:[0-9]+: .*alias' timeout 20 "$DIFFLAB" run bomb.yaml

check override_unknown "override 'train.stepz=5'.*steps" "$DIFFLAB" run "$SRC/configs/demo.yaml" train.stepz=5
check override_type "override 'train.steps=many'" "$DIFFLAB" run "$SRC/configs/demo.yaml" train.steps=many
check override_set "override 'model.widht=5'.*width" "$DIFFLAB" run "$SRC/configs/demo.yaml" --set model.widht=5

printf 'sampler: {type: ddpm, steps: 5000}\n' > steps.yaml
check incompatible 'steps.yaml:1:30: sampler\.steps: 5000 exceeds' "$DIFFLAB" run steps.yaml
check incompatible_override "override 'sampler.steps=2000': sampler\.steps" "$DIFFLAB" run steps.yaml sampler.steps=2000

# Learned variance, the bound and mu need what they are defined on.
printf 'sampler: {type: ddpm, variance: learned}\n' > learned.yaml
check learned_variance 'learned.yaml:1:[0-9]+: sampler\.variance: learned needs a model trained with a learned variance.*hybrid' \
  "$DIFFLAB" run learned.yaml
printf 'diffusion: {schedule: {type: vp}, loss: {type: vlb}}\nsampler: {type: euler}\n' > vlb_vp.yaml
check vlb_continuous 'vlb_vp.yaml:1:[0-9]+: diffusion\.loss\.type: vlb .*needs a discrete schedule' "$DIFFLAB" run vlb_vp.yaml
check mu_continuous "override 'diffusion.param=mu'.*mu .*needs a discrete schedule" \
  "$DIFFLAB" run vlb_vp.yaml diffusion.loss=mse diffusion.param=mu

printf 'data: {type: gmm, weights: [0.5, 0.5], means: [[0, 0]], stds: [1, 1]}\n' > gmm.yaml
check gmm_shapes 'gmm.yaml:1:[0-9]+: data\.means: 1 rows but data\.weights has 2' "$DIFFLAB" run gmm.yaml

# An index that is not a database: a clear error, and the file untouched.
mkdir -p bad && printf 'not a database, just text\n' > bad/index.sqlite
bad_before=$(sha256sum bad/index.sqlite)
if expect_exit 1 "$DIFFLAB" --results bad run "$SRC/configs/demo.yaml" train.steps=1; then expect_out 'not a (difflab index|database)'; fi
[ "$(sha256sum bad/index.sqlite)" = "$bad_before" ] && [ ! -d bad/runs ] && pass || fail "a bad index was changed or a run folder appeared"

check unknown_verb "unknown command 'fly'" "$DIFFLAB" fly

finish
