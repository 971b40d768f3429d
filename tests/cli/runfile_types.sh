#!/usr/bin/env bash
# Types in run.h5 (issue 18, point 7), as h5dump shows them and h5py reads them: the root
# attributes that hold numbers are int64 (n_params, blas_threads, git_dirty) or float64 (wall_s),
# the others vlen UTF-8 strings, like every string of the file (/config, sample set settings,
# /eval's sampler and settings). Files written before (every root attribute a string; made here
# with dm_tamper --old-attrs) still read in every command that reads run files: reindex and
# show give the same typed runs row, reproduce says MATCH, sample and resume rewrite them with
# typed numbers, and a resumed old file ends bit-identical to a run that never stopped.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
TAMPER="$(dirname "$DIFFLAB")/tests/dm_tamper"
cat > s.yaml <<'Y'
name: ty
data: {type: eight_gaussians}
model: {type: mlp, width: 8, depth: 1, nfreq: 2}
diffusion: {schedule: {type: ddpm_linear, T: 50}}
sampler: {type: ddpm, steps: 5}
train: {steps: 40, batch: 16, n_data: 100}
eval: {n_samples: 50, n_ref: 50, swd_projections: 4, mmd_max: 50}
run: {progress: none, ckpt_every: 10, log_every: 5, threads: 1}
Y
expect_exit 0 "$DIFFLAB" run s.yaml || { finish; exit 1; }
h5=$(echo results/runs/ty-*-s0/run.h5)
id=$(basename "$(dirname "$h5")")

# type_of OBJ ATTR: the attribute's DATATYPE as h5dump prints it, on one line.
type_of() { h5dump -a "$1/$2" "$h5" | sed -n '/DATATYPE/,/DATASPACE/p' | grep -v DATASPACE | tr -s ' \n' ' '; }
VLEN_UTF8='H5T_STRING { STRSIZE H5T_VARIABLE; STRPAD H5T_STR_NULLTERM; CSET H5T_CSET_UTF8; CTYPE H5T_C_S1; }'
is_type() { # OBJ ATTR WANT
  local got; got=$(type_of "$1" "$2")
  case $got in *"$3"*) pass ;; *) fail "$1/$2 is $got (want $3)" ;; esac
}
check_typed() {
  is_type "" n_params H5T_STD_I64LE
  is_type "" blas_threads H5T_STD_I64LE
  is_type "" wall_s H5T_IEEE_F64LE
  # outside a git checkout git_dirty is the string "unknown"
  if h5dump -a /git_commit "$h5" | grep -q '"unknown"'; then is_type "" git_dirty "$VLEN_UTF8"
  else is_type "" git_dirty H5T_STD_I64LE; fi
  for a in run_id status created version host; do is_type "" "$a" "$VLEN_UTF8"; done
}
check_typed
h5dump -a /n_params "$h5" | grep -Eq '\(0\): [1-9][0-9]*$' && pass || fail "n_params is no positive integer"
for a in yaml config_hash; do is_type /config "$a" "$VLEN_UTF8"; done
is_type /data n_train H5T_STD_I64LE
is_type /data std H5T_IEEE_F64LE
is_type /samples/ddpm_5 nfe H5T_STD_I64LE
is_type /samples/ddpm_5 settings "$VLEN_UTF8"
h5dump -H -d /eval/swd "$h5" | tr -s ' \n' ' ' >"$TMP/out"
expect_out "$VLEN_UTF8 \"sampler\"; H5T_STD_I64LE \"nfe\"; $VLEN_UTF8 \"settings\"; H5T_STD_I64LE \"n_samples\"; H5T_IEEE_F64LE \"value\";"

# The runs row is typed, and wall_s there is the file's double (1: equal).
wall=$(h5dump -a /wall_s -m '%.17g' "$h5" | sed -n 's/^ *(0): //p')
np=$(h5dump -a /n_params "$h5" | sed -n 's/^ *(0): //p')
row() { "$DIFFLAB" query "SELECT typeof(n_params), typeof(wall_s), n_params, wall_s = $wall FROM runs WHERE run_id = '$id'" --csv | tail -n 1; }
want_row="integer,real,$np,1"
[ "$(row)" = "$want_row" ] && pass || fail "runs row $(row) (want $want_row)"

# The old form: every root attribute a string. Everything still reads it.
old_form() { "$TAMPER" "$1" --old-attrs || fail "dm_tamper --old-attrs $1"; }
old_form "$h5"
is_type "" n_params "$VLEN_UTF8"
is_type "" wall_s "$VLEN_UTF8"
expect_exit 0 "$DIFFLAB" reindex && expect_out '1 run indexed, 0 skipped'
[ "$(row)" = "$want_row" ] && pass || fail "runs row from the old file $(row) (want $want_row)"
expect_exit 0 "$DIFFLAB" show "$id" && expect_out "^$id .* $np "
expect_exit 0 "$DIFFLAB" reproduce "$id" && expect_out "^MATCH: run $id reproduces"
expect_exit 0 "$DIFFLAB" sample "$id" sampler.type=ddim sampler.steps=3
check_typed
[ "$(row)" = "$want_row" ] && pass || fail "runs row after sample $(row) (want $want_row)"

# resume of an old file: killed after its first checkpoint, made old, resumed; it ends with
# typed numbers and the bits of the run that never stopped.
sha() { "$DIFFLAB" --results "$1" query "SELECT status, params_sha256 FROM runs" --csv | tail -n 1; }
DIFFLAB_FAULT=ckpt:renamed "$DIFFLAB" --results k run s.yaml seed=3 >"$TMP/out" 2>&1
expect_out 'DIFFLAB_FAULT: SIGKILL at ckpt:renamed'
h5=$(echo k/runs/ty-*-s3/run.h5)
old_form "$h5"
is_type "" n_params "$VLEN_UTF8"
expect_exit 0 "$DIFFLAB" --results k resume "$(basename "$(dirname "$h5")")" && expect_out 'resuming at step 10'
check_typed
expect_exit 0 "$DIFFLAB" --results ref run s.yaml seed=3
[ "$(sha k)" = "$(sha ref)" ] && [ "$(sha ref)" != "" ] && pass || fail "resumed old file: $(sha k), never stopped: $(sha ref)"
finish
