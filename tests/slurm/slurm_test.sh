#!/usr/bin/env bash
# slurm_test.sh — a real single-node Slurm, started and stopped by this test, running the
# moerun batch scripts of jobs/slurm/.
#
# Usage: slurm_test.sh CASE    (srun | mpirun | array | timelimit); array also runs a
# jobs/moerun-sweep --slurm job array.
# Env: SRC (the source tree), MOERUN, PYTHON, CHECK_TELEMETRY.
# Starts munged (own key, socket, state in a temp dir), slurmctld and slurmd (generated
# slurm.conf: SlurmUser=root, proctrack/linuxproc, task/none, ports on 127.0.0.1 chosen per
# run), each recorded by PID and stopped by that PID in the EXIT trap, every wait bounded.
# Then sbatch --wait of the case's script and checks of the telemetry file the job wrote:
# schema and counts (check_telemetry.py), the Slurm attributes, the job's exit code.
set -uo pipefail
case=$1
[ "$(id -u)" -eq 0 ] || { echo "slurm_test: needs root (SlurmUser=root on this test node)"; exit 1; }
for b in munged slurmctld slurmd sbatch sinfo; do
    command -v "$b" >/dev/null || { echo "slurm_test: $b missing (jobs/install-deps.sh --test)"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-slurm.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
    local p i
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 1 50); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "slurm_test[$case]: FAIL: $*"
    for f in "$work"/log/*.log "$work"/submit/*.out; do
        [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }
    done
    exit 1
}

# ---- munge -----------------------------------------------------------------------------
mkdir -p "$work/munge" "$work/log" "$work/spool" "$work/state" "$work/submit"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
sock="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$sock" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed" || fail "munged did not start"
for i in $(seq 1 50); do [ -s "$work/munge/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/munge/munged.pid")")

# ---- slurm.conf --------------------------------------------------------------------------
base=$((20000 + RANDOM % 20000))
host=$(hostname -s)
cpus=4   # more tasks than the machine's cores, as every MPI test here (config_overrides)
cat >"$work/slurm.conf" <<EOF
ClusterName=moetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SrunPortRange=$((base + 2))-$((base + 40))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=10
MinJobAge=300
InactiveLimit=0
NodeName=moenode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=moepart Nodes=moenode Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=("$!")
slurmd -D -N moenode -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=("$!")
up=0
for i in $(seq 1 150); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -q '^idle'; then up=1; break; fi
    sleep 0.2
done
[ "$up" -eq 1 ] || fail "slurmd did not become idle in 30 s"
echo "slurm_test[$case]: Slurm up (ports $base..$((base + 40)))"

# ---- the job -----------------------------------------------------------------------------
out="$work/submit/moerun-out"
small="--tokens 64 --d-model 32 --d-ffn 48 --experts 8 --top-k 2 --layers 2 --steps 20 --flush-interval 5 --quiet"
env_common=(MOEJOB_HOME="$SRC" MOEJOB_BIN="$MOERUN" MOEJOB_OUT="$out"
            OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
            OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1)
submit() { # submit LAUNCHER SBATCH_ARGS...: sbatch --wait, bounded; job id in $job
    local launcher=$1; shift
    job=$(cd "$work/submit" && env "${env_common[@]}" MOEJOB_LAUNCHER="$launcher" \
          MOEJOB_ARGS="${args:-$small}" timeout 300 sbatch --parsable --wait --ntasks=4 \
          "$@" 2>"$work/submit/sbatch.err")
    jrc=$?
    job=${job%%;*}
    echo "slurm_test[$case]: job $job ($launcher) exit $jrc"
}
check_file() { # check_file FILE JOBID [ARRAYTASK]
    local f=$1
    [ -f "$f" ] || fail "no telemetry file $f (job output: $(cat "$work"/submit/*.out 2>/dev/null | tail -5))"
    "$PYTHON" "$CHECK_TELEMETRY" "$f" --summary "${f%.h5}.json" || fail "check_telemetry failed on $f"
    "$PYTHON" - "$f" "$2" "${3:-}" <<'EOF' || fail "Slurm attributes of $f are wrong"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
want_job, want_task = sys.argv[2], sys.argv[3]
ok = a["slurm_job_id"] != "" and a["slurm_job_nodelist"] == "moenode" and \
     a["slurm_job_partition"] == "moepart" and int(a["nranks"]) == 4
if want_task:
    ok = ok and a["slurm_array_job_id"] == want_job and a["slurm_array_task_id"] == want_task
else:
    ok = ok and a["slurm_job_id"] == want_job
print(f"slurm_test: {sys.argv[1].split('/')[-1]}: job {a['slurm_job_id']} array "
      f"{a['slurm_array_job_id']!r}/{a['slurm_array_task_id']!r} nodes {a['slurm_job_nodelist']} "
      f"partition {a['slurm_job_partition']} ranks {a['nranks']} status {a['status']}")
sys.exit(0 if ok else 1)
EOF
}

# jobs/moerun-sweep --slurm: a 2-point job array, each task runs its point with srun; then
# --collect writes the table; every point's telemetry checked against its summary (run in
# the array case, on the same Slurm).
sweep_array() {
    # jobs/moerun-sweep --slurm: a 2-point job array of 2-rank tasks (both fit the 4-CPU node at
    # once), each task runs its point with srun;
    # then --collect writes the table; every point's telemetry checked against its summary
    sw="$work/submit/sweep"
    # shellcheck disable=SC2086  # $small: moerun arguments, split on purpose
    "$PYTHON" "$SRC/jobs/moerun-sweep" "$sw" exchange=flat,hier --np 2 --slurm \
        --moerun "$MOERUN" -- ${small/--steps 20/--steps 4} >"$work/submit/sweep.out" 2>&1 \
        || fail "moerun-sweep --slurm: $(cat "$work/submit/sweep.out")"
    job=$(cd "$work/submit" && env "${env_common[@]}" timeout 300 sbatch --parsable --wait \
          "$sw/sweep.sbatch" 2>"$work/submit/sbatch.err")
    jrc=$?
    job=${job%%;*}
    echo "slurm_test[$case]: job $job (moerun-sweep array) exit $jrc"
    [ "$jrc" -eq 0 ] || { cat "$sw"/slurm-*.out "$sw"/*/moerun.log 2>/dev/null | tail -20;
                          fail "sbatch --wait exit $jrc: $(cat "$work/submit/sbatch.err")"; }
    "$PYTHON" "$SRC/jobs/moerun-sweep" --collect "$sw" || fail "moerun-sweep --collect: not every point finished"
    for ex in flat hier; do
        "$PYTHON" "$CHECK_TELEMETRY" "$sw/exchange-$ex/run.h5" --summary "$sw/exchange-$ex/summary.json" \
            || fail "check_telemetry failed on point exchange-$ex"
    done
    "$PYTHON" - "$sw" "$job" <<'EOF' || fail "sweep table or Slurm attributes do not match"
import csv, json, sys
import h5py
rows = list(csv.DictReader(open(sys.argv[1] + "/sweep.csv")))
assert [r["exchange"] for r in rows] == ["flat", "hier"] and all(r["status"] == "complete" for r in rows), rows
for i, r in enumerate(rows):
    s = json.load(open(f"{sys.argv[1]}/{r['point']}/summary.json"))
    assert int(r["routed"]) == s["routed"] and int(r["ranks"]) == 2 and r["exchange"] == s["exchange"], (r, s)
    a = {k: (v.decode() if isinstance(v, bytes) else v)
         for k, v in h5py.File(f"{sys.argv[1]}/{r['point']}/run.h5", "r").attrs.items()}
    assert a["slurm_array_job_id"] == sys.argv[2] and a["slurm_array_task_id"] == str(i), a
print("slurm_test: sweep table ok:", [(r["exchange"], r["routed"]) for r in rows])
EOF
}

case "$case" in
srun | mpirun)
    submit "$case" "$SRC/jobs/slurm/one-node.sbatch"
    [ "$jrc" -eq 0 ] || fail "sbatch --wait exit $jrc: $(cat "$work/submit/sbatch.err")"
    check_file "$out/moerun-$job.h5" "$job" ;;
array)
    args="$small" submit srun --array=0-1 "$SRC/jobs/slurm/sweep.sbatch"
    [ "$jrc" -eq 0 ] || fail "sbatch --wait exit $jrc: $(cat "$work/submit/sbatch.err")"
    for i in 0 1; do check_file "$out/moerun-${job}_$i.h5" "$job" "$i"; done
    grep -q '"exchange":[[:space:]]*"hier"' "$out/moerun-${job}_1.json" \
        || fail "array task 1 did not run line 2 of the sweep table (exchange hier)"
    sweep_array ;;
timelimit)
    # a run far longer than its 1-minute limit; Slurm sends SIGUSR1 to the batch shell
    # ~30 s before the limit, the job forwards it, the ranks stop and close the file
    args="${small/--steps 20/--steps 100000000} --flush-interval 200" \
        submit srun --time=1 --signal=B:USR1@30 "$SRC/jobs/slurm/one-node.sbatch"
    [ "$jrc" -eq 138 ] || fail "sbatch --wait exit $jrc, want 138 (the ranks' 128 + SIGUSR1)"
    f="$out/moerun-$job.h5"
    [ -f "$f" ] || fail "no telemetry file"
    "$PYTHON" "$CHECK_TELEMETRY" "$f" || fail "check_telemetry failed"
    "$PYTHON" - "$f" <<'EOF' || fail "the file is not closed as interrupted with all its steps"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
st = f.attrs["status"]; st = st.decode() if isinstance(st, bytes) else st
n = f["steps/step"].shape[0]
print(f"slurm_test: status {st}, {n} steps in the file, steps_completed {int(f.attrs['steps_completed'])}")
sys.exit(0 if st == "interrupted" and n == int(f.attrs["steps_completed"]) and n > 0 else 1)
EOF
    grep -q "run cut short by signal 10" "$work"/submit/moerun-*.out || fail "no cut-short line in the job output" ;;
*) echo "slurm_test: unknown case $case"; exit 2 ;;
esac
echo "slurm_test[$case]: ok"
