#!/usr/bin/env bash
# Regenerates the seed inputs of the fuzz corpora (tests/fuzz/corpus/<target>/seed_*) and the
# dictionary tests/fuzz/spec.dict from the repository and a built difflab; inputs not named seed_*
# (regressions: crash_*, leak_*, bug_* — docs/fuzz.md) are kept.
#   spec      configs/**/*.yaml, experiments/*/base.yaml, tests/cli/data/tiny.yaml
#   override  "base=NAME" plus the KEY=VALUE overrides of the CLI tests and the experiments' post.sh
#   sweep     experiments/*/sweep.yaml and tests/cli/data/sweep3.yaml, base renamed to the copy the
#             target puts next to the sweep (configs/methods/edm.yaml -> edm.yaml)
#   table     experiments/*/table*.yaml
#   runfile   run.h5 of four tiny runs (an MLP of width 8 for 20 steps, 16 samples; a diverged run;
#             a class-conditional run sampled again by `difflab sample`; an analytic EDM run with
#             ode_err, model_err and the posterior)
#   spec.dict every section, key and plug-in name of `difflab keys`, the sweep and table option
#             names, and YAML tokens
# Usage: tests/fuzz/make_seeds.sh BUILD_DIR   (BUILD_DIR/difflab is used; results in a temp dir)
set -euo pipefail
build=$(cd "${1:?usage: make_seeds.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
dl=$build/difflab
[ -x "$dl" ] || { echo "no $dl: build first" >&2; exit 1; }
for t in spec override sweep table runfile; do
  mkdir -p "$corpus/$t"
  rm -f "$corpus/$t"/seed_*
done
flat() { echo "$1" | sed 's|/|_|g'; }   # configs/methods/edm.yaml -> configs_methods_edm.yaml

# spec
for f in $(cd "$src" && ls configs/*.yaml configs/*/*.yaml experiments/*/base.yaml tests/cli/data/tiny.yaml); do
  cp "$src/$f" "$corpus/spec/seed_$(flat "$f")"
done

# override: each base alone, then the overrides found, a few to an input, on each base in turn
bases=(minimal tiny edm cd cfg)
for b in "${bases[@]}"; do printf 'base=%s\n' "$b" > "$corpus/override/seed_base_$b"; done
mapfile -t overs < <(cd "$src" && grep -ohE "\b[a-z_]+(\.[a-z_0-9]+)+=[^ \"'();:\$,]+" tests/cli/*.sh experiments/*/post.sh \
                      | grep -v '\$$' | sort -u)
i=0
for ((k = 0; k < ${#overs[@]}; k += 4)); do
  b=${bases[$((i % ${#bases[@]}))]}
  { printf 'base=%s\n' "$b"; printf '%s\n' "${overs[@]:k:4}"; } > "$corpus/override/seed_$(printf %03d $i)"
  i=$((i + 1))
done

# sweep
for f in $(cd "$src" && ls experiments/*/sweep.yaml tests/cli/data/sweep3.yaml); do
  sed -E 's|^base: *(\.\./)*configs/methods/|base: |' "$src/$f" > "$corpus/sweep/seed_$(flat "$f")"
done

# table
for f in $(cd "$src" && ls experiments/*/table*.yaml); do
  cp "$src/$f" "$corpus/table/seed_$(flat "$f")"
done

# runfile
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small=(model.width=8 model.nfreq=2 train.steps=20 train.n_data=64 eval.n_samples=16 eval.n_ref=16 eval.mmd_max=16
       eval.swd_projections=4 run.progress=none run.threads=1)
export OMP_NUM_THREADS=1
"$dl" run "$src/tests/cli/data/tiny.yaml" --results "$tmp/r" "${small[@]}" name=tiny >/dev/null
"$dl" run "$src/tests/cli/data/tiny.yaml" --results "$tmp/r" "${small[@]}" name=diverged train.lr=1e20 >/dev/null || true
"$dl" run "$src/configs/methods/cfg.yaml" --results "$tmp/r" "${small[@]}" name=cfg sampler.steps=4 >/dev/null
"$dl" sample "$(basename "$(ls -d "$tmp"/r/runs/cfg-*)")" --results "$tmp/r" 'sampler={type: ddpm, steps: 3}' >/dev/null
"$dl" run "$src/configs/methods/edm.yaml" --results "$tmp/r" "${small[@]:2}" name=analytic 'model={type: analytic}' \
  data.type=gmm sampler.steps=4 eval.ode_err=true eval.ode_err_n=8 eval.model_err=true eval.posterior=true >/dev/null
for d in "$tmp"/r/runs/*/; do
  n=$(basename "$d")
  cp "$d/run.h5" "$corpus/runfile/seed_${n%%-*}.h5"
done

# spec.dict
{
  echo "# Spec keys, sections and plug-in names (from \`difflab keys\`), sweep and table option names,"
  echo "# YAML tokens: libFuzzer's -dict for the text targets. Made by tests/fuzz/make_seeds.sh."
  "$dl" keys | awk '{ print $1 }' | sort -u | while read -r k; do
    echo "\"$k\""
    echo "\"$k=\""
    echo "$k" | tr '.' '\n'
  done | sed -E 's/^([a-zA-Z0-9_]+)$/"\1"/'
  "$dl" keys | grep -oE '\{[a-z0-9_, ]+\}' | tr -d '{}' | tr ',' '\n' | tr -d ' ' | sed 's/.*/"&"/'
  for w in type name base set grid zip seeds exclude quick rows cols metric where agg err format sampler nfe \
           settings merge floor last mean min max std sem md latex csv true false null; do
    echo "\"$w\""
  done
  printf '%s\n' '": "' '"{"' '"}"' '"["' '"]"' '", "' '"- "' '"&a "' '"*a"' '"!!str "' '"\x22"' "\"'\"" \
    '"|\x0a"' '"~"' '"---\x0a"' '"..."' '"1e308"' '"-0"' '"0x10"' '".nan"' '".inf"' '"-.inf"' '"9223372036854775807"'
} | awk '!seen[$0]++' > "$src/tests/fuzz/spec.dict"
du -sh "$corpus"/*
