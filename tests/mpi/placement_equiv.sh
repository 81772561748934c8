#!/usr/bin/env bash
# placement_equiv.sh — any valid placement map (per-layer maps, replicas) gives the 1-rank
# result, with every exchange.
#
# Usage: placement_equiv.sh NAME GLOBAL_TOKENS NP RPN MAPFILE -- [moerun options]
# Env: MOERUN, DUMPCMP, MPIEXEC, CHECK_TELEMETRY, CHECK_LOADS, PYTHON; optional EXCHANGES
#      (default "flat hier 2dh ucx").
# Runs a 1-rank reference (contiguous), then NP ranks with --placement file:MAPFILE and RPN
# ranks per node for each exchange, and checks against the reference: routed, processed and
# dropped totals exactly equal (capacity belongs to the logical expert: drops do not move
# with the map), the last layer output within relative 1e-5 (dumpcmp), the telemetry file
# (check_telemetry.py: conservation per step/layer/expert, rows_in summed over ranks equals
# processed, placement/expert_ranks well formed) and the rows each rank computed against the
# replica rule recomputed from every token's recorded route (check_rank_loads.py).
set -euo pipefail
name=$1; global=$2; np=$3; rpn=$4; map=$5; shift 5
[ "${1:-}" = "--" ] && shift
exchanges=${EXCHANGES:-flat hier 2dh ucx}
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-pequiv-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

field() { # field FILE KEY -> the number after "KEY": in a cJSON document
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1
}

run() { # run TAG NP [options]
    local tag=$1 n=$2
    shift 2
    if ! "$MPIEXEC" -np "$n" "$MOERUN" --tokens $((global / n)) --quiet \
          --route-samples "$global" --telemetry "$work/$tag.h5" --summary-json "$work/$tag.json" \
          --output-dump "$work/$tag.bin" "$@" >"$work/$tag.out" 2>"$work/$tag.err"; then
        echo "pequiv[$name]: run $tag failed:"; cat "$work/$tag.err" "$work/$tag.out"; exit 1
    fi
}

[ $((global / np * np)) -eq "$global" ] || { echo "pequiv: $global tokens do not split over $np ranks"; exit 2; }
run ref 1 "$@"
for ex in $exchanges; do
    run "$ex" "$np" --exchange "$ex" --ranks-per-node "$rpn" --placement "file:$map" "$@"
    for key in routed processed dropped steps_completed; do
        a=$(field "$work/ref.json" $key); b=$(field "$work/$ex.json" $key)
        if [ -z "$a" ] || [ "$a" != "$b" ]; then
            echo "pequiv[$name]: $key differs: 1 rank '$a', np $np $ex with the map '$b'"; exit 1
        fi
    done
    printf 'pequiv[%s]: np %s %-5s routed %s processed %s dropped %s: ' "$name" "$np" "$ex" \
        "$(field "$work/$ex.json" routed)" "$(field "$work/$ex.json" processed)" \
        "$(field "$work/$ex.json" dropped)"
    "$DUMPCMP" "$work/$ex.bin" "$work/ref.bin" 1e-5 \
        || { echo "pequiv[$name]: $ex output differs from the 1-rank reference"; exit 1; }
    "$PYTHON" "$CHECK_TELEMETRY" "$work/$ex.h5" --summary "$work/$ex.json" \
        || { echo "pequiv[$name]: telemetry check failed for $ex"; exit 1; }
    "$PYTHON" "$CHECK_LOADS" "$work/$ex.h5" "$rpn" \
        || { echo "pequiv[$name]: rank loads do not follow the replica rule ($ex)"; exit 1; }
done
if [ "$(field "$work/ref.json" dropped)" = 0 ] && [ "${EXPECT_DROPS:-}" = yes ]; then
    echo "pequiv[$name]: expected drops in this configuration, got none"; exit 1
fi
echo "pequiv[$name]: ok"
