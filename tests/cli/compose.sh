#!/usr/bin/env bash
# Composition and multirun (issue 18, point 6). Specs built with base: (the top level and a
# section's file, paths relative to the naming file) resolve to the flat spec's run: the same
# run id, config_hash and recorded config, which reproduce needs no base file to rerun; a sweep's
# base may have bases; cycles, missing files and bad values in a base file are refused naming the
# file, line and column, with nothing written. `sweep --grid` writes a named sweep that make runs
# with the right params; the same grid again is a no-op, more seeds extend it; a comma list in a
# run's override points to --grid.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
MAKE=(make -s -f "$SRC/Makefile.runs" RESULTS=results DIFFLAB="$DIFFLAB")

# ---- base: ----
cat > flat.yaml <<'Y'
name: comp
data: {type: gmm, weights: [1, 1], means: [[-2.0, 0.0], [2.0, 0.0]], stds: [0.3, 0.3]}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddim, steps: 10, eta: 0.0}
train: {steps: 40, batch: 64, n_data: 500, lr: 2.0e-3}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y
mkdir -p conf/methods conf/datasets
cat > conf/datasets/gmm2.yaml <<'Y'
type: gmm
weights: [1, 1]
means: [[-2.0, 0.0], [2.0, 0.0]]
stds: [0.3, 0.3]
Y
cat > conf/methods/small.yaml <<'Y'
name: small
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, variance: beta_tilde, steps: 10}
train: {steps: 40, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y
# comp.yaml: the method as its base, the dataset file as its data section, its own keys on top
# (another sampler type: the base's ddpm variance goes with it).
cat > conf/comp.yaml <<'Y'
base: methods/small.yaml
name: comp
data: {base: datasets/gmm2.yaml}
sampler: {type: ddim, steps: 10}
train: {lr: 2.0e-3}
Y
expect_exit 0 "$DIFFLAB" spec flat.yaml && cp "$TMP/out" flat.spec
expect_exit 0 "$DIFFLAB" spec conf/comp.yaml && cp "$TMP/out" comp.spec
cmp -s flat.spec comp.spec && pass || { fail "composed and flat specs resolve differently:"; diff flat.spec comp.spec >&2; }
id=$(sed -n 's/^# run_id: //p' comp.spec)
[ -n "$id" ] && pass || fail "difflab spec printed no run id"
# One run: the composed spec runs it, the flat spec finds it done (same inputs, same run id).
expect_exit 0 "$DIFFLAB" run conf/comp.yaml && expect_out "run $id finished"
expect_exit 0 "$DIFFLAB" run flat.yaml && expect_out "$id"
[ "$(ls results/runs)" = "$id" ] && pass || fail "runs: $(ls results/runs | tr '\n' ' ') (want $id alone)"
# The recorded config is the resolved spec: the index's copy of it, and its hash.
"$DIFFLAB" query "SELECT spec_yaml FROM runs WHERE run_id = '$id'" --csv | sed '1d' > recorded.yaml
sed '1,2d' comp.spec > resolved.yaml
[ "$(tr -d '"' < recorded.yaml)" = "$(tr -d '"' < resolved.yaml)" ] && pass || {
  fail "recorded config differs from the resolved spec"; diff recorded.yaml resolved.yaml | head >&2; }
expect_exit 0 "$DIFFLAB" query "SELECT config_hash FROM runs WHERE run_id = '$id'" --csv &&
  expect_out "^$(sed -n 's/^# config_hash: //p' comp.spec)$"
# reproduce reruns from the record alone: the base files may be gone.
mv conf conf.away
expect_exit 0 "$DIFFLAB" reproduce "$id" && expect_out 'MATCH'
mv conf.away conf

# A sweep whose base spec has bases: the same runs as on the flat spec.
printf 'name: s_comp\nbase: conf/comp.yaml\ngrid: {train.steps: [40, 41]}\n' > s_comp.yaml
printf 'name: s_flat\nbase: flat.yaml\ngrid: {train.steps: [40, 41]}\n' > s_flat.yaml
expect_exit 0 "$DIFFLAB" sweep s_comp.yaml && expect_out 'sweep s_comp: 2 runs'
expect_exit 0 "$DIFFLAB" sweep s_flat.yaml && expect_out 'sweep s_flat: 2 runs'
[ "$(cut -d, -f2 results/sweeps/s_comp/manifest.jsonl)" = "$(cut -d, -f2 results/sweeps/s_flat/manifest.jsonl)" ] &&
  pass || fail "the sweep on the composed spec has other runs than on the flat one"

# Refused, exit 2, the place named, nothing written.
before=$(tree_state results)
check() {   # check NAME PATTERN CMD...
  local name=$1 pat=$2; shift 2
  if expect_exit 2 "$@"; then expect_out "$pat"; fi
  [ "$(tree_state results)" = "$before" ] && pass || fail "$name: results/ changed"
}
printf 'name: a\nbase: b.yaml\n' > a.yaml
printf 'train: {steps: 5}\nbase: a.yaml\n' > b.yaml
check cycle 'b.yaml:2:7: base: include cycle: a.yaml -> b.yaml -> a.yaml' "$DIFFLAB" run a.yaml
printf 'base: self.yaml\n' > self.yaml
check self 'self.yaml:1:7: base: include cycle: self.yaml -> self.yaml' "$DIFFLAB" run self.yaml
printf 'name: m\ndata:\n  base: datasets/nope.yaml\n' > conf/missing.yaml
check missing "conf/missing.yaml:3:9: base: cannot read 'conf/datasets/nope.yaml': No such file" \
  "$DIFFLAB" run conf/missing.yaml
printf 'type: gmm\nweights: [1, 1]\nstds: [0.3, fast]\n' > conf/datasets/bad.yaml
printf 'base: methods/small.yaml\ndata: {base: datasets/bad.yaml}\n' > conf/uses_bad.yaml
check in_base "conf/datasets/bad.yaml:3:13: data.stds\\[1\\]: expected a real number, got 'fast'" \
  "$DIFFLAB" run conf/uses_bad.yaml
check override "override 'data=\\{base: x.yaml\\}': data.base: base files are read only from a spec file" \
  "$DIFFLAB" run flat.yaml "data={base: x.yaml}"
check scalar_file "conf/scalar.yaml:1:7: data.type: unknown dataset 'datasets/gmm2.yaml'.*for a file of the section's keys write data: \\{base: datasets/gmm2.yaml\\}" \
  bash -c "printf 'data: datasets/gmm2.yaml\n' > conf/scalar.yaml && '$DIFFLAB' run conf/scalar.yaml"

# ---- sweep --grid ----
cat > g.yaml <<'Y'
name: g
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: 40, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y
# A comma list in a run's override: refused, pointing to --grid.
check run_list "train.lr: expected a real number, got '1e-3,3e-3' \\(a run per value is a sweep: difflab sweep --grid g.yaml train.lr=1e-3,3e-3\\)" \
  "$DIFFLAB" run g.yaml train.lr=1e-3,3e-3
check grid_bad_value "sweep --grid: grid axis 'train.lr', value fast: override 'train.lr=fast': train.lr: expected a real number, got 'fast'" \
  "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3,fast seeds=2
check grid_bad_key "sweep --grid: grid axis 'train.lz', value 1e-3: .*train.lz" "$DIFFLAB" sweep --grid g.yaml train.lz=1e-3
check grid_no_axes "sweep --grid: give the axes as KEY=V1,V2" "$DIFFLAB" sweep --grid g.yaml
check grid_empty "argument 'train.lr=1e-3,': an empty value" "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3,
check grid_name "--name '../x'" "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3 --name ../x

expect_exit 0 "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3,3e-3 seeds=2 &&
  expect_out '^sweep g-train.lr: 4 runs in .*results/sweeps/g-train.lr$' && expect_out 'make -f Makefile.runs SWEEP=g-train.lr'
grep -q '^base: "g.yaml"$' results/sweeps/g-train.lr/sweep.yaml && pass || fail "no sweep file of the grid"
expect_exit 0 "${MAKE[@]}" SWEEP=g-train.lr -j 2
[ "$(grep -c 'finished in' "$TMP/out")" = 4 ] && pass || fail "make ran $(grep -c 'finished in' "$TMP/out") runs, want 4"
params() {
  "$DIFFLAB" query "SELECT p.real_value, r.seed, r.status FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id
    AND s.sweep = 'g-train.lr' JOIN params p ON p.run_id = r.run_id AND p.key = 'train.lr' ORDER BY 1, 2" --csv | sed 1d | tr '\n' ' '
}
[ "$(params)" = "0.001,0,finished 0.001,1,finished 0.003,0,finished 0.003,1,finished " ] && pass || fail "grid runs' params: $(params)"
# The same grid again (its keys in any order, values spelled alike): the same sweep, a no-op.
state=$(tree_state results/sweeps/g-train.lr)
expect_exit 0 "$DIFFLAB" sweep --grid g.yaml seeds=2 train.lr=1e-3,3e-3 && expect_out 'sweep g-train.lr: 4 runs, unchanged'
[ "$(tree_state results/sweeps/g-train.lr)" = "$state" ] && pass || fail "an unchanged grid rewrote its sweep"
expect_exit 0 "${MAKE[@]}" SWEEP=g-train.lr -j 2 && { grep -q 'finished in' "$TMP/out" && fail "done lines ran again" || pass; }
# More seeds: extended append-only; make runs the new lines only.
expect_exit 0 "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3,3e-3 seeds=3 &&
  expect_out 'sweep g-train.lr: extended from 4 to 6 runs \(lines 0 to 3 unchanged\)'
expect_exit 0 "${MAKE[@]}" SWEEP=g-train.lr -j 2
[ "$(grep -c 'finished in' "$TMP/out")" = 2 ] && pass || fail "make after more seeds ran $(grep -c 'finished in' "$TMP/out") runs, want 2"
[ "$(params)" = "0.001,0,finished 0.001,1,finished 0.001,2,finished 0.003,0,finished 0.003,1,finished 0.003,2,finished " ] &&
  pass || fail "grid runs' params after more seeds: $(params)"
# Fewer values than the frozen grid: refused.
if expect_exit 2 "$DIFFLAB" sweep --grid g.yaml train.lr=1e-3 seeds=3; then expect_out 'is not among the new lines'; fi
# A named grid of whole sections and a key: its sweep file, as a file, expands to the same sweep.
expect_exit 0 "$DIFFLAB" sweep --grid g.yaml "sampler={type: ddim, steps: 5},{type: heun, steps: 3}" train.steps=30 \
  --name samplers && expect_out 'sweep samplers: 2 runs'
cp results/sweeps/samplers/sweep.yaml samplers.yaml
expect_exit 0 "$DIFFLAB" sweep samplers.yaml && expect_out 'sweep samplers: 2 runs, unchanged'
expect_exit 2 "$DIFFLAB" sweep samplers.yaml --name x && expect_out '--name names a --grid sweep'
# With --launcher slurm the grid is expanded first, then submitted (here: no sbatch, so a clear
# error after the expansion, the script kept).
mkdir -p nobin
if PATH="$TMP/nobin" expect_exit 1 "$DIFFLAB" sweep --grid g.yaml train.steps=30,31 --launcher slurm; then
  expect_out 'sweep g-train.steps: 2 runs' && expect_out 'sbatch not found on PATH'
fi
ls results/sweeps/g-train.steps/slurm-*.sbatch >/dev/null 2>&1 && pass || fail "no Slurm script of the grid"
finish
