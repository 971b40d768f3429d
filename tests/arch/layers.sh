#!/usr/bin/env bash
# The map of framework/ (docs/design.md, "Layers and modules"), checked:
#   - layers include only layers below them: core < io < data < nn < diffusion < eval < train <
#     report < cli (so storage, io/, includes nothing of the analysis layer, report/);
#   - no include cycle between modules: a module is a header with the .c files of its name (foo.h,
#     foo.c, and foo_internal.h, private to foo*.c); a .c file without a header of its name (a
#     plug-in, a part of a split module) is a node of its own, and an edge is an #include of
#     another module's header;
#   - eval/ computes and returns: it opens no file and records nothing (the caller records);
#   - functions are declared in headers: no `extern` prototype in a .c file;
#   - no file in framework/ over 700 lines.
# Usage: layers.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: layers.sh SOURCE_DIR}
cd "$src/framework"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

layers=(core io data nn diffusion eval train report cli)
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }

files=$(find . -name '*.[ch]' | sed 's|^\./||' | sort)
[ -n "$files" ] || { echo "FAIL: no sources under $src/framework"; exit 1; }

# module of a file: foo_internal.h -> foo (when foo.h exists); foo.c -> foo; foo.h -> foo
module_of() {
  local f=$1 stem=${1%.*}
  case $stem in *_internal) [ -f "${stem%_internal}.h" ] && { echo "${stem%_internal}"; return; } ;; esac
  echo "$stem"
}

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
n_edges=0
for f in $files; do
  m=$(module_of "$f")
  lf=${f%%/*}
  [ "$(rank "$lf")" -ge 0 ] || bad "$f: framework/$lf is not a known layer (${layers[*]})"
  while IFS= read -r inc; do
    [ -f "$inc" ] || continue   # a system or library header
    t=$(module_of "$inc")
    [ "$t" = "$m" ] && continue
    echo "$m $t" >> "$edges"
    n_edges=$((n_edges + 1))
    li=${inc%%/*}
    if [ "$(rank "$li")" -gt "$(rank "$lf")" ]; then
      bad "$f includes $inc: layer $lf may include only layers below it (${layers[*]})"
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
[ "$n_edges" -gt 50 ] || bad "only $n_edges include edges found: the include parser is broken"

# tsort reports a loop on stderr when the include graph has a cycle.
if ! loops=$(sort -u "$edges" | tsort 2>&1 >/dev/null); then :; fi
if [ -n "$loops" ]; then
  bad "include cycle between modules:"
  echo "$loops" | sed 's/^/    /'
fi

# eval/ opens no files: no stdio, HDF5, SQLite, PNG or run-record calls.
if hits=$(grep -nE '\b(fopen|open|H5Fopen|H5Fcreate|sqlite3_open[a-z_0-9]*|dm_runlog_[a-z_]+|dm_runrec_[a-z_]+|dm_png_[a-z_]+|dm_index_[a-z_]+)[[:space:]]*\(' eval/*.c eval/*.h); then
  bad "eval/ opens or records files (the caller records):"
  echo "$hits" | sed 's/^/    /'
fi

if hits=$(grep -nE '^[[:space:]]*extern[[:space:]].*\(' $(echo "$files" | grep '\.c$')); then
  bad "function prototypes declared in .c files (declare them in a header):"
  echo "$hits" | sed 's/^/    /'
fi

for f in $files; do
  n=$(wc -l < "$f")
  [ "$n" -le 700 ] || bad "framework/$f has $n lines (at most 700: split it by job)"
done

n_mod=$(for f in $files; do module_of "$f"; done | sort -u | wc -l)
if [ "$fail" -ne 0 ]; then
  echo "layers: the map of framework/ is broken (docs/design.md)"
  exit 1
fi
echo "layers: $(echo "$files" | wc -l) files, $n_mod modules, $(sort -u "$edges" | wc -l) include edges: no cycle, layers downward only"
