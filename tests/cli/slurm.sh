#!/usr/bin/env bash
# Slurm: `difflab sweep NAME --launcher slurm` against a real single-node Slurm that this test
# starts (Debian's munged, slurmctld and slurmd, every file of theirs under the test's temp
# folder): a 4-line sweep runs as one array job; the compute side writes only run folders (the
# index has no runs rows until `difflab sweep status` brings it up to date from the run files);
# the rows carry the array job id and each line's task id; launching again submits nothing, and
# after one run is removed submits only its line. The daemons are stopped on exit, even on
# failure. Without the packages, or when not root, the Slurm part is skipped with a SKIP line,
# unless CI=true or DIFFLAB_REQUIRE_SLURM=1 (scripts/test.sh, hence CI), where either is a failure.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
export PATH="$PATH:/usr/sbin:/sbin"
cat > base.yaml <<'Y'
name: sl
data: {type: eight_gaussians}
model: {type: mlp, width: 32, depth: 2, nfreq: 8}
diffusion: {schedule: {type: ddpm_linear, T: 100}}
sampler: {type: ddpm, steps: 10}
train: {steps: 20, batch: 64, n_data: 500}
eval: {n_samples: 100, n_ref: 100, swd_projections: 16, mmd_max: 100}
run: {progress: none}
Y
cat > sl.yaml <<'Y'
name: sl
base: base.yaml
grid: {train.lr: [0.001, 0.002]}
seeds: 2
Y
run_id() { sed -n "$(($2 + 1))p" "results/sweeps/$1/manifest.jsonl" | sed 's/.*"run_id":"\([^"]*\)".*/\1/'; }

# ---- no Slurm needed: bad options refused (exit 2), an unknown sweep or a missing sbatch exit 1 ----
expect_exit 0 "$DIFFLAB" sweep sl.yaml && expect_out 'sweep sl: 4 runs'
if expect_exit 2 "$DIFFLAB" sweep sl --launcher pbs; then expect_out "unknown launcher 'pbs'; valid: slurm"; fi
if expect_exit 2 "$DIFFLAB" sweep sl --cpus 2; then expect_out 'need --launcher slurm'; fi
if expect_exit 2 "$DIFFLAB" sweep sl --launcher slurm --cpus two; then expect_out "--cpus 'two': not an integer"; fi
if expect_exit 2 "$DIFFLAB" sweep sl --launcher slurm --cpus 0; then expect_out 'cpus per task must be 1'; fi
if expect_exit 2 "$DIFFLAB" sweep sl --launcher slurm --partition 'a b'; then expect_out "--partition 'a b'"; fi
if expect_exit 1 "$DIFFLAB" sweep nosuch --launcher slurm; then expect_out "no sweep 'nosuch'"; fi
mkdir -p nobin
if PATH="$TMP/nobin" expect_exit 1 "$DIFFLAB" sweep sl --launcher slurm; then
  expect_out 'sbatch not found on PATH.*slurm-client'
fi
ls results/sweeps/sl/slurm-*.sbatch >/dev/null 2>&1 && pass || fail "no script kept after a failed submission"
rm -f results/sweeps/sl/slurm-*.sbatch

# ---- a real Slurm ----
missing=()
for c in munged slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
  command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_or_skip DIFFLAB_REQUIRE_SLURM "the Slurm part: missing ${missing[*]} (Debian's munge slurmctld slurmd" \
    "slurm-client: scripts/install-deps.sh --slurm)"
fi
if [ "$(id -u)" -ne 0 ]; then   # CI runs as root
  need_or_skip DIFFLAB_REQUIRE_SLURM "the Slurm part: not root (the test's slurmd and slurmctld run as root, as SlurmUser)"
fi

S=$TMP/slurm
H=$(hostname -s)
PIDS=()
JOBS=()
stop_daemons() {
  [ ${#JOBS[@]} -gt 0 ] && scancel "${JOBS[@]}" 2>/dev/null && sleep 1
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 50); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[i]}" 2>/dev/null
    wait "${PIDS[i]}" 2>/dev/null
  done
}
trap 'stop_daemons; rm -rf "$TMP"' EXIT
dump_logs() { for f in "$S"/log/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; }

# munged checks its paths: the socket's folders must be searchable by all, the key private.
chmod 755 "$TMP"
mkdir -p "$S"/{munge,sock,state,spool,log}
chmod 755 "$S" "$S/sock"
chmod 700 "$S/munge"
head -c 1024 /dev/urandom > "$S/munge/munge.key"
chmod 400 "$S/munge/munge.key"
munged -F --socket="$S/sock/munge.sock" --key-file="$S/munge/munge.key" --log-file="$S/log/munged.log" \
  --pid-file="$S/munge/munged.pid" --seed-file="$S/munge/munged.seed" >>"$S/log/munged.log" 2>&1 &
PIDS+=($!)

# Two free TCP ports (nothing answers on them).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
P1=0
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 20000))
  if port_free "$p" && port_free $((p + 1)); then P1=$p; break; fi
done
cat > "$S/slurm.conf" <<EOF
ClusterName=difflabtest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$((P1 + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/sock/munge.sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/log/slurmctld.pid
SlurmdPidFile=$S/log/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=300
NodeName=$H NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$S/slurm.conf
for _ in $(seq 50); do [ -S "$S/sock/munge.sock" ] && break; sleep 0.1; done
slurmctld -D -i >>"$S/log/slurmctld.log" 2>&1 &
PIDS+=($!)
slurmd -D -N "$H" >>"$S/log/slurmd.log" 2>&1 &
PIDS+=($!)
t0=$SECONDS
state=""
for _ in $(seq 150); do
  state=$(sinfo -h -N -o %t 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then fail "the Slurm node is not idle after 30 s (sinfo: '$state')"; dump_logs; finish; exit; fi
pass
echo "slurm up in $((SECONDS - t0)) s"

# wait_job ID N: until squeue no longer lists it (120 s at most); then every task COMPLETED.
wait_job() {
  local i
  for i in $(seq 600); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && break; sleep 0.2; done
  if [ -n "$(squeue -h -j "$1" 2>/dev/null)" ]; then fail "job $1 still queued after 120 s"; squeue >&2; dump_logs; return 1; fi
  local states
  states=$(scontrol -o show job "$1" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ')
  if [ "$states" = " $2 JobState=COMPLETED" ]; then pass; else
    fail "job $1: want $2 tasks COMPLETED, got:$states"; cat results/sweeps/sl/slurm/*.out >&2; dump_logs; return 1
  fi
}

# A partition Slurm does not have: sbatch's refusal is reported, exit 1.
if expect_exit 1 "$DIFFLAB" sweep sl --launcher slurm --partition nosuch; then
  expect_out 'sbatch refused the job \(exit 1.*the script is at .*slurm-'
fi
rm -f results/sweeps/sl/slurm-*.sbatch

# Launch the 4 lines, two at a time, one CPU each.
t1=$SECONDS
expect_exit 0 "$DIFFLAB" sweep sl.yaml --launcher slurm --partition debug --time 5 --cpus 1 --max-parallel 2
expect_out 'sweep sl: 4 of 4 lines to run \(0-3\)'
expect_out 'submitted Slurm job [0-9]+: array 0-3%2, 1 cpu per task'
JOB=$(grep -o 'submitted Slurm job [0-9]*' "$TMP/out" | grep -o '[0-9]*$')
JOBS+=("$JOB")
script=$(ls -t results/sweeps/sl/slurm-*.sbatch | head -1)
for want in '^#SBATCH --array=0-3%2$' '^#SBATCH --cpus-per-task=1$' '^#SBATCH --partition=debug$' \
            '^#SBATCH --time=5$' '^#SBATCH --job-name=difflab-sl$' '^#SBATCH --output=".*/results/sweeps/sl/slurm/%A_%a.out"$' \
            '^export DIFFLAB_NO_INDEX=1$' "sweep run 'sl' \"\\\$SLURM_ARRAY_TASK_ID\" run.threads=1"; do
  grep -Eq -- "$want" "$script" && pass || { fail "script lacks /$want/"; cat "$script" >&2; }
done
wait_job "$JOB" 4
for i in 0 1 2 3; do [ -s "results/sweeps/sl/slurm/${JOB}_$i.out" ] || fail "no log ${JOB}_$i.out"; done; pass
grep -q 'finished in' "results/sweeps/sl/slurm/${JOB}_0.out" && pass || fail "log ${JOB}_0.out lacks the run's summary"
echo "4-task array done in $((SECONDS - t1)) s"

# The nodes wrote run folders only: no runs rows yet. sweep status brings the index up to date.
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM runs" --csv && expect_out '^0$'
expect_exit 0 "$DIFFLAB" sweep status sl
expect_out '4 runs: 0 queued, 0 running, 4 finished, 0 failed'
expect_out 'index: 4 runs brought up to date'
for i in 0 1 2 3; do
  id=$(run_id sl "$i")
  expect_exit 0 "$DIFFLAB" query "SELECT status, slurm_array_job_id, slurm_array_task_id, slurm_job_id IS NOT NULL,
    (SELECT count(*) FROM params p WHERE p.run_id = r.run_id AND p.key = 'train.lr') FROM runs r
    WHERE run_id = '$id'" --csv && expect_out "^finished,$JOB,$i,1,1\$"
  expect_exit 0 h5dump -a /slurm_array_task_id "results/runs/$id/run.h5" && expect_out "H5T_STD_I64LE" && expect_out "\\(0\\): $i$"
done
expect_exit 0 "$DIFFLAB" query "SELECT count(*) FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id
  WHERE s.sweep = 'sl' AND r.status = 'finished'" --csv && expect_out '^4$'
# Up to date: a second status rewrites nothing.
expect_exit 0 "$DIFFLAB" sweep status sl && { grep -q 'brought up to date' "$TMP/out" && fail "status re-indexed unchanged runs" || pass; }

# Launching again submits nothing.
expect_exit 0 "$DIFFLAB" sweep sl --launcher slurm && expect_out 'sweep sl: no unfinished lines of 4; nothing submitted'
[ "$(ls results/sweeps/sl/slurm-*.sbatch | wc -l)" -eq 1 ] && pass || fail "a second script was written"

# One run lost: only its line is submitted.
rm -rf "results/runs/$(run_id sl 2)" results/sweeps/sl/done/2
expect_exit 0 "$DIFFLAB" sweep sl --launcher slurm
expect_out 'sweep sl: 1 of 4 lines to run \(2\)'
JOB2=$(grep -o 'submitted Slurm job [0-9]*' "$TMP/out" | grep -o '[0-9]*$')
JOBS+=("$JOB2")
wait_job "$JOB2" 1
expect_exit 0 "$DIFFLAB" sweep status sl && expect_out '4 finished' && expect_out 'index: 1 run brought up to date'
expect_exit 0 "$DIFFLAB" query "SELECT slurm_array_job_id, slurm_array_task_id FROM runs WHERE run_id = '$(run_id sl 2)'" \
  --csv && expect_out "^$JOB2,2\$"

# The 3-axis, 3-seed sweep that tests/cli/sweep.sh runs through make: here as one array job.
expect_exit 0 "$DIFFLAB" sweep "$SRC/tests/cli/data/sweep3.yaml" --launcher slurm --cpus 1
expect_out 'sweep three_axes: 24 of 24 lines to run \(0-23\)'
JOB3=$(grep -o 'submitted Slurm job [0-9]*' "$TMP/out" | grep -o '[0-9]*$')
JOBS+=("$JOB3")
wait_job "$JOB3" 24
expect_exit 0 "$DIFFLAB" sweep status three_axes && expect_out '24 runs: 0 queued, 0 running, 24 finished'
expect_exit 0 "$DIFFLAB" query "SELECT count(*), count(DISTINCT slurm_array_task_id) FROM runs WHERE slurm_array_job_id = $JOB3" \
  --csv && expect_out '^24,24$'
echo "slurm test: $SECONDS s"
finish
