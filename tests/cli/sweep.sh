#!/usr/bin/env bash
# Sweeps: bad sweep specs refused before anything is written; expansion into a frozen manifest;
# make -j 2 runs every line once; seeds share group_hash; a run shared by two sweeps runs once and
# is listed in both; an interrupted sweep resumes without rerunning finished lines.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
MAKE=(make -s -f "$SRC/Makefile.runs" RESULTS=results DIFFLAB="$DIFFLAB")
cat > base.yaml <<'Y'
name: sw
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: 40, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y

# Bad sweep specs: exit 2, the place named, nothing written.
bad() {   # bad NAME PATTERN  (sweep text on stdin)
  cat > "$1.yaml"
  if expect_exit 2 "$DIFFLAB" sweep "$1.yaml"; then expect_out "$2"; fi
  [ ! -e results/sweeps ] && pass || fail "$1: a refused sweep wrote results/sweeps"
}
bad unknown_axis 'unknown_axis.yaml:4:3: grid axis .train.stepz., value 5: .*stepz.*steps' <<'Y'
name: x
base: base.yaml
grid:
  train.stepz: [5, 6]
Y
bad empty_axis "empty_axis.yaml:3:[0-9]+: the axis 'train.steps' is empty" <<'Y'
name: x
base: base.yaml
grid: {train.steps: []}
Y
bad same_run "x: the combinations .* and .* make the same run sw-" <<'Y'
name: x
base: base.yaml
grid:
  train.lr: [0.001, 1e-3]
Y
# A whole-section axis and a key inside that section: the key wins whatever the order, so the
# section axis keeps it (four distinct runs, each with its lr).
cat > nested.yaml <<'Y'
name: nested
base: base.yaml
grid:
  train.lr: [0.001, 0.002]
  train: [{steps: 40, batch: 64, n_data: 500}, {steps: 41, batch: 64, n_data: 500}]
Y
if expect_exit 0 "$DIFFLAB" --results nested_results sweep nested.yaml; then
  n=$(grep -c '"lr": *0.002\|lr: 0.002' nested_results/sweeps/nested/specs/*.yaml | awk -F: '{ s += $2 } END { print s }')
  [ "$n" = 2 ] && pass || fail "nested: train.lr 0.002 in $n of the 4 resolved specs (want 2)"
fi
bad zip_unequal "zip_unequal.yaml:5:3: zip lists of unequal length: 'train.steps' has 2 values, 'seed' 3" <<'Y'
name: x
base: base.yaml
zip:
  train.steps: [5, 6]
  seed: [1, 2, 3]
Y
bad exclude_nothing 'exclude_nothing.yaml:5:5: this exclude matches no combination' <<'Y'
name: x
base: base.yaml
grid: {train.steps: [5, 6]}
exclude:
  - {train.steps: 7}
Y
bad unknown_key "unknown_key.yaml:3:1: unknown sweep key 'grids'" <<'Y'
name: x
base: base.yaml
grids: {train.steps: [5, 6]}
Y
bad bad_value 'bad_value.yaml:3:8: grid axis .train.steps., value many' <<'Y'
name: x
base: base.yaml
grid: {train.steps: [10, many]}
Y
# 16 axes of 16 values: 2^64 combinations, which wrapped to 0 and "expanded" to an empty sweep
# (found by tests/fuzz/fuzz_sweep.c).
{
  printf 'name: x\nbase: base.yaml\ngrid:\n'
  for k in model.width model.depth model.nfreq diffusion.schedule.T train.steps train.batch train.n_data \
           train.warmup eval.n_samples eval.n_ref eval.seed eval.swd_projections eval.mmd_max eval.batch \
           run.log_every run.ckpt_every; do
    printf '  %s: [%s]\n' "$k" "$(seq -s ', ' 2 17)"
  done
} > too_many.in
bad too_many 'the sweep expands to more than 100000 runs' < too_many.in

# The example sweep of the README expands.
expect_exit 0 "$DIFFLAB" --results ex sweep "$SRC/experiments/example/sweep.yaml" && expect_out 'example_rho_steps: 15 runs'

# A 2 x 2 grid minus one cell, a zip pair, 2 seeds: 3 * 2 * 2 = 12 runs.
cat > a.yaml <<'Y'
name: a
base: base.yaml
grid:
  diffusion.schedule: [{type: ddpm_linear, T: 100}, {type: cosine, T: 100}]
  sampler.steps: [5, 10]
zip:
  diffusion.param: [eps, x0]
  diffusion.loss.target: [eps, x0]
seeds: [0, 1]
exclude:
  - {diffusion.schedule: "{type: cosine, T: 100}", sampler.steps: 10}
Y
expect_exit 0 "$DIFFLAB" sweep a.yaml && expect_out 'sweep a: 12 runs in .*results/sweeps/a'
[ "$(wc -l < results/sweeps/a/manifest.jsonl)" -eq 12 ] && pass || fail "manifest lines"
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM sweep_runs WHERE sweep = 'a'" --csv && expect_out '^12$'
expect_exit 0 "$DIFFLAB" sweep status a && expect_out 'sweep a: 12 runs: 12 queued, 0 running, 0 finished'
expect_exit 0 "${MAKE[@]}" SWEEP=a -j 2
expect_exit 0 "$DIFFLAB" sweep status a && expect_out '12 runs: 0 queued, 0 running, 12 finished, 0 failed'
expect_exit 0 "$DIFFLAB" query "SELECT count(*), count(DISTINCT group_hash) FROM runs r JOIN sweep_runs s
  ON s.run_id = r.run_id AND s.sweep = 'a' WHERE r.status = 'finished'" --csv && expect_out '^12,6$'
# Done lines are not run again; expanding again is a no-op; an edited sweep is refused.
expect_exit 0 "${MAKE[@]}" SWEEP=a -j 2 && { grep -q 'finished in' "$TMP/out" && fail "done lines ran again" || pass; }
expect_exit 0 "$DIFFLAB" sweep a.yaml && expect_out 'unchanged'
# A change that is not only growth is refused; more seeds (or more values of an axis) extend the
# frozen sweep append-only: the old lines keep their numbers (make targets, Slurm indices) and
# runs, only the new lines run.
sed 's/^grid:/set: {train.steps: 41}\ngrid:/' a.yaml > a_changed.yaml
state=$(tree_state results/sweeps/a)
if expect_exit 2 "$DIFFLAB" sweep a_changed.yaml; then expect_out 'is not among the new lines: a launched sweep only grows'; fi
[ "$(tree_state results/sweeps/a)" = "$state" ] && pass || fail "a refused extension changed results/sweeps/a"
cp results/sweeps/a/manifest.jsonl a_manifest.before
sed 's/seeds: \[0, 1\]/seeds: [0, 1, 2]/' a.yaml > a2.yaml
expect_exit 0 "$DIFFLAB" sweep a2.yaml && expect_out 'sweep a: extended from 12 to 18 runs \(lines 0 to 11 unchanged\)'
[ "$(head -n 12 results/sweeps/a/manifest.jsonl)" = "$(cat a_manifest.before)" ] && pass || fail "extension changed old lines"
[ "$(tail -n 6 results/sweeps/a/manifest.jsonl | grep -c '"seed":2,')" = 6 ] && pass || fail "new lines are not the seed-2 runs"
[ -f results/sweeps/a/specs/17.yaml ] && pass || fail "no spec of line 17"
expect_exit 0 "$DIFFLAB" sweep status a && expect_out '18 runs: 6 queued, 0 running, 12 finished'
expect_exit 0 "${MAKE[@]}" SWEEP=a -j 2
[ "$(grep -c 'finished in' "$TMP/out")" = 6 ] && pass || fail "make after the extension ran $(grep -c 'finished in' "$TMP/out") runs, want the 6 new"
expect_exit 0 "$DIFFLAB" sweep status a && expect_out '18 runs: 0 queued, 0 running, 18 finished'
expect_exit 0 "$DIFFLAB" sweep a2.yaml && expect_out 'unchanged'
# Fewer seeds than the frozen sweep: a shrink, refused.
if expect_exit 2 "$DIFFLAB" sweep a.yaml; then expect_out 'line 12 of the frozen sweep .* is not among the new lines'; fi

# A second sweep sharing runs with the first: listed in both, run once.
cat > b.yaml <<'Y'
name: b
base: base.yaml
grid: {sampler.steps: [5, 7]}
zip: {diffusion.param: [eps], diffusion.loss.target: [eps]}
seeds: 2
Y
n_before=$(ls results/runs | wc -l)
expect_exit 0 "$DIFFLAB" sweep b.yaml && expect_out 'sweep b: 4 runs'
expect_exit 0 "${MAKE[@]}" SWEEP=b -j 2
[ "$(ls results/runs | wc -l)" -eq $((n_before + 2)) ] && pass || fail "shared runs ran again: $(ls results/runs | wc -l) folders"
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM sweep_runs a JOIN sweep_runs b ON a.run_id = b.run_id
  WHERE a.sweep = 'a' AND b.sweep = 'b'" --csv && expect_out '^2$'

# An axis that switches a plug-in's type: each value starts from its plug-in's defaults (the base's
# ddpm variance goes with ddim), and the sweep's set keys still apply to both.
sed 's/sampler: {type: ddpm, steps: 10}/sampler: {type: ddpm, steps: 10, variance: beta_tilde}/' base.yaml > base_var.yaml
cat > switch.yaml <<'Y'
name: switch
base: base_var.yaml
set: {sampler.steps: 12}
grid: {sampler.type: [ddpm, ddim]}
Y
expect_exit 0 "$DIFFLAB" sweep switch.yaml && expect_out 'sweep switch: 2 runs'
specs=$(ls results/sweeps/switch/specs/*.yaml 2>/dev/null)
[ "$(grep -l 'variance: "beta_tilde"' $specs | wc -l)" = 1 ] && [ "$(grep -l 'eta: 0' $specs | wc -l)" = 1 ] \
  && [ "$(grep -l 'steps: 12' $specs | wc -l)" = 2 ] && pass || fail "switch sweep specs: $(cat $specs)"

# Interrupted: kill the whole make (and its runs) once some lines are done; make again finishes
# the rest without rerunning the finished ones.
cat > c.yaml <<'Y'
name: c
base: base.yaml
set: {train.steps: 3000}
grid: {train.lr: [0.001, 0.002, 0.003]}
seeds: 2
Y
expect_exit 0 "$DIFFLAB" sweep c.yaml
setsid "${MAKE[@]}" SWEEP=c -j 2 >make.log 2>&1 &
mk=$!
for _ in $(seq 600); do [ "$(ls results/sweeps/c/done | wc -l)" -ge 2 ] && break; sleep 0.1; done
kill -KILL -- -"$mk" 2>/dev/null; wait "$mk" 2>/dev/null
done_before=$(ls results/sweeps/c/done | sort)
n_done=$(echo "$done_before" | grep -c .)
[ "$n_done" -ge 2 ] && [ "$n_done" -lt 6 ] && pass || fail "the kill came at the wrong time ($n_done lines done)"
stamps() { for l in $done_before; do
  id=$(sed -n "$((l + 1))p" results/sweeps/c/manifest.jsonl | sed 's/.*"run_id":"\([^"]*\)".*/\1/')
  h5dump -a /finished "results/runs/$id/run.h5" 2>/dev/null | grep -o '"[0-9T:.-]*Z*"'; done; }
before_stamps=$(stamps)
expect_exit 0 "$DIFFLAB" sweep status c && expect_out 'sweep c: 6 runs:'
expect_exit 0 "${MAKE[@]}" SWEEP=c -j 2
expect_exit 0 "$DIFFLAB" sweep status c && expect_out '6 runs: 0 queued, 0 running, 6 finished'
[ "$(stamps)" = "$before_stamps" ] && pass || fail "finished lines ran again"

# A 3-axis sweep with 3 seeds through make -j 2; an interrupted sweep was tested above.
expect_exit 0 "$DIFFLAB" sweep "$SRC/tests/cli/data/sweep3.yaml" && expect_out 'three_axes: 24 runs'
expect_exit 0 "${MAKE[@]}" SWEEP=three_axes -j 2
expect_exit 0 "$DIFFLAB" sweep status three_axes && expect_out '24 runs: 0 queued, 0 running, 24 finished'
expect_exit 0 "$DIFFLAB" query "SELECT count(DISTINCT r.group_hash) FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id
  AND s.sweep = 'three_axes'" --csv && expect_out '^8$'

# Its ablation tables: mean ± std over the 3 seeds per cell, as Markdown and LaTeX (booktabs).
expect_exit 0 "$DIFFLAB" table --sweep three_axes --rows diffusion.schedule.type,train.lr --cols sampler.steps --metric swd
expect_out '^\| *diffusion.schedule.type *\| *train.lr *\|' && expect_out '^\| *cosine *\| *0.003 *\| *[0-9.]+ ± [0-9.]+ \(n=3\)'
expect_exit 0 "$DIFFLAB" table --sweep three_axes --rows diffusion.schedule.type --cols train.lr --metric mmd2 --format latex
expect_out '\\toprule' && expect_out '\\bottomrule' && expect_out 'ddpm.*linear.*\$\\pm\$'

# Distillation students whose teacher is named by spec + seed: the teacher runs first (a make
# prerequisite), once, and each student records it.
cat > teacher.yaml <<'Y'
name: teach
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: edm}, param: {type: edm, sigma_data: 0.5}, loss: {type: mse, target: x0, weighting: edm}}
sampler: {type: heun, steps: 4}
train: {steps: 60, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y
sed -e 's/^name: teach/name: student/' -e 's/loss: {type: mse, target: x0, weighting: edm}/loss: {type: cd, n: 6}/' \
    -e 's/param: {type: edm, sigma_data: 0.5}/param: consistency/' -e 's/sampler: {type: heun, steps: 4}/sampler: {type: cm}/' \
    teacher.yaml > student.yaml
printf 'distill: {teacher: teacher.yaml, teacher_seed: 0}\n' >> student.yaml
printf 'name: cds\nbase: student.yaml\ngrid: {diffusion.loss.n: [4, 6]}\n' > cds.yaml
expect_exit 0 "$DIFFLAB" sweep cds.yaml && expect_out 'sweep cds: 2 runs'
grep -q '^$(SWEEP_DIR)/teachers/teach-[0-9a-f]*-s0:' results/sweeps/cds/sweep.mk && pass || fail "no teacher rule in sweep.mk"
expect_exit 0 "${MAKE[@]}" SWEEP=cds -j 2
expect_exit 0 "$DIFFLAB" query "SELECT count(*), count(DISTINCT r.teacher) FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id
  AND s.sweep = 'cds' WHERE r.status = 'finished' AND r.teacher LIKE 'teach-%-s0'" --csv && expect_out '^2,1$'

# The index rebuilt from the files keeps the sweeps' membership (from their manifests).
before=$("$DIFFLAB" query "SELECT sweep, run_id FROM sweep_runs ORDER BY sweep, run_id" --csv)
rm -f results/index.sqlite results/index.sqlite-wal results/index.sqlite-shm
expect_exit 0 "$DIFFLAB" reindex
[ "$("$DIFFLAB" query "SELECT sweep, run_id FROM sweep_runs ORDER BY sweep, run_id" --csv)" = "$before" ] && pass \
  || fail "sweep membership lost by reindex"
finish
