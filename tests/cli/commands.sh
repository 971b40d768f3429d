#!/usr/bin/env bash
# The command line itself (issue 18, points 2 and 3): each command takes only its own options and
# refuses any other with one line and exit 2, writing nothing; `difflab COMMAND --help` prints that
# command's usage; --version. `difflab runs`: name and id-prefix filters, --status, --sweep,
# --where, --cols (spec keys, metrics of the run's own sampler, training series), --sort, and
# typed --json / --csv.
. "$(dirname "$0")/lib.sh"
cd "$TMP"

# --- options that belong to another command: refused, nothing written ---
refuse() { # refuse PATTERN CMD...: exit 2, one line matching PATTERN, no results folder
  if expect_exit 2 "$@"; then expect_out "$PAT"; fi
  [ "$(wc -l < "$TMP/out")" -eq 1 ] && pass || fail "$*: more than one line: $(cat "$TMP/out")"
  [ ! -e results ] && pass || fail "$*: a refused command wrote results/"
}
PAT='difflab run: --steps is not an option of run \(its options: --new, --set; `difflab run --help`\)'
refuse "$DIFFLAB" run "$SRC/configs/demo.yaml" --steps 10
PAT='difflab runs: --steps is not an option of runs'
refuse "$DIFFLAB" runs --steps 3
PAT='difflab query: --new is not an option of query'
refuse "$DIFFLAB" query "SELECT 1" --new
PAT='difflab table: --json is not an option of table'
refuse "$DIFFLAB" table --rows seed --metric swd --json
PAT='difflab sweep: --sampler is not an option of sweep'
refuse "$DIFFLAB" sweep x.yaml --sampler ddim
PAT="difflab: unknown option '--bogus'"
refuse "$DIFFLAB" run "$SRC/configs/demo.yaml" --bogus
PAT="difflab: option '--results' needs a value"
refuse "$DIFFLAB" runs --results
PAT="unknown command 'fly'; valid: run, sample"
refuse "$DIFFLAB" fly
PAT="query: unexpected argument 'extra'"
refuse "$DIFFLAB" query "SELECT 1" extra
PAT="show: unexpected argument 'b'"
refuse "$DIFFLAB" show a b

# --- help and version ---
expect_exit 0 "$DIFFLAB" run --help && expect_out '^usage: difflab run SPEC.yaml' && expect_out '^  --new ' \
  && expect_out '^  --results DIR'
grep -q -- '--steps' "$TMP/out" && fail "run --help lists --steps" || pass
expect_exit 0 "$DIFFLAB" sample --help && expect_out '^  --sampler NAME' && expect_out '^  --steps N'
expect_exit 0 "$DIFFLAB" runs --help && expect_out '^  --cols KEY\[,KEY\] +more columns' && expect_out '^  --sort '
expect_exit 0 "$DIFFLAB" table -h && expect_out '^  --cols KEY +the column key'
expect_exit 0 "$DIFFLAB" --help && expect_out '^  sample +sample a finished run' && expect_out '^  --version ' \
  && expect_out 'difflab COMMAND --help'
expect_exit 0 "$DIFFLAB" --version && expect_out '^difflab [0-9]+\.[0-9]+\.[0-9]+$'
[ ! -e results ] && pass || fail "help wrote results/"

# --- runs: three analytic runs (no training) and a sweep of two more ---
cat > a.yaml <<'Y'
name: alpha
data: {type: eight_gaussians}
model: analytic
sampler: {type: ddim, steps: 10}
eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200}
run: {progress: none}
Y
sed 's/^name: alpha/name: beta/' a.yaml > b.yaml
expect_exit 0 "$DIFFLAB" run a.yaml
expect_exit 0 "$DIFFLAB" run a.yaml seed=1
expect_exit 0 "$DIFFLAB" run b.yaml
printf 'name: sw\nbase: b.yaml\ngrid: {sampler.steps: [4, 6]}\n' > sw.yaml
expect_exit 0 "$DIFFLAB" sweep sw.yaml
expect_exit 0 "$DIFFLAB" sweep run sw 0 && expect_exit 0 "$DIFFLAB" sweep run sw 1
beta=$("$DIFFLAB" query "SELECT run_id FROM runs WHERE name = 'beta' AND run_id NOT IN (SELECT run_id FROM sweep_runs)" --csv | tail -n 1)
rows() { tail -n +2 "$TMP/out" | grep -c . ; } # data lines of a --csv listing

expect_exit 0 "$DIFFLAB" runs --csv && expect_out '^run_id,name,status,seed,sweep,created,wall_s,loss,sampler,nfe,swd,mmd2,fd$'
[ "$(rows)" = 5 ] && pass || fail "runs lists $(rows) runs, want 5"
expect_exit 0 "$DIFFLAB" runs alpha --csv
[ "$(rows)" = 2 ] && ! grep -q beta "$TMP/out" && pass || fail "runs alpha: $(cat "$TMP/out")"
expect_exit 0 "$DIFFLAB" runs alpha "${beta:0:12}" --csv
[ "$(rows)" = 3 ] && pass || fail "runs alpha ${beta:0:12}: $(rows) runs, want 3"
expect_exit 0 "$DIFFLAB" runs --status finished --where "r.seed = 1" --csv
[ "$(rows)" = 1 ] && expect_out '^alpha-[0-9a-f]{10}-s1,alpha,finished,1,' || fail "--where r.seed = 1: $(cat "$TMP/out")"
expect_exit 0 "$DIFFLAB" runs --status failed,dead --csv
[ "$(rows)" = 0 ] && pass || fail "--status failed,dead lists finished runs"
expect_exit 0 "$DIFFLAB" runs --sweep sw --csv
[ "$(rows)" = 2 ] && [ "$(tail -n +2 "$TMP/out" | cut -d, -f5 | sort -u)" = sw ] && pass || fail "--sweep sw: $(cat "$TMP/out")"
# --cols: a spec key, a metric of the run's own sampler, and the nfe it is at.
expect_exit 0 "$DIFFLAB" runs --sweep sw --cols sampler.steps,in_mode99 --sort -sampler.steps --csv
expect_out ',sampler.steps,in_mode99$'
[ "$(tail -n +2 "$TMP/out" | cut -d, -f10,14 | tr '\n' ' ')" = "6,6 4,4 " ] && pass \
  || fail "--cols sampler.steps sorted descending: $(cat "$TMP/out")"
own=$("$DIFFLAB" query "SELECT value FROM evals WHERE run_id = '$beta' AND metric = 'in_mode99'" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" runs "$beta" --cols in_mode99 --csv && expect_out ",$own\$"
# --sort by a metric, ascending and descending; NULLs last.
expect_exit 0 "$DIFFLAB" runs --sort swd --csv
tail -n +2 "$TMP/out" | cut -d, -f11 | sort -g -c && pass || fail "--sort swd is not ascending: $(cat "$TMP/out")"
expect_exit 0 "$DIFFLAB" runs --sort -swd --csv
tail -n +2 "$TMP/out" | cut -d, -f11 | sort -g -r -c && pass || fail "--sort -swd is not descending"
# --json: numbers are numbers.
expect_exit 0 "$DIFFLAB" runs "$beta" --json && expect_out '"seed": ?0[,}]' && expect_out '"nfe": ?10[,}]' \
  && expect_out '"swd": ?[0-9]'
# The table rounds to 4 significant digits.
expect_exit 0 "$DIFFLAB" runs "$beta" && expect_out "^$beta +beta +finished +0 "
# Bad filters: exit 2, named.
if expect_exit 2 "$DIFFLAB" runs --status done; then expect_out "unknown status 'done'; valid: running, dead"; fi
if expect_exit 2 "$DIFFLAB" runs --sweep nosuch; then expect_out "no sweep 'nosuch' in the index"; fi
if expect_exit 2 "$DIFFLAB" runs --cols nosuch; then expect_out "'nosuch' is not a spec key, an eval metric or a training series"; fi
if expect_exit 2 "$DIFFLAB" runs --sort nosuch; then expect_out "runs --sort: 'nosuch' is not a column"; fi
finish
