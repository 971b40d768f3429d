#!/usr/bin/env bash
# Concurrency: many runs finishing at the same instant lose nothing and no "database is locked"
# reaches a user (under make -j 8, and 16 processes started at once on a fresh results folder,
# the first-open schema race); `difflab reindex` rebuilds an index that answers every query the
# same, skips a corrupt run.h5 with a message and a non-zero exit, and can run while runs write.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
export OMP_WAIT_POLICY=PASSIVE
N=16
mkdir specs
# Half analytic (nothing to train), half a tiny MLP (20 steps: metrics series, checkpoints).
spec() { # spec FILE SEED
  if [ $(($2 % 2)) -eq 0 ]; then
    printf 'name: conc\nseed: %d\ndata: {type: eight_gaussians}\nmodel: analytic\n' "$2"
    printf 'sampler: {type: ddim, steps: 10}\n'
  else
    printf 'name: conc_mlp\nseed: %d\ndata: {type: eight_gaussians}\n' "$2"
    printf 'model: {type: mlp, width: 32, depth: 2, nfreq: 8}\n'
    printf 'diffusion: {schedule: {type: ddpm_linear, T: 100}}\nsampler: {type: ddpm, steps: 10}\n'
    printf 'train: {steps: 20, batch: 64, n_data: 1000}\n'
    printf 'run: {log_every: 5, ckpt_every: 10}\n'
  fi > "$1"
  printf 'eval: {n_samples: 200, n_ref: 200, swd_projections: 16, mmd_max: 200}\n' >> "$1"
}
for s in $(seq 0 $((2 * N - 1))); do spec "specs/s$s.yaml" "$s"; done
specs() { for s in $(seq "$1" "$2"); do printf 'specs/s%d.yaml ' "$s"; done; }
finished() { "$DIFFLAB" --results "$1" query "SELECT count(*) FROM runs WHERE status = 'finished'" --csv | tail -n 1; }
no_locked() { # no_locked FILE... : nothing a user saw mentions a lock or a busy index
  if grep -il 'locked\|busy' "$@" >/dev/null; then fail "lock error shown: $(grep -ih 'locked\|busy' "$@" | head -n 3)"; else pass; fi
}

# 1. make -j 8: 16 runs, 16 finished rows.
t0=$(date +%s)
make -f "$SRC/Makefile.runs" SPECS="$(specs 0 $((N - 1)))" RESULTS=results DIFFLAB="$DIFFLAB" -j 8 >make.out 2>&1 \
  && pass || { fail "make -j 8 failed"; tail -n 20 make.out >&2; }
[ "$(finished results)" = "$N" ] && pass || fail "make -j 8: $(finished results) finished rows, want $N"
no_locked make.out

# 2. 16 processes started at once on a fresh results folder (3 rounds: the first-open race).
for round in 1 2 3; do
  rm -rf fresh
  for s in $(seq 0 $((N - 1))); do "$DIFFLAB" --results fresh run "specs/s$s.yaml" run.threads=1 >"p$s.out" 2>&1 & done
  wait
  [ "$(finished fresh)" = "$N" ] && pass || fail "round $round: $(finished fresh) finished rows, want $N"
  no_locked p*.out
done

# 3. reindex while runs start and finish: 16 more runs, a reindex started with every other one
#    (so reindexes also overlap each other).
for s in $(seq $N $((2 * N - 1))); do
  "$DIFFLAB" run "specs/s$s.yaml" run.threads=1 >"p$s.out" 2>&1 &
  if [ $((s % 2)) -eq 0 ]; then "$DIFFLAB" reindex >"ri$s.out" 2>&1 & fi
done
wait
no_locked p*.out ri*.out
# A run folder whose run.h5 is not written yet is skipped (exit 1); nothing else may be.
grep -h '^skipped' ri*.out | grep -v 'no run.h5 in it' >unexpected.out
[ -s unexpected.out ] && fail "reindex during runs skipped: $(cat unexpected.out)" || pass
[ "$(finished results)" = "$((2 * N))" ] && pass || fail "runs finishing during reindex: $(finished results) finished rows, want $((2 * N))"
expect_exit 0 "$DIFFLAB" query "PRAGMA integrity_check" --csv && expect_out '^ok$'

# 4. Delete the index, reindex: every query answers the same, byte for byte.
mlp=$("$DIFFLAB" query "SELECT run_id FROM runs WHERE name = 'conc_mlp' ORDER BY run_id LIMIT 1" --csv | tail -n 1)
expect_exit 0 "$DIFFLAB" sample "$mlp" --steps 5      # a second sampler's evals on one run
queries=(
  "SELECT * FROM runs ORDER BY run_id"
  "SELECT run_id, count(*) AS n FROM params GROUP BY run_id ORDER BY run_id"
  "SELECT * FROM params ORDER BY run_id, key"
  "SELECT * FROM evals ORDER BY run_id, metric, sampler, nfe, settings"
  "SELECT run_id, metric, sampler, nfe FROM evals ORDER BY run_id, metric, rowid"
  "SELECT * FROM metrics ORDER BY run_id, key, step"
  "SELECT * FROM last_metrics ORDER BY run_id, key"
  # Group means and stds are sums in row order, and the live index holds rows in the order runs
  # finished: two indexes of the same runs may differ in the last bit there (not a reindex bug).
  "SELECT group_hash, metric, sampler, nfe, settings, n, printf('%.12g', mean), printf('%.12g', std)
   FROM group_evals ORDER BY group_hash, metric, sampler, nfe, settings"
  "SELECT group_hash, key, n, printf('%.12g', mean), printf('%.12g', std) FROM group_metrics
   ORDER BY group_hash, key"
  "SELECT * FROM metric_info ORDER BY name"
  "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status"
)
snapshot() { # snapshot DIR
  mkdir -p "$1"
  for i in "${!queries[@]}"; do "$DIFFLAB" query "${queries[$i]}" --csv >"$1/q$i.csv" 2>&1; done
  "$DIFFLAB" runs >"$1/runs.txt" 2>&1
  "$DIFFLAB" show "$mlp" >"$1/show.txt" 2>&1
}
snapshot before
grep -q "^finished,$((2 * N))$" before/q10.csv && pass || fail "snapshot: $(cat before/q10.csv)"
compare() { # compare DIR: the snapshot equals the one taken before
  local d
  for f in before/*; do
    if cmp -s "$f" "$1/$(basename "$f")"; then pass; else
      fail "$(basename "$f") differs after reindex ($1)"; diff "$f" "$1/$(basename "$f")" | head -n 6 >&2
    fi
  done
}
rm -f results/index.sqlite results/index.sqlite-wal results/index.sqlite-shm
expect_exit 0 "$DIFFLAB" reindex && expect_out "^reindexed .*results/index.sqlite: $((2 * N)) runs indexed, 0 skipped$"
snapshot after_delete
compare after_delete
# Over an existing index (the swap), and with a stale WAL file lying next to a deleted index.
expect_exit 0 "$DIFFLAB" reindex
snapshot after_replace
compare after_replace
rm -f results/index.sqlite
head -c 8192 /dev/urandom >results/index.sqlite-wal
expect_exit 0 "$DIFFLAB" reindex
snapshot after_stale
compare after_stale
ls -a results | grep -q 'tmp' && fail "reindex left a temporary file: $(ls -a results)" || pass

# 5. A corrupt run.h5 is skipped, named with the reason, exit 1; the others are indexed.
bad=$("$DIFFLAB" query "SELECT run_id FROM runs ORDER BY run_id LIMIT 1" --csv | tail -n 1)
truncate -s 3000 "results/runs/$bad/run.h5"
if expect_exit 1 "$DIFFLAB" reindex; then
  expect_out "^skipped .*results/runs/$bad: .*run\.h5: not a valid run file"
  expect_out "$((2 * N - 1)) runs indexed, 1 skipped"
  expect_out "1 run folder skipped"
fi
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM runs" --csv && expect_out "^$((2 * N - 1))$"
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM runs WHERE run_id = '$bad'" --csv && expect_out '^0$'
# No runs folder: nothing to do, nothing written.
if expect_exit 1 "$DIFFLAB" --results nowhere reindex; then expect_out 'no runs folder'; fi
[ ! -e nowhere ] && pass || fail "reindex of a missing results folder created it"
echo "concurrency test: $(( $(date +%s) - t0 )) s"
finish
