#!/usr/bin/env bash
# difflab report: the pages of a sweep, its runs and the index, read as files (the browser test,
# tests/browser/report.sh, renders them); refusals with nothing written; a damaged run file gets a
# page saying so; the same index gives the same bytes.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
use_report_fixture
sw=example_rho_steps_quick
ids=$("$DIFFLAB" query "SELECT run_id FROM sweep_runs WHERE sweep = '$sw' ORDER BY run_id" --csv | tail -n +2)
demo=$("$DIFFLAB" query "SELECT run_id FROM runs WHERE name = 'demo'" --csv | tail -n 1)
[ "$(echo "$ids" | wc -w)" -eq 10 ] && [ -n "$demo" ] && pass || fail "fixture: runs '$ids' demo '$demo'"

# Refusals: exit 2, the name in the message, no folder made.
if expect_exit 2 "$DIFFLAB" report --sweep nosuch --out bad; then expect_out "report --sweep: no sweep 'nosuch'"; fi
if expect_exit 2 "$DIFFLAB" report nosuchrun --out bad; then expect_out "report: no run 'nosuchrun' in the index"; fi
if expect_exit 2 "$DIFFLAB" report --steps 5; then expect_out "--steps is not an option of report"; fi
[ ! -e bad ] && pass || fail "a refused report wrote its folder"

# Everything (no RUN, no --sweep): default folder results/report.
expect_exit 0 "$DIFFLAB" report && expect_out "report written to .*results/report/index.html"
out=results/report
for id in $ids $demo; do
  [ -f "$out/runs/$id.html" ] && pass || fail "no page for run $id"
done
page=$out/sweeps/$sw.html
[ -f "$page" ] && pass || fail "no sweep page"

# The sweep page: a table per metric (five cells of two seeds each), a plot per metric against
# each axis (lines with error bars), a scatter per cell, the runs.
grep -q '<table class="ablation" data-metric="swd">' "$page" && pass || fail "sweep page: no swd table"
[ "$(grep -c '<td class="cell[ a-z]*" data-n="2"' "$page")" -ge 5 ] && pass || fail "sweep page: cells without n=2"
[ "$(grep -c '<svg [^>]*class="plot sweep-plot"' "$page")" -ge 2 ] && pass || fail "sweep page: no plots against the axis"
grep -q '>swd against sampler.steps</text>' "$page" && grep -q '>sampler.steps</text>' "$page" && pass ||
  fail "sweep page: the swd plot lacks its title or axis label"
[ "$(grep -c 'class="err"' "$page")" -ge 4 ] && pass || fail "sweep page: no error bars"
[ "$(grep -c '<figure class="cell"><svg [^>]*class="plot scatter"' "$page")" -eq 5 ] && pass || fail "sweep page: not one scatter per cell"
grep -q '>swd against diffusion.schedule.rho</text>' "$page" && pass || fail "sweep page: no plot against rho"
for id in $ids; do grep -q "href=\"../runs/$id.html\"" "$page" && pass || fail "sweep page: no link to $id"; done
grep -q '10 finished, 0 not run' "$page" && pass || fail "sweep page: counts"
# Evals that differ only in settings (one run sampled again with s_churn 0.5) are never pooled by a
# cell: settings.s_churn becomes a row key of the tables and a line of the plots.
grep -q 'their evals differ in settings.s_churn' "$page" && [ "$(grep -c '<th>settings.s_churn</th>' "$page")" -ge 2 ] &&
  grep -q 'settings.s_churn=0.5' "$page" && pass || fail "sweep page: evals of other settings are not kept apart"
# The page's cells are the table's: swd at rho 7 and 6 steps, from the index.
m=$("$DIFFLAB" table --sweep $sw --rows diffusion.schedule.rho,sampler.steps,settings.s_churn --metric swd --csv |
  awk -F, '$1 == 7 && $2 == 6 && $3 == 0 { print $4 }')
[ -n "$m" ] && grep -q "data-mean=\"$m\"" "$page" && pass || fail "sweep page: the table's mean '$m' is not on the page"

# A run page: training curves against step and wall time, evals against NFE, the scatter,
# provenance with the spec; the note escaped.
rp=$out/runs/$demo.html
[ "$(grep -c '<svg [^>]*class="plot training"' "$rp")" -eq 4 ] && pass || fail "run page: not 4 training plots (loss, grad_norm x step, wall)"
grep -q '>loss against step</text>' "$rp" && grep -q '>grad_norm against wall time</text>' "$rp" && pass || fail "run page: curve titles"
grep -q '<svg [^>]*class="plot evals"' "$rp" && grep -q '>swd against NFE</text>' "$rp" && pass || fail "run page: no eval plot"
grep -q '<svg [^>]*class="plot scatter"' "$rp" && pass || fail "run page: no scatter"
grep -q '<pre class="spec">' "$rp" && grep -q '<th>git_commit</th>' "$rp" && grep -q '<th>blas</th>' "$rp" && pass ||
  fail "run page: provenance"
grep -q 'a &lt;b&gt;bold&lt;/b&gt; note &amp; more' "$rp" && ! grep -q '<b>bold</b>' "$rp" && pass || fail "run page: the note is not escaped"
grep -q '<td>baseline=yes</td>' "$rp" && pass || fail "run page: the tag"
# The index: every run a row with its filter data; the sweep listed.
idx=$out/index.html
[ "$(grep -c '<tr data-id=' "$idx")" -eq 11 ] && pass || fail "index: not 11 rows"
grep -q "data-tags=\"baseline=yes\"" "$idx" && grep -q "href=\"sweeps/$sw.html\"" "$idx" && pass || fail "index: tags or sweep link"

# The same index again: the same bytes (no clock in the pages).
before=$(tree_state "$out")
expect_exit 0 "$DIFFLAB" report
[ "$before" = "$(tree_state "$out")" ] && pass || fail "a second report differs"

# One run page alone, elsewhere: that page and the index, no sweep page.
expect_exit 0 "$DIFFLAB" report "$demo" --out one
[ -f "one/runs/$demo.html" ] && [ -f one/index.html ] && [ ! -e one/sweeps ] && pass || fail "report RUN wrote $(find one -type f | tr '\n' ' ')"

# A damaged run file: its page says why; the report still succeeds.
victim=$(echo "$ids" | head -n 1)
printf 'not hdf5' > "results/runs/$victim/run.h5"
expect_exit 0 "$DIFFLAB" report --sweep $sw --out dmg
grep -q 'The run file cannot be read: .*run.h5' "dmg/runs/$victim.html" && pass || fail "damaged run: no message on its page"
# The index lists the sweep pages of its folder in name order (pages left by earlier reports too).
touch "$out/sweeps/zzz.html" "$out/sweeps/aaa.html"
expect_exit 0 "$DIFFLAB" report --sweep $sw
[ "$(grep -o 'href="sweeps/[a-z_]*.html"' "$out/index.html" | tr '\n' ' ')" = \
  "href=\"sweeps/aaa.html\" href=\"sweeps/$sw.html\" href=\"sweeps/zzz.html\" " ] && pass ||
  fail "index: sweeps not in name order: $(grep -o 'href="sweeps/[a-z_]*.html"' "$out/index.html" | tr '\n' ' ')"
# A picture a run folder holds is inlined only when it is a plot as difflab writes it: a script,
# an event handler or a link never reaches the page.
pic=$(ls "results/runs/$demo"/*.svg | head -n 1)
printf '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><SCRIPT>alert(2)</SCRIPT></svg>' > "$pic"
expect_exit 0 "$DIFFLAB" report "$demo" --out crafted_pic
! grep -q 'alert' "crafted_pic/runs/$demo.html" && grep -q '(unreadable picture)' "crafted_pic/runs/$demo.html" && pass ||
  fail "a crafted SVG was inlined"
# A crafted index: a run id and a sweep name that are paths name no page and no file.
cp -r results crafted
sqlite3 crafted/index.sqlite "INSERT INTO runs (run_id, name, status) VALUES ('../../escape', 'x', 'finished');
  INSERT INTO sweep_runs VALUES ('../../swescape', '../../escape')"
expect_exit 0 "$DIFFLAB" --results crafted report --out crafted_rep
[ -z "$(find "$TMP" -name '*escape*' -print)" ] && pass || fail "a crafted name was written: $(find "$TMP" -name '*escape*')"
grep -q 'data-id="../../escape"' crafted_rep/index.html && pass || fail "the crafted run is not listed (escaped) on the index"
if expect_exit 2 "$DIFFLAB" --results crafted report ../../escape --out crafted_rep2; then expect_out "not a run id"; fi
[ ! -e crafted_rep2 ] && pass || fail "a refused report wrote its folder"
finish
