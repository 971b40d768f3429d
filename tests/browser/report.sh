#!/usr/bin/env bash
# The report in a real browser (headless Chromium, tests/browser/check_page.py): the index, the
# example sweep's page (its quick variant) and the demo run's page (short) load with no console
# error and no request outside the folder, every plot and table cell expected is in the DOM, the
# index's filters work, and each screenshot has ink.
. "$(dirname "$0")/../cli/lib.sh"
cd "$TMP"
command -v chromium >/dev/null ||
  need_or_skip DIFFLAB_REQUIRE_BROWSER "no chromium (scripts/install-deps.sh --browser installs it)"
command -v python3 >/dev/null || need_or_skip DIFFLAB_REQUIRE_BROWSER "no python3 for check_page.py"
use_report_fixture
expect_exit 0 "$DIFFLAB" report --out rep
demo=$("$DIFFLAB" query "SELECT run_id FROM runs WHERE name = 'demo'" --csv | tail -n 1)
check() { # check PAGE ARGS...: check_page.py, its output shown on failure
  local page=$1; shift
  if python3 "$SRC/tests/browser/check_page.py" "$@" "$page" >"$TMP/out" 2>&1; then pass; else
    fail "check_page.py $page:"; sed 's/^/    /' "$TMP/out" >&2
  fi
}
filter() { # the JavaScript that types $2 into filter $1 and reads the count
  echo "(function(){var e=document.getElementById('$1');e.value='$2';e.dispatchEvent(new Event('input'));return document.getElementById('f-count').textContent;})()"
}
check rep/index.html --expect '#runs tbody tr>=11' --expect 'a.run>=11' --expect 'a.sweep' \
  --text '#f-count=11 of 11 runs' --screenshot index.png \
  --js "$(filter f-tag baseline)=>1 of 11 runs" --js "$(filter f-tag baseline=no)=>0 of 11 runs" \
  --js "$(filter f-tag '')=>11 of 11 runs" --js "$(filter f-name demo)=>1 of 11 runs" \
  --js "$(filter f-name '')=>11 of 11 runs" --js "$(filter f-sweep example_rho_steps_quick)=>10 of 11 runs" \
  --js "$(filter f-status finished)=>10 of 11 runs"
check rep/sweeps/example_rho_steps_quick.html --expect 'table.ablation>=2' --expect 'table.ablation td.cell>=4' \
  --expect 'svg.plot.sweep-plot>=2' --expect 'svg.sweep-plot .series path.line' --expect 'svg.sweep-plot path.err>=4' \
  --expect 'svg.sweep-plot .axis.x .tick>=3' --expect 'svg.sweep-plot .legend .entry' \
  --expect 'figure.cell svg.scatter>=5' --expect 'svg.scatter .series path.dots>=10' --expect 'table.runs a.run>=10' \
  --text 'svg.sweep-plot text.title=swd against sampler.steps' --text 'svg.sweep-plot text.title=swd against diffusion.schedule.rho' \
  --text 'h1=sweep example_rho_steps_quick' --screenshot sweep.png
check "rep/runs/$demo.html" --expect 'svg.plot.training>=4' --expect 'svg.plot.evals>=2' --expect 'svg.plot.scatter' \
  --expect 'svg.training .axis.y .tick>=3' --expect 'table.evals td>=12' --expect 'table.provenance' --expect 'pre.spec' \
  --text 'svg.evals text.title=swd against NFE' --text 'ul.notes=a <b>bold</b> note & more' \
  --text 'table.summary td=baseline=yes' --screenshot run.png
finish
