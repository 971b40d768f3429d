#!/usr/bin/env bash
# study.sh DIFFLAB SRC [STUDY]: the studies of experiments/ (the five of the paper ablations, and
# any other folder whose sweep has a quick: section; experiments/example is a sweep example, not a
# study). Without STUDY (ctest cli_studies): each of them has a sweep with a quick: section (or a
# quick.yaml) and a committed README.md and RESULTS.md. With STUDY (ctest cli_study_<STUDY>, one
# per folder of experiments/, so that they run beside other tests): that study, checked as above,
# runs end to end in its quick variant (few steps, one seed) through the one command a study has,
# `make -f Makefile.runs study STUDY=NAME`, and writes a RESULTS.md whose every table has at least
# one cell with a number, and its HTML report with the same tables (one <table class="ablation">
# per table*.yaml).
. "$(dirname "$0")/../cli/lib.sh"
only=${3:-}
cd "$SRC"
studies="ddpm_table2 sde_samplers edm_heun consistency denoising_is_not_unique"
for dir in experiments/*/; do
  s=$(basename "$dir")
  [ "$s" = example ] && continue   # a sweep example (its quick: is the report tests' fixture)
  case " $studies " in *" $s "*) ;; *) { grep -qs '^quick:' "$dir/sweep.yaml" || [ -f "$dir/quick.yaml" ]; } &&
    studies="$studies $s" ;; esac
done
if [ -n "$only" ]; then
  case " $studies " in *" $only "*) studies=$only ;; *) fail "'$only' is not a study of experiments/"; studies= ;; esac
fi
for study in $studies; do
  dir=experiments/$study
  [ -f "$dir/sweep.yaml" ] && pass || { fail "$study: no $dir/sweep.yaml"; continue; }
  { grep -q '^quick:' "$dir/sweep.yaml" || [ -f "$dir/quick.yaml" ]; } && pass ||
    { fail "$study: its sweep has no quick: section and there is no quick.yaml"; continue; }
  for f in README.md RESULTS.md; do
    [ -s "$dir/$f" ] && pass || fail "$study: no committed $f"
  done
  [ -n "$only" ] || continue
  if expect_exit 0 make --no-print-directory -f Makefile.runs study STUDY="$study" QUICK=1 RESULTS="$TMP/results" \
      DIFFLAB="$DIFFLAB" -j 2; then
    out=$(sed -n "s/^study $study: \(.*RESULTS.md\)$/\1/p" "$TMP/out" | tail -n 1)
    if [ -s "$out" ]; then
      tables=$(grep -c '^## ' "$out")
      filled=$(awk '/^## /{ if (h) n += c > 0; h = 1; c = 0 } /^\| .*[0-9][0-9.e+-]* \(n=[0-9]+\)/{ c++ } END { if (h) n += c > 0; print n + 0 }' "$out")
      [ "$tables" -gt 0 ] && [ "$tables" = "$filled" ] && pass || fail "$study: $filled of $tables tables have numbers ($out)"
    else
      fail "$study: no quick RESULTS.md"
    fi
    page=$(sed -n "s/^study $study: report //p" "$TMP/out" | tail -n 1)
    if [ -s "$page" ]; then
      n=$(grep -c '<table class="ablation"' "$page")
      want=$(ls "$dir"/table*.yaml 2>/dev/null | wc -l)
      [ "$n" = "$want" ] && [ "$n" -gt 0 ] && pass || fail "$study: its report has $n tables, the study $want ($page)"
    else
      fail "$study: no report page ('$page')"
    fi
  fi
done
finish
