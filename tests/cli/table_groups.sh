#!/usr/bin/env bash
# Tables and summaries that never mix what differs (issue 14), tried as a new user would: two demo
# runs (seeds 0 and 1), a --new repeat of seed 0, a run that differs from seed 1 only in its name,
# a demo run with another learning rate and one EDM run, all at train.steps=200 (shortened:
# small model, batch and eval). Each block fails on the program before issue 14:
#   1. `table --rows train.steps --metric loss` pooled the EDM run with the demo runs in one cell
#      (n=4): now one row per config, named by the keys that differ, and a note; --merge pools;
#   2. group_summary / group_metrics / group_evals counted a repeat and a renamed run as
#      replicates (n 4 for two seeds, a std shrunk by the duplicates): now n counts seeds;
#   3. `--rows sampler.type --cols nfe` filed DDIM evals added by `difflab sample` under the spec's
#      ddpm row: now under ddim;
#   4. `difflab runs` showed the swd of the eval written last (DDIM's), without naming a sampler:
#      now its own sampler's, named, with its NFE;
#   5. the legend names the test and its level; --floor adds the 'exact' row (evals inserted by
#      hand here: the sampler exact is another part of the issue).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
Q=(train.steps=200 train.batch=128 model.width=64 sampler.steps=50 eval.n_samples=300 eval.n_ref=300
   eval.swd_projections=32 eval.mmd_max=300 run.progress=none run.threads=1)
run() { # run SPEC [overrides...]: prints the run id
  "$DIFFLAB" run "$@" "${Q[@]}" > "$TMP/run.out" 2>&1 || { cat "$TMP/run.out" >&2; return 1; }
  sed -n 's/^run \([^ ]*\) finished.*/\1/p' "$TMP/run.out" | tail -n 1
}
id0=$(run "$SRC/configs/demo.yaml" seed=0) && id1=$(run "$SRC/configs/demo.yaml" seed=1) &&
  id0r=$(run "$SRC/configs/demo.yaml" seed=0 --new) && ide=$(run "$SRC/configs/methods/edm.yaml") &&
  idc=$(run "$SRC/configs/demo.yaml" seed=1 name=demo_copy) &&
  idl=$(run "$SRC/configs/demo.yaml" seed=2 train.lr=0.002) || { fail "runs"; finish; exit 1; }
[ "$id0r" = "$id0-r2" ] && [ "${idc#demo_copy-}" = "${id1#demo-}" ] && pass || fail "ids: $id0 $id0r $id1 $idc"
q() { "$DIFFLAB" query "$1" --csv | tail -n 1; }
loss() { q "SELECT printf('%.17g', value) FROM last_metrics WHERE run_id = '$1' AND key = 'loss'"; }
l0=$(loss "$id0") l1=$(loss "$id1") le=$(loss "$ide") ll=$(loss "$idl")
[ "$(loss "$id0r")" = "$l0" ] && [ "$(loss "$idc")" = "$l1" ] && pass || fail "a repeat's loss differs"
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b; exit !(a != "" && d <= 1e-9 * (s > 1 ? s : 1)) }'; }

# 1. Only one config per cell: demo (seeds 0 and 1, 2 repeats) and EDM apart, the note names keys.
expect_exit 0 "$DIFFLAB" table --rows train.steps --metric loss --where "r.run_id <> '$idl'" --format csv
expect_out '^train.steps,mean,std,n,failed,best,repeats,p,config$'
[ "$(grep -c '^200,' "$TMP/out")" -eq 2 ] && pass || fail "not two rows (one per config)"
demo=$(grep '^200,.*diffusion.schedule.type=ddpm_linear' "$TMP/out")
edm=$(grep '^200,.*diffusion.schedule.type=edm' "$TMP/out")
near "$(echo "$demo" | cut -d, -f2)" "$(awk -v a="$l0" -v b="$l1" 'BEGIN { printf "%.17g", (a + b) / 2 }')" \
  && pass || fail "demo row: $demo (losses $l0, $l1)"
[ "$(echo "$demo" | cut -d, -f4-7)" = "2,0,0,2" ] && pass || fail "demo row n, failed, best, repeats: $demo"
near "$(echo "$edm" | cut -d, -f2)" "$le" && [ "$(echo "$edm" | cut -d, -f4)" = 1 ] && pass || fail "edm row: $edm"
expect_out "note: row train.steps=200 holds runs of 2 configs that differ in .*diffusion.schedule.type"
expect_exit 0 "$DIFFLAB" table --rows train.steps --metric loss --where "r.run_id <> '$idl'"
[ "$(grep -c '^| 200 |' "$TMP/out")" -eq 2 ] && pass || fail "demo and EDM share a cell: $(grep '^| 200' "$TMP/out")"
expect_out "^\| 200 \| .* \| $(printf '%.4g' "$le") \(n=1\) \|$"
expect_out '^\| train.steps \| config \| loss \|$'
expect_out '^\| 200 \| diffusion.param.type=eps, .* \| [0-9.]+ ± [0-9.e-]+ \(n=2, 2 repeats\) \|$'
# Runs that differ in train.lr alone: split, named by it; --merge train.lr pools them on purpose.
expect_exit 0 "$DIFFLAB" table --rows train.steps --metric loss --where "r.name LIKE 'demo%'" --format csv
expect_out '^200,[0-9.e-]+,[0-9.e-]+,2,0,0,2,,train.lr=0.001$'
expect_out "^200,[0-9.e-]+,,1,0,0,0,,train.lr=0.002$"
expect_out "differ in train.lr \("
expect_exit 0 "$DIFFLAB" table --rows train.steps --metric loss --where "r.name LIKE 'demo%'" --merge train.lr --format csv
expect_out '^200,[0-9.e-]+,[0-9.e-]+,3,0,0,2,,$'
near "$(sed -n 's/^200,\([^,]*\),.*/\1/p' "$TMP/out")" \
  "$(awk -v a="$l0" -v b="$l1" -v c="$ll" 'BEGIN { printf "%.17g", (a + b + c) / 3 }')" && pass || fail "merged mean"
grep -q note: "$TMP/out" && fail "a note with --merge" || pass
if expect_exit 2 "$DIFFLAB" table --rows train.steps --metric loss --merge train.steps; then
  expect_out "merge: the key 'train.steps' is given twice"
fi

# 2. The group views: n counts seeds, repeats are counted apart, the std is over the seeds.
g=$(q "SELECT group_hash FROM runs WHERE run_id = '$id0'")
[ "$(q "SELECT n FROM group_summary WHERE group_hash = '$g'")" = 2 ] && pass || fail "group_summary: n is not 2 seeds"
expect_exit 0 "$DIFFLAB" query "SELECT n_runs, n, repeats, n_failed FROM group_summary WHERE group_hash = '$g'" --csv
expect_out '^4,2,2,0$'
std=$(q "SELECT printf('%.17g', final_loss_std) FROM group_summary WHERE group_hash = '$g'")
near "$std" "$(awk -v a="$l0" -v b="$l1" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.17g", d / sqrt(2) }')" \
  && pass || fail "group_summary std $std is not over the two seeds"
expect_exit 0 "$DIFFLAB" query "SELECT n, repeats FROM group_metrics WHERE group_hash = '$g' AND key = 'loss'" --csv
expect_out '^2,2$'
expect_exit 0 "$DIFFLAB" query "SELECT n, repeats FROM group_evals WHERE group_hash = '$g' AND metric = 'swd' AND sampler = 'ddpm'" --csv
expect_out '^2,2$'

# 3. DDIM evals added later go under the eval's sampler, not the spec's.
expect_exit 0 "$DIFFLAB" sample "$id0" "sampler={type: ddim, steps: 10}"
expect_exit 0 "$DIFFLAB" sample "$id1" "sampler={type: ddim, steps: 10}"
sel="r.run_id IN ('$id0', '$id1')"
expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric swd --where "$sel" --format csv
expect_out '^ddim,10,[0-9.e-]+,[0-9.e-]+,2,0,[01],0,'
expect_out '^ddpm,10,,,0,0,0,0,,$'
expect_out '^ddpm,50,[0-9.e-]+,[0-9.e-]+,2,0,[01],0,'
expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric swd --where "$sel"
expect_out '^\| ddim \| [0-9.]+ ± [0-9.e-]+ \(n=2\) \| — \|$'
expect_out '^\| ddpm \| — \| [0-9.]+ ± [0-9.e-]+ \(n=2\) \|$'
# the same runs under two samplers: paired, so the best of a column is tested over seeds' differences
expect_exit 0 "$DIFFLAB" table --rows sampler.type --metric swd --where "$sel" --nfe 10,50
expect_out 'one-sided Welch t-test across seeds \(a paired t-test over per-seed differences where both cells hold the same runs\) at α = 0.05'

# 4. difflab runs: the run's own sampler (ddpm at 50 steps), named, not the DDIM eval written last.
own=$(q "SELECT value FROM evals WHERE run_id = '$id0' AND metric = 'swd' AND sampler = 'ddpm'")
expect_exit 0 "$DIFFLAB" runs --csv
expect_out '^run_id,name,status,seed,sweep,created,wall_s,loss,sampler,nfe,swd,mmd2,fd$'
line=$(grep "^$id0," "$TMP/out")
[ "$(echo "$line" | cut -d, -f9,10,11)" = "ddpm,50,$own" ] && pass || fail "runs shows '$line' (own ddpm swd $own)"
[ "$(grep "^$ide," "$TMP/out" | cut -d, -f9,10)" = "heun,99" ] && pass || fail "runs: edm is not heun at 99 NFE"

# 5. The floor: the 'exact' evals of the same runs, a row of its own, never marked.
if command -v sqlite3 >/dev/null; then
  sqlite3 results/index.sqlite "INSERT INTO evals (run_id, metric, sampler, nfe, settings, n_samples, value)
    VALUES ('$id0', 'swd', 'exact', 0, '{}', 300, 0.01), ('$id1', 'swd', 'exact', 0, '{}', 300, 0.03)"
  expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric swd --where "$sel" --floor --format csv
  expect_out '^exact \(floor\),10,0.02,0.0141421356237309[0-9]*,2,0,0,0,,floor$'
  expect_out '^exact \(floor\),50,0.02,'
  expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric swd --where "$sel" --floor
  expect_out '^\| exact \(floor\) \| 0.02 ± 0.014 \(n=2\) \| 0.02 ± 0.014 \(n=2\) \|$'
  # not among the samplers unless asked for
  expect_exit 0 "$DIFFLAB" table --rows sampler --metric swd --where "$sel" --format csv
  grep -q '^exact' "$TMP/out" && fail "exact counted as a sampler" || pass
fi
finish
