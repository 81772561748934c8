#!/usr/bin/env bash
# moerun_hosts.sh — moerun across emulated hosts equals a 1-rank run, for every exchange.
#
# Usage: moerun_hosts.sh NAME HOSTS RANKS_PER_HOST GLOBAL_TOKENS -- [moerun options]
# Env: MOERUN, DUMPCMP, MPIEXEC, EMULATE (jobs/cluster/emulate.sh); optional CHECK_TELEMETRY,
#      PYTHON, EXCHANGES (default: every name `moerun --help` lists for --exchange).
# Stands up HOSTS emulated hosts (own network, hostname, IPC and /dev/shm each), runs
# `mpirun -np HOSTS*RANKS_PER_HOST moerun --exchange EX` inside host 0 for each exchange
# (no --ranks-per-node: nodes come from MPI_Comm_split_type), and checks against a 1-rank
# reference run of the same global batch (outside the test bed):
#   - summary: nodes == HOSTS, ranks == HOSTS*RANKS_PER_HOST, status complete;
#   - routed, processed, dropped, steps_completed equal the reference; routed = processed + dropped;
#   - the last layer output equals the reference (dumpcmp, relative 1e-5);
#   - hier and ucx outputs are bitwise equal;
#   - inter_node_bytes > 0, and with top-k > 1 hier's inter-node bytes < flat's;
#   - the telemetry file against the summary (CHECK_TELEMETRY) for each run.
# Always tears the test bed down (trap); fails with a clear message when not root.
set -euo pipefail
name=$1; hosts=$2; rph=$3; global=$4; shift 4
[ "${1:-}" = "--" ] && shift
np=$((hosts * rph)); t=$((global / np))
[ $((t * np)) -eq "$global" ] || { echo "system[$name]: $global tokens do not split over $np ranks"; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "system[$name]: FAIL: the emulated test bed needs root (network, UTS, IPC and mount namespaces); run the system tests as root (CI does)"
    exit 1
fi

if [ -z "${EXCHANGES:-}" ]; then
    # e.g. "  --exchange NAME   ...; flat|hier|ucx [flat]  MOERUN_EXCHANGE"
    EXCHANGES=$("$MOERUN" --help | sed -n 's/^ *--exchange .*; \([a-z0-9|]*\) \[.*/\1/p' | tr '|' ' ')
    [ -n "$EXCHANGES" ] || { echo "system[$name]: cannot read the exchange list from moerun --help"; exit 1; }
fi
has() { case " $EXCHANGES " in *" $1 "*) return 0 ;; esac; return 1; }
has flat || { echo "system[$name]: exchange list '$EXCHANGES' lacks flat"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-system-$name.XXXXXX")
bed=$work/bed
cleanup() {
    "$EMULATE" --state "$bed" down >/dev/null || echo "system[$name]: WARNING: test bed teardown failed"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM # so that cleanup (EXIT) runs

field() { # field FILE KEY -> the number or string after "KEY": in a cJSON document
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\"\{0,1\}\([-0-9a-z.e+]*\).*/\1/p" "$1" | head -n 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
fail() { echo "system[$name]: FAIL: $*"; exit 1; }

check_telemetry() { # check_telemetry TAG
    if [ -n "${CHECK_TELEMETRY:-}" ]; then
        "${PYTHON:-/usr/bin/python3}" "$CHECK_TELEMETRY" "$work/$1.h5" --summary "$work/$1.json" >"$work/$1.tel" 2>&1 \
            || { cat "$work/$1.tel"; fail "telemetry check failed for $1"; }
    fi
}

# reference: one rank, the whole batch, plain mpirun on this machine (loopback only)
if ! "$MPIEXEC" -np 1 "$MOERUN" --tokens "$global" --quiet --telemetry "$work/ref.h5" \
      --summary-json "$work/ref.json" --output-dump "$work/ref.bin" "$@" >"$work/ref.out" 2>&1; then
    cat "$work/ref.out"; fail "1-rank reference run failed"
fi
check_telemetry ref

up_start=$(date +%s.%N)
"$EMULATE" --state "$bed" up --hosts "$hosts" --slots "$rph" --lifetime 1200 \
    || fail "emulate.sh up --hosts $hosts failed"
echo "system[$name]: test bed up in $(elapsed "$up_start") s; exchanges: $EXCHANGES"

topk=$(field "$work/ref.json" top_k)
for ex in $EXCHANGES; do
    s=$(date +%s.%N)
    if ! "$EMULATE" --state "$bed" run --timeout 600 -- mpirun -np "$np" "$MOERUN" --tokens "$t" \
          --quiet --exchange "$ex" --telemetry "$work/$ex.h5" --summary-json "$work/$ex.json" \
          --output-dump "$work/$ex.bin" "$@" >"$work/$ex.out" 2>&1; then
        cat "$work/$ex.out"; fail "$hosts hosts x $rph ranks, --exchange $ex: run failed"
    fi
    secs=$(elapsed "$s")
    j=$work/$ex.json
    [ "$(field "$j" status)" = complete ] || fail "$ex: status '$(field "$j" status)'"
    [ "$(field "$j" nodes)" = "$hosts" ] || fail "$ex: summary nodes = '$(field "$j" nodes)', expected $hosts emulated hosts"
    [ "$(field "$j" ranks)" = "$np" ] || fail "$ex: summary ranks = '$(field "$j" ranks)', expected $np"
    for key in routed processed dropped steps_completed; do
        a=$(field "$work/ref.json" $key); b=$(field "$j" $key)
        [ -n "$a" ] && [ "$a" = "$b" ] || fail "$ex: $key = '$b', 1-rank reference '$a'"
    done
    r=$(field "$j" routed); p=$(field "$j" processed); d=$(field "$j" dropped)
    [ "$r" -eq $((p + d)) ] || fail "$ex: routed $r != processed $p + dropped $d"
    inter=$(field "$j" inter_node_bytes)
    [ "${inter:-0}" -gt 0 ] || fail "$ex: inter_node_bytes = '$inter', expected > 0 across $hosts hosts"
    printf 'system[%s]: %d hosts x %d ranks, %-5s %5.2f s: nodes %s routed %s processed %s dropped %s inter-node bytes %s: ' \
        "$name" "$hosts" "$rph" "$ex" "$secs" "$(field "$j" nodes)" "$r" "$p" "$d" "$inter"
    "$DUMPCMP" "$work/$ex.bin" "$work/ref.bin" 1e-5 || fail "$ex: output differs from the 1-rank reference"
    check_telemetry "$ex"
done

if has hier && has ucx; then
    cmp -s "$work/hier.bin" "$work/ucx.bin" || fail "ucx output is not bitwise equal to hier"
    echo "system[$name]: hier and ucx outputs bitwise equal"
fi
if has hier && [ "$topk" -gt 1 ]; then
    hi=$(field "$work/hier.json" inter_node_bytes); fi=$(field "$work/flat.json" inter_node_bytes)
    [ "$hi" -lt "$fi" ] || fail "top-k $topk: hier inter-node bytes $hi not below flat's $fi"
    echo "system[$name]: inter-node bytes hier $hi < flat $fi (ratio $(awk -v a="$hi" -v b="$fi" 'BEGIN { printf "%.3f", a / b }'))"
fi
echo "system[$name]: ok"
