#!/usr/bin/env bash
# placement_proof.sh — measure, plan, run again, prove: on HOSTS emulated hosts x RPH ranks,
# a skewed workload runs with the contiguous map (hier exchange, every token's route
# recorded), moerun-place plans from that telemetry, and the same workload runs again with
# --placement file:PLAN (hier; with FLAT=1 also flat). check_proof.py then requires the rerun's rank
# max/mean and inter-node bytes to fall, and every measured value (both runs) within 10 %
# of the planner's prediction. Also: the rerun's routed/processed/dropped equal the first
# run's (the map changes no count) and its output equals the first run's (dumpcmp 1e-5).
#
# Usage: placement_proof.sh NAME HOSTS RPH GLOBAL_TOKENS -- [moerun options]
# Env: MOERUN, PLACE, DUMPCMP, EMULATE, PYTHON, CHECK_PROOF; optional POLICY (moerun).
set -euo pipefail
name=$1; hosts=$2; rph=$3; global=$4; shift 4
[ "${1:-}" = "--" ] && shift
np=$((hosts * rph)); t=$((global / np))
[ $((t * np)) -eq "$global" ] || { echo "proof[$name]: $global tokens do not split over $np ranks"; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "proof[$name]: FAIL: the emulated test bed needs root; run the system tests as root (CI does)"
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-proof-$name.XXXXXX")
bed=$work/bed
cleanup() {
    "$EMULATE" --state "$bed" down >/dev/null || echo "proof[$name]: WARNING: test bed teardown failed"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
fail() { echo "proof[$name]: FAIL: $*"; exit 1; }
field() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\"\{0,1\}\([-0-9a-z.e+]*\).*/\1/p" "$1" | head -n 1; }

"$EMULATE" --state "$bed" up --hosts "$hosts" --slots "$rph" --lifetime 600 >/dev/null \
    || fail "emulate.sh up --hosts $hosts failed"
run() { # run TAG EXCHANGE [options]
    local tag=$1 ex=$2; shift 2
    "$EMULATE" --state "$bed" run --timeout 300 -- mpirun -np "$np" "$MOERUN" --tokens "$t" \
        --quiet --exchange "$ex" --route-samples "$global" --telemetry "$work/$tag.h5" \
        --summary-json "$work/$tag.json" --output-dump "$work/$tag.bin" "$@" >"$work/$tag.out" 2>&1 \
        || { cat "$work/$tag.out"; fail "run $tag failed"; }
}
t0=$(date +%s)
run measured hier "$@"
"$PLACE" "$work/measured.h5" --policy "${POLICY:-moerun}" -o "$work/plan.txt" \
    --json "$work/plan.json" >"$work/plan.table" || { cat "$work/plan.table"; fail "moerun-place failed"; }
sed 's/^/    /' "$work/plan.table"
run planned hier --placement "file:$work/plan.txt" "$@"
flat=()
if [ "${FLAT:-0}" = 1 ]; then
    run planned_flat flat --placement "file:$work/plan.txt" "$@"
    flat=("$work/planned_flat.h5")
fi
for key in routed processed dropped; do
    a=$(field "$work/measured.json" $key); b=$(field "$work/planned.json" $key)
    if [ -z "$a" ] || [ "$a" != "$b" ]; then fail "$key: first run '$a', rerun with the plan '$b'"; fi
done
"$DUMPCMP" "$work/planned.bin" "$work/measured.bin" 1e-5 || fail "the rerun's output differs"
"$PYTHON" "$CHECK_PROOF" "$work/plan.json" "$work/measured.h5" "$work/planned.h5" \
    "${flat[@]+"${flat[@]}"}" || fail "measured values do not match the plan's predictions"
echo "proof[$name]: ok ($(( $(date +%s) - t0 )) s of runs)"
