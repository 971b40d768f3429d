#!/usr/bin/env bash
# difflab table: ablation tables from quick analytic runs (no training) in Markdown, LaTeX and
# CSV, a definition file, failed runs and sweeps (written with the sqlite3 shell), bad input; the
# summary views through difflab query, which cannot write.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > exact.yaml <<'Y'
name: exact
data: {type: eight_gaussians}
model: analytic
sampler: {type: ddpm, steps: 10}
eval: {n_samples: 400, n_ref: 400, swd_projections: 32, mmd_max: 400}
run: {progress: none, threads: 1}
Y
# 2 samplers x 2 step counts x 2 seeds.
for sampler in ddpm ddim; do
  for steps in 5 20; do
    for seed in 0 1; do
      expect_exit 0 "$DIFFLAB" run exact.yaml sampler=$sampler sampler.steps=$steps seed=$seed \
        || { finish; exit 1; }
    done
  done
done
index=$(tree_state results)

# Markdown: a caption, a header with the column key, four cells of n = 2 with their std.
expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols sampler.steps --metric swd
expect_out '^swd: mean ± std over seeds \(n; .*\); lower is better; bold: .*one-sided Welch t-test.* at α = 0.05'
expect_out '^\| sampler.type \| sampler.steps=5 \| sampler.steps=20 \|$'
expect_out '^\|---\|---:\|---:\|$'
expect_out '^\| ddim \| (\*\*)?[0-9.]+ ± [0-9.e-]+(\*\*)? \(n=2\) \| (\*\*)?[0-9.]+ ± [0-9.e-]+(\*\*)? \(n=2\) \|$'
expect_out '^\| ddpm \| '
[ "$(grep -o '(n=2)' "$TMP/out" | wc -l)" -eq 4 ] && pass || fail "not four cells of n=2"

# LaTeX booktabs.
expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric mmd2 --format latex --err sem
expect_out '^% mmd2: mean ± sem over seeds'
expect_out '^\\begin\{tabular\}\{lrr\}$'
expect_out '^\\toprule$' && expect_out '^\\midrule$' && expect_out '^\\bottomrule$'
expect_out '^ & \\multicolumn\{2\}\{c\}\{nfe\} \\\\$'
expect_out '^sampler.type & 5 & 20 \\\\$'
expect_out '^ddim & (\\textbf\{)?-?[0-9.e-]+ \$\\pm\$ [0-9.e-]+\}? \(n=2\) & '

# CSV: one line per cell, full precision; its means agree with group_evals.
expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols nfe --metric swd --format csv
expect_out '^sampler.type,nfe,mean,std,n,failed,best,repeats,p,config$'
expect_out '^ddpm,20,[0-9.e-]+,[0-9.e-]+,2,0,[01],0,[0-9.e-]*,$'
[ "$(wc -l < "$TMP/out")" -eq 5 ] && pass || fail "CSV is not a header and 4 cells"
csv_mean=$(sed -n 's/^ddim,5,\([^,]*\),.*/\1/p' "$TMP/out")
expect_exit 0 "$DIFFLAB" query "SELECT printf('%.12g', g.mean) FROM group_evals g JOIN run_summary s
  ON s.group_hash = g.group_hash WHERE s.sampler = 'ddim' AND s.sampler_steps = 5 AND g.metric = 'swd'
  AND g.sampler = 'ddim' LIMIT 1" --csv
awk -v a="$csv_mean" -v b="$(tail -n 1 "$TMP/out")" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-9 && d > -1e-9) }' \
  && pass || fail "table mean $csv_mean differs from group_evals"

# The definition file in analysis/, overridden on the command line; --sampler and --nfe filters.
expect_exit 0 "$DIFFLAB" table --def "$SRC/analysis/samplers_by_nfe.yaml" --format csv
expect_out '^sampler,nfe,mean,std,n,failed,best,repeats,p,config$' && expect_out '^ddim,5,'
expect_exit 0 "$DIFFLAB" table --def "$SRC/analysis/samplers_by_nfe.yaml" --sampler ddim --nfe 20 --format csv
expect_out '^ddim,20,[0-9.e-]+,[0-9.e-]+,2,0,0,0,,$'
[ "$(wc -l < "$TMP/out")" -eq 2 ] && pass || fail "the filters left more than one cell"
# The noise baseline only when asked for. The 8 runs' baselines are 2 seeds' noise, each the
# same bits in the 4 runs of its seed (the sampler section does not change the initial noise):
# n = 2 seeds and 6 repeats (issue 14; it was n = 8).
expect_exit 0 "$DIFFLAB" table --rows sampler --cols nfe --metric swd --sampler noise --format csv
expect_out '^noise,0,[0-9.e-]+,[0-9.e-]+,2,0,0,6,,$'
# --where on runs r: one seed, n = 1, no error.
expect_exit 0 "$DIFFLAB" table --rows sampler.type,sampler.steps --metric swd --where "r.seed = 0" --format csv
expect_out '^sampler.type,sampler.steps,mean,std,n,failed,best,repeats,p,config$' && expect_out '^ddpm,5,[0-9.e-]+,,1,0,0,0,,$'
# A run sampled again at another NFE: two evals in its one cell when neither nfe nor the steps
# are keys, reduced by --agg (last: the one recorded last), with a note; nfe as a key keeps them
# apart, and so does sampler.steps, which with an eval metric is the eval's steps (settings.steps;
# issue 14: it was the spec's, which filed the 7-step eval under sampler.steps=20).
id=$("$DIFFLAB" query "SELECT run_id FROM run_summary WHERE sampler = 'ddpm' AND sampler_steps = 20 AND seed = 0" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" sample "$id" --steps 7
v7=$("$DIFFLAB" query "SELECT printf('%.12g', value) FROM evals WHERE run_id = '$id' AND metric = 'swd' AND nfe = 7" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" table --rows sampler.type --metric swd --where "r.run_id = '$id'" --format csv
expect_out "note: 1 run had several matching evals"
awk -F, -v v="$v7" '$1 == "ddpm" { d = $2 - v; ok = d < 1e-9 && d > -1e-9 } END { exit !ok }' "$TMP/out" \
  && pass || fail "--agg last did not take the eval recorded last ($v7)"
expect_exit 0 "$DIFFLAB" table --rows sampler.type,seed --cols sampler.steps --metric swd --format csv
grep -q 'note:' "$TMP/out" && fail "a note with sampler.steps as a key" || pass
awk -F, -v v="$v7" '$1 == "ddpm" && $2 == 0 && $3 == 7 { d = $4 - v; ok = d < 1e-9 && d > -1e-9 } END { exit !ok }' "$TMP/out" \
  && pass || fail "the 7-step eval is not in column sampler.steps=7 ($v7)"
expect_exit 0 "$DIFFLAB" table --rows sampler.type,seed --cols nfe --metric swd --format csv
grep -q 'note:' "$TMP/out" && fail "a note with nfe as a key" || pass
expect_out '^ddpm,0,7,[0-9.e-]+,,1,0,0,0,,$'
index=$(tree_state results)

# Failed runs and a sweep, written into the index by hand (the sqlite3 shell).
if command -v sqlite3 >/dev/null; then
  sqlite3 results/index.sqlite "UPDATE runs SET status = 'failed' WHERE run_id IN (SELECT run_id FROM run_summary
    WHERE sampler = 'ddpm' AND sampler_steps = 5); INSERT INTO sweep_runs SELECT 'study', run_id FROM runs
    WHERE run_id IN (SELECT run_id FROM run_summary WHERE sampler = 'ddim')"
  expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols sampler.steps --metric swd
  # (the 7-step eval of ddpm seed 0 has a column of its own: sampler.steps is the eval's steps)
  expect_out '^\| ddpm \| — \(2 failed\) \| [0-9.]+ \(n=1\) \| [0-9.]+ ± [0-9.e-]+ \(n=2\) \|$'
  expect_exit 0 "$DIFFLAB" table --rows sampler.type --cols sampler.steps --metric swd --sweep study --format csv
  expect_out '^ddim,5,' && expect_out '^ddim,20,'
  [ "$(wc -l < "$TMP/out")" -eq 3 ] && pass || fail "--sweep study kept other runs"
  expect_exit 0 "$DIFFLAB" query "SELECT n_runs, n, n_failed FROM group_summary WHERE sampler = 'ddpm' AND sampler_steps = 5" --csv
  expect_out '^2,0,2$'
  index=$(tree_state results)
fi

# Bad input: exit 2, a message naming the option, the index untouched.
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric nope; then expect_out "--metric: no eval metric or training series 'nope'.*known: .*swd"; fi
if expect_exit 2 "$DIFFLAB" table --rows steps --metric swd; then expect_out "--rows: unknown key 'steps'.*did you mean: .*sampler.steps"; fi
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric swd --agg median; then expect_out "--agg: 'median' is not one of last, mean, min, max"; fi
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric swd --format xml; then expect_out "--format: 'xml' is not one of md, latex, csv, html"; fi
# HTML (the report's tables): a <table class="ablation">, each cell's mean at full precision.
if expect_exit 0 "$DIFFLAB" table --rows sampler.type --metric swd --format html; then
  expect_out '^<table class="ablation" data-metric="swd">$' && expect_out '<caption>swd: mean ± std over seeds'
  expect_out '<th scope="row">ddpm</th>.*<td class="cell[ a-z]*" data-n="[0-9]+" data-mean="[0-9.e-]+"'
fi
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric swd --where "nosuch = 1"; then expect_out "--where: SQL error: no such column: nosuch"; fi
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric swd --sweep nosweep; then expect_out "--sweep: no sweep 'nosweep'"; fi
if expect_exit 2 "$DIFFLAB" table --metric swd; then expect_out "--rows is required"; fi
if expect_exit 2 "$DIFFLAB" table --rows sampler.type --metric swd extra; then expect_out "unexpected argument 'extra'"; fi
printf 'rows: sampler\nmetric: swd\nerr: var\n' > bad.yaml
if expect_exit 2 "$DIFFLAB" table --def bad.yaml; then expect_out "bad.yaml:3:6: err: 'var' is not one of std, sem"; fi
[ "$(tree_state results)" = "$index" ] && pass || fail "a table command changed results/"

# The summary views; difflab query cannot write.
expect_exit 0 "$DIFFLAB" query "SELECT count(*), count(swd), count(DISTINCT group_hash) FROM run_summary" --csv && expect_out '^8,8,4$'
expect_exit 0 "$DIFFLAB" query "SELECT sampler, sampler_steps, n, printf('%.6f', swd_mean) FROM group_summary WHERE n = 2 ORDER BY 1, 2" --csv
expect_out '^ddim,5,2,[0-9.]+$'
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM students" --csv && expect_out '^0$'
if expect_exit 2 "$DIFFLAB" query "DELETE FROM runs"; then expect_out 'readonly'; fi
[ "$(tree_state results)" = "$index" ] && pass || fail "difflab query changed results/"

finish
