#!/usr/bin/env bash
# slurm_hosts.sh — a real multi-node Slurm across emulated hosts (jobs/cluster/emulate.sh),
# running jobs/slurm/multi-node.sbatch with srun --mpi=pmix.
#
# Usage: slurm_hosts.sh CASE    (nodes | kill)
#   nodes: 4 hosts; multi-node.sbatch over 2 nodes x 2 tasks and over 4 nodes x 2 tasks:
#          exit 0, telemetry against its summary (check_telemetry.py), slurm_job_nodelist is
#          Slurm's node list, topology/hostname (rank -> host, from each rank's gethostname
#          in its own UTS namespace) equals Slurm's own rank -> host map (`srun -l hostname`
#          on the same geometry), topology/node agrees with it, nodes = Slurm's node count.
#   kill:  2 hosts x 2 tasks, two long runs, each hit once it has flushed: (1) the ranks on
#          h1 are killed (SIGKILL): srun --kill-on-bad-exit ends the job, FAILED, within a
#          bound; (2) host h1 dies (SIGKILL to its slurmd, slurmstepd and ranks: every
#          process of its namespace but the test bed's holder): slurmctld sets h1 DOWN after
#          SlurmdTimeout (5 s here) and ends the job, NODE_FAIL, not requeued, within a bound.
#          After each, the telemetry is readable up to its last flush.
# Env: SRC (source tree), MOERUN, PYTHON, CHECK_TELEMETRY.
#
# Layout: munged in the root namespace (its socket is a path in the shared filesystem, so
# the hosts reach it); slurmctld inside host h0 (10.251.0.10); one `slurmd -N hI` inside
# each host I, NodeAddr 10.251.0.(10+I), with per-node spool, pid and log (%n). All Slurm
# commands run inside h0 (`emulate.sh exec h0`). Every daemon is recorded: munged by PID,
# the Slurm daemons as emulate.sh commands, ended by `emulate.sh down` in the EXIT trap
# (which also deletes the namespaces); every wait is bounded.
set -uo pipefail
case=$1
[ "$(id -u)" -eq 0 ] || { echo "slurm_hosts: needs root (namespaces, SlurmUser=root)"; exit 1; }
for b in munged slurmctld slurmd sbatch sinfo srun ip; do
    command -v "$b" >/dev/null || { echo "slurm_hosts: $b missing (jobs/install-deps.sh --test)"; exit 1; }
done
E=$SRC/jobs/cluster/emulate.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-slurmh.XXXXXX")
chmod 755 "$work"
export MOE_TESTBED=$work/bed
munge_pid=""
cleanup() {
    "$E" down >/dev/null 2>&1 || echo "slurm_hosts: emulate.sh down failed"
    if [ -n "$munge_pid" ]; then
        kill -TERM "$munge_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$munge_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$munge_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "slurm_hosts[$case]: FAIL: $*"
    for f in "$work"/log/*.log "$work"/submit/*.out; do
        [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }
    done
    exit 1
}
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }

case "$case" in
# SlurmdTimeout: how long slurmctld waits for a silent slurmd before it sets the node DOWN and
# ends its jobs (NODE_FAIL); short where a node is killed on purpose
nodes) nhosts=4 slurmd_timeout=30 ;;
kill) nhosts=2 slurmd_timeout=5 ;;
*) echo "slurm_hosts: unknown case $case (nodes | kill)"; exit 2 ;;
esac
"$E" up --hosts "$nhosts" --lifetime 300 >/dev/null || fail "emulate.sh up failed"
in_h0() { "$E" exec h0 --timeout "${T:-120}" -- "$@"; }

# ---- munge (root namespace; the socket path is shared) -----------------------------------
mkdir -p "$work/munge" "$work/log" "$work/spool" "$work/state" "$work/submit"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
sock="$work/munge/munge.socket"
# in the foreground under timeout: bounded even if this script is killed without its trap
timeout -k 5 600 munged --foreground --force --key-file="$work/munge/munge.key" --socket="$sock" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed" >"$work/log/munged.out" 2>&1 &
munge_pid=$!
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "munged did not start: $(cat "$work/log/munged.out")"

# ---- slurm.conf: ports are private to each host's network namespace ----------------------
{
    cat <<EOF
ClusterName=moehosts
SlurmctldHost=h0(10.251.0.10)
SlurmctldPort=6817
SlurmdPort=6818
SrunPortRange=60001-60100
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool/%n
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.%n.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.%n.log
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
SlurmdTimeout=$slurmd_timeout
MessageTimeout=5
KillWait=5
MinJobAge=300
InactiveLimit=0
EOF
    for i in $(seq 0 $((nhosts - 1))); do
        echo "NodeName=h$i NodeAddr=10.251.0.$((10 + i)) CPUs=2 State=UNKNOWN"
    done
    echo "PartitionName=moepart Nodes=h[0-$((nhosts - 1))] Default=YES MaxTime=INFINITE State=UP"
} >"$work/slurm.conf"
printf 'CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n' >"$work/cgroup.conf"
# PMIx client directories (spmix_appdir_<uid>_<job>.<step>) would collide in the shared /tmp
# (every host's step has the same name): put them in each host's own /dev/shm
printf 'PMIxCliTmpDirBase=/dev/shm\n' >"$work/mpi.conf"
export SLURM_CONF="$work/slurm.conf"
"$E" exec h0 -- slurmctld -D -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
for i in $(seq 0 $((nhosts - 1))); do
    mkdir -p "$work/spool/h$i"
    # slurmd 22.05 initialises its cgroup plugin even with proctrack/linuxproc and task/none;
    # the host's /sys is a fresh sysfs (ip netns exec) without /sys/fs/cgroup: give it an
    # empty tmpfs there (cgroup.conf names the v1 plugin, so nothing is autodetected or
    # created in it). The mount lives in the host's own mount namespace and ends with it.
    # shellcheck disable=SC2016  # expanded by the host's sh
    "$E" exec "h$i" -- sh -c 'mountpoint -q /sys/fs/cgroup ||
        mount -t tmpfs -o size=64k,mode=755 moe-cgroup /sys/fs/cgroup || exit 1
        exec slurmd -D -N "$1" -f "$2"' slurmd "h$i" "$SLURM_CONF" >"$work/log/slurmd.h$i.out" 2>&1 &
done
up=0
up=0
# shellcheck disable=SC2016  # expanded by the host's sh
T=60 in_h0 sh -c 'for _ in $(seq 1 150); do
        [ "$(sinfo -h -N -o "%T" 2>/dev/null | grep -c "^idle$")" -eq "$1" ] && exit 0
        sleep 0.2
    done; exit 1' wait "$nhosts" && up=1
[ "$up" -eq 1 ] || fail "$nhosts slurmd did not become idle in 30 s: $(T=10 in_h0 sinfo -N 2>&1)"
echo "slurm_hosts[$case]: Slurm up on $nhosts hosts after $(elapsed) s: $(T=10 in_h0 sinfo -h -o '%P %D %N %T')"

# ---- jobs ----------------------------------------------------------------------------------
sub=$work/submit
small="--tokens 64 --d-model 32 --d-ffn 48 --experts 8 --top-k 2 --layers 2 --flush-interval 5 --exchange hier --workload zipf:1.2"
# submit NODES STEPS EXTRA_MOERUN_ARGS: multi-node.sbatch on NODES nodes x 2 tasks, from h0;
# the job id in $job
submit() {
    job=$(cd "$sub" && in_h0 env MOEJOB_HOME="$SRC" MOEJOB_BIN="$MOERUN" MOEJOB_OUT="$sub/out" \
        MOEJOB_ARGS="$small --steps $2 $3" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1 \
        sbatch --parsable --nodes="$1" --ntasks-per-node=2 "$SRC/jobs/slurm/multi-node.sbatch" \
        2>"$sub/sbatch.err") || fail "sbatch: $(cat "$sub/sbatch.err")"
    job=${job%%;*}
    echo "slurm_hosts[$case]: job $job: $1 nodes x 2 tasks, $2 steps ($(elapsed) s)"
}
# wait_jobs BOUND JOB...: poll (inside h0, one process) until every job has left the pending,
# running and completing states, at most BOUND s; prints "JOB STATE EXITCODE" per job.
# (sbatch --wait polls at 2, 8, 32 s: too coarse here.)
wait_jobs() {
    local bound=$1; shift
    # shellcheck disable=SC2016  # expanded by the host's sh
    T=$((bound + 10)) in_h0 sh -c '
        end=$(($(date +%s) + $1)); shift
        for j in "$@"; do
            while :; do
                l=$(scontrol show job -o "$j" 2>/dev/null)
                st=$(echo "$l" | sed -n "s/.* JobState=\([A-Z_]*\).*/\1/p")
                case $st in
                PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | RESIZING | SUSPENDED | "")
                    [ "$(date +%s)" -lt "$end" ] || { echo "$j TIMEOUT"; break; }
                    sleep 0.5 ;;
                *) echo "$j $st $(echo "$l" | sed -n "s/.* ExitCode=\([0-9:]*\).*/\1/p")"; break ;;
                esac
            done
        done' wait "$bound" "$@"
}

case "$case" in
nodes)
    # Slurm's own rank -> host map for both geometries (block distribution over the nodes)
    for n in 2 4; do
        T=60 in_h0 srun --nodes="$n" --ntasks-per-node=2 --label hostname -s >"$sub/map$n" 2>&1 \
            || fail "srun --label hostname on $n nodes: $(cat "$sub/map$n")"
    done
    submit 2 6 ""; job2=$job
    submit 4 6 ""; job4=$job
    states=$(wait_jobs 150 "$job2" "$job4")
    echo "slurm_hosts[$case]: $(echo "$states" | tr '\n' ' ')($(elapsed) s)"
    for n in 2 4; do
        if [ "$n" = 2 ]; then job=$job2; else job=$job4; fi
        echo "$states" | grep -qx "$job COMPLETED 0:0" || fail "job $job ($n nodes): $(echo "$states" | grep "^$job ")"
        f=$sub/out/moerun-$job.h5
        [ -f "$f" ] || fail "no telemetry $f"
        "$PYTHON" "$CHECK_TELEMETRY" "$f" --summary "${f%.h5}.json" || fail "check_telemetry failed on $f"
        "$PYTHON" - "$f" "$job" "$n" "$sub/map$n" <<'EOF' || fail "node list or rank -> host map of job $job differ from Slurm's"
import json, sys
import h5py
path, job, n, mapfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dec = lambda v: v.decode() if isinstance(v, bytes) else v
f = h5py.File(path, "r")
a = {k: dec(v) for k, v in f.attrs.items()}
hosts = [dec(h) for h in f["topology/hostname"][:]]
node = [int(x) for x in f["topology/node"][:]]
# Slurm's map: the "R: host" lines of srun --label hostname
slurm = {}
for line in open(mapfile):
    r, _, h = line.partition(":")
    if r.strip().isdigit():
        slurm[int(r)] = h.strip()
want = [slurm.get(r) for r in range(len(slurm))]
s = json.loads(a["summary"])
print(f"slurm_hosts: job {job}: nodelist {a['slurm_job_nodelist']}, ranks {a['nranks']} on {a['nnodes']} nodes, "
      f"hosts {hosts}, node {node}, Slurm's map {want}, inter-node bytes {s['inter_node_bytes']}")
assert a["slurm_job_id"] == job, a["slurm_job_id"]
assert a["slurm_job_nodelist"] == f"h[0-{n - 1}]", a["slurm_job_nodelist"]
assert a["slurm_job_partition"] == "moepart", a["slurm_job_partition"]
assert int(a["nranks"]) == 2 * n and int(a["nnodes"]) == n == s["nodes"], (a["nranks"], a["nnodes"])
assert hosts == want and len(want) == 2 * n, (hosts, want)
assert sorted(set(hosts)) == [f"h{i}" for i in range(n)], hosts
# the node index moerun derived (MPI_Comm_split_type) partitions the ranks as the hosts do
assert all((node[i] == node[j]) == (hosts[i] == hosts[j]) for i in range(2 * n) for j in range(2 * n)), node
assert a["status"] == "complete" and s["routed"] == s["processed"] + s["dropped"] and s["inter_node_bytes"] > 0
EOF
    done ;;
kill)
    # start_long: a long run over h0 and h1, $out its job output, returns once rank 0 is past
    # step 12 (two flushes, at steps 5 and 10)
    start_long() {
        submit 2 100000 "--progress-interval 0"
        out=$sub/moerun-$job.out
        for _ in $(seq 1 900); do
            grep -q "step 12/" "$out" 2>/dev/null && return 0
            sleep 0.1
        done
        fail "job $job did not reach step 12 in 90 s"
    }
    # kill_in_h1 WHAT: SIGKILL to the processes in h1's network namespace (all started by this
    # test through slurmd): WHAT=ranks: the moerun ranks; WHAT=node: every one (slurmd,
    # slurmstepd, the ranks) but the test bed's holder, kept for the cleanup
    kill_in_h1() {
        local tag holder p comm
        tag=$(cat "$MOE_TESTBED/tag")
        read -r holder _ <"$MOE_TESTBED/holder.h1"
        killed=()
        for p in $(ip netns pids "moe-$tag-h1"); do
            [ "$p" = "$holder" ] && continue
            comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
            [ "$1" = node ] || [ "$comm" = moerun ] || continue
            killed+=("$p:$comm")
            kill -KILL "$p" 2>/dev/null
        done
        tk=$(date +%s)
        echo "slurm_hosts[$case]: killed in h1: ${killed[*]} ($(elapsed) s)"
        printf '%s\n' "${killed[@]}" | grep -q ':moerun$' || fail "no moerun rank in h1 to kill"
    }
    # check_flushed: the telemetry is readable and holds the steps flushed before the kill
    check_flushed() {
        local f=$sub/out/moerun-$job.h5
        "$PYTHON" "$CHECK_TELEMETRY" "$f" || fail "telemetry of job $job unreadable or inconsistent after the kill"
        "$PYTHON" - "$f" <<'EOF' || fail "the telemetry of job $job does not hold the steps flushed before the kill"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
st = f.attrs["status"]; st = st.decode() if isinstance(st, bytes) else st
n, done = f["steps/step"].shape[0], int(f.attrs["steps_completed"])
hosts = [h.decode() for h in f["topology/hostname"][:]]
print(f"slurm_hosts: after the kill: status {st}, {n} steps in the file, steps_completed {done}, hosts {hosts}")
sys.exit(0 if st == "running" and n == done >= 10 and n % 5 == 0 and hosts == ["h0", "h0", "h1", "h1"] else 1)
EOF
    }

    # 1. the ranks on h1 die, slurmd and slurmstepd live: slurmstepd reports the tasks'
    # SIGKILL, srun --kill-on-bad-exit ends the step at once, the job FAILED
    start_long
    kill_in_h1 ranks
    state=$(wait_jobs 60 "$job")
    took=$(($(date +%s) - tk))
    echo "slurm_hosts[$case]: ranks killed: $state, $took s after the kill"
    case $state in
    "$job FAILED "*) ;;
    *) fail "job $job: '$state' after its ranks on h1 were killed, want FAILED" ;;
    esac
    [ "$took" -le 60 ] || fail "job $job took $took s to end after its ranks on h1 died"
    grep -Eq "h1: tasks? [23](-3)?: Killed" "$out" || fail "srun did not report the killed tasks on h1"
    check_flushed

    # 2. host h1 dies (slurmd, slurmstepd and the ranks): nothing reports the tasks; the
    # ranks on h0 block on their dead peers; slurmctld sets h1 DOWN after SlurmdTimeout and
    # ends the job (NODE_FAIL; multi-node.sbatch has --no-requeue, so it is not requeued)
    start_long
    kill_in_h1 node
    printf '%s\n' "${killed[@]}" | grep -q ':slurmd$' || fail "no slurmd in h1 to kill"
    state=$(wait_jobs 90 "$job")
    took=$(($(date +%s) - tk))
    echo "slurm_hosts[$case]: node killed: $state, $took s after the kill"
    case $state in
    "$job NODE_FAIL "*) ;;
    *) fail "job $job: '$state' after h1 died, want NODE_FAIL and not requeued" ;;
    esac
    [ "$took" -le 90 ] || fail "job $job took $took s to end after h1 died"
    grep -q "CANCELLED AT .* DUE TO NODE FAILURE" "$out" || fail "no node-failure line in the job output"
    check_flushed ;;
esac
echo "slurm_hosts[$case]: ok ($(elapsed) s)"
