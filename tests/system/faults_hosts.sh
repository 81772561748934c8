#!/usr/bin/env bash
# faults_hosts.sh — faults across emulated hosts (docs/signals.md, "Faults across hosts"):
# moerun runs on 2 hosts x 2 ranks (jobs/cluster/emulate.sh) with --step-timeout; mid-run one
# fault hits host h1 (ranks 2 and 3), and the run must end within a bound, with a non-zero
# exit, a message naming the rank or host, and telemetry readable up to its last flush.
#
# Usage: faults_hosts.sh CASE
#   host-dies   every process of h1's network namespace is killed (SIGKILL): orted and ranks
#   link-down   `ip link set eth0 down` in h1: its packets go nowhere, no FIN, no RST
#   link-stall  tc tbf at 8 kbit/s on both directions of h1's link (a link that crawls)
#   rank-stop   SIGSTOP to rank 3 (on h1): it holds every other rank in the next collective;
#               once one of them has reported, rank 3 gets SIGCONT
# Env: MOERUN, MPIEXEC, EMULATE, PYTHON (h5py), CHECK_TELEMETRY; STEP_TIMEOUT [3]; KEEP=FILE
#      keeps a copy of the run's stderr.
# Checks, for each case:
#   - mpirun ends within BOUND = STEP_TIMEOUT + 20 s of the fault (docs/signals.md);
#   - exit status not 0 (and not emulate.sh's own timeout, 124);
#   - stderr names the rank or host: the watchdog's "moerun[rank R on hH]: error: step S
#     ... has not finished" from at least one rank, or Open MPI's "Remote daemon: ... on node
#     h1" / "Peer host: h1"; rank-stop: rank 3 itself reports "rank 3 did not run for"; no line claims a
#     complete run;
#   - telemetry: check_telemetry.py passes, status "running" (never closed), and it holds
#     at least the steps flushed before the fault (a multiple of --flush-interval, > 0).
# Always tears the test bed down (trap), even on failure.
set -uo pipefail
case=$1
st=${STEP_TIMEOUT:-3}
bound=$((st + 20))
flush=5
if [ "$(id -u)" -ne 0 ]; then
    echo "faults_hosts[$case]: FAIL: the emulated test bed needs root; run the system tests as root (CI does)"
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-faults-hosts.XXXXXX")
bed=$work/bed
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    "$EMULATE" --state "$bed" down >/dev/null || echo "faults_hosts[$case]: WARNING: test bed teardown failed"
    [ -n "$pid" ] && wait "$pid" 2>/dev/null
    [ -n "${KEEP:-}" ] && cp "$work/err" "$KEEP" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
fail() {
    echo "faults_hosts[$case]: FAIL: $*"
    [ -f "$work/err" ] && grep -v -e "step [0-9]*/" -e alert "$work/err" | tail -n 20 | sed 's/^/    stderr: /'
    exit 1
}
now() { date +%s.%N; }
T_START=$(date +%s.%N)
mark() { echo "faults_hosts[$case]: $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1f", b - a }') s: $*"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

"$EMULATE" --state "$bed" up --hosts 2 --slots 2 --lifetime 300 >/dev/null || fail "emulate.sh up failed"
tag=$(cat "$bed/tag")
ns=moe-$tag-h1
# After the watchdog has ended the ranks, mpirun still waits for the daemon (orted) of a host
# it cannot reach: its order to kill that host's ranks stays unacknowledged until TCP gives
# up after net.ipv4.tcp_retries2 retransmissions (15 by default: about 15 minutes, measured
# in docs/signals.md). A per-namespace setting of 3 (about 3 s at the veth's 200 ms minimum
# RTO), as an administrator would set it on a cluster's nodes, keeps the bound short.
for h in 0 1; do
    ip netns exec "moe-$tag-h$h" sysctl -qw net.ipv4.tcp_retries2=3 || fail "cannot set tcp_retries2 in h$h"
done

# tiny steps, progress from rank 0 every step, a flush every $flush steps; gather mode: a
# parallel-mode flush (collective MPI-IO over the test bed's TCP) takes about 4 s here on a
# loaded machine, a gather flush 0.2 s, so that --step-timeout $st is far from a real step
"$EMULATE" --state "$bed" run --timeout 120 -- mpirun -np 4 "$MOERUN" --tokens 32 --d-model 16 \
    --d-ffn 24 --experts 8 --top-k 2 --layers 2 --workload zipf:1.2 --progress-interval 0 \
    --steps 1000000 --step-timeout "$st" --flush-interval "$flush" --telemetry "$work/t.h5" \
    --telemetry-mode gather \
    </dev/null >"$work/out" 2>"$work/err" &
pid=$!
mark "test bed up, run started"
for _ in $(seq 1 600); do
    grep -q "step $((2 * flush))/" "$work/err" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || fail "the run ended before the fault"
    sleep 0.1
done
grep -q "step $((2 * flush))/" "$work/err" || fail "the run did not reach step $((2 * flush)) in 60 s"

# rank_pid R: the PID of moerun rank R in h1 (by its Open MPI rank variable)
rank_pid() {
    local p
    for p in $(ip netns pids "$ns"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = moerun ] || continue
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
    done
}

mark "step $((2 * flush)) reached: fault"
t0=$(now)
case "$case" in
host-dies)
    # every process of the host (orted, its ranks, the holder that keeps its namespaces)
    # shellcheck disable=SC2046
    kill -KILL $(ip netns pids "$ns") 2>/dev/null ;;
link-down)
    ip -n "$ns" link set eth0 down || fail "cannot set h1's eth0 down" ;;
link-stall)
    tc -n "$ns" qdisc replace dev eth0 root tbf rate 8kbit burst 1600 latency 10s \
        && tc -n "moe-$tag-br" qdisc replace dev v1 root tbf rate 8kbit burst 1600 latency 10s \
        || fail "cannot shape h1's link" ;;
rank-stop)
    victim=$(rank_pid 3)
    [ -n "$victim" ] || fail "rank 3 not found in $ns"
    kill -STOP "$victim" ;;
*) echo "faults_hosts: unknown case '$case'"; exit 2 ;;
esac

# rank-stop: once another rank's watchdog has fired, rank 3 is continued (SIGCONT), as an
# operator or mpirun's teardown would; its own watchdog then says how long it did not run.
# Left to mpirun's teardown alone, that line raced the job's end and was sometimes lost.
resumed=""
for _ in $(seq 1 $((bound * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    if [ "$case" = rank-stop ] && [ -z "$resumed" ] \
        && grep -qE "^moerun\[rank [0-2] on h[01]\]: error: step [0-9]+ .*has not finished after" "$work/err"; then
        kill -CONT "$victim" 2>/dev/null
        resumed=1
    fi
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "mpirun still runs $bound s after the fault (bound: --step-timeout $st + 20 s)"
wait "$pid"; rc=$?; pid=""
secs=$(elapsed "$t0")
mark "mpirun ended"
[ "$rc" -ne 0 ] || fail "exit 0 after the fault"
[ "$rc" -ne 124 ] || fail "emulate.sh's own timeout ended the run, not moerun"

# the message naming the rank or host
named=$(grep -E "^moerun\[rank [0-9]+ on h[01]\]: error: step [0-9]+ .*has not finished after" "$work/err" | head -n 1)
lost=$(grep -E "Remote daemon: .* on node h1$|Peer host: +h1$" "$work/err" | head -n 1 | sed 's/^ *//')
[ -n "$named" ] || [ -n "$lost" ] || fail "no message naming a rank (watchdog) or host h1 (Open MPI)"
if [ "$case" = rank-stop ]; then
    grep -qE "^moerun\[rank 3 on h1\]: warning: rank 3 did not run for" "$work/err" \
        || fail "the stopped rank 3 did not report itself"
fi

# telemetry readable up to the last flush
"$PYTHON" "$CHECK_TELEMETRY" "$work/t.h5" >"$work/check" 2>&1 || { cat "$work/check"; fail "check_telemetry failed"; }
read -r status nsteps <<<"$("$PYTHON" - "$work/t.h5" <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f.attrs["status"]
print(s.decode() if isinstance(s, bytes) else s, f["steps/step"].shape[0])
EOF
)"
[ "$status" = running ] || fail "telemetry status '$status', want 'running' (killed before close)"
[ "${nsteps:-0}" -ge $((2 * flush)) ] && [ $((nsteps % flush)) -eq 0 ] \
    || fail "telemetry holds $nsteps steps, want a multiple of $flush and >= $((2 * flush)) (flushed before the fault)"
echo "faults_hosts[$case]: ended ${secs} s after the fault (bound $bound s), exit $rc; ${named:-$lost}"
echo "faults_hosts[$case]: telemetry status $status, $nsteps steps readable"
mark "checked"
echo "faults_hosts[$case]: ok"
