#!/usr/bin/env bash
# run_fixture.sh WORKDIR — the one small real run the tools tests read (tests/tools/CMakeLists.txt):
# 2 ranks as 2 emulated nodes (hier exchange, so inter-node bytes are non-zero), 6 steps,
# skewed routing with drops (monitor events). Writes WORKDIR/run.h5 and WORKDIR/run.json.
# Env: MOERUN, MPIEXEC.
set -euo pipefail
work=$1
mkdir -p "$work"
rm -f "$work/run.h5" "$work/run.json"
"$MPIEXEC" -np 2 "$MOERUN" --experts 8 --top-k 2 --d-model 32 --d-ffn 48 --layers 2 --steps 6 \
    --flush-interval 4 --seed 7 --capacity-factor 1.0 --workload zipf:1.2 --exchange hier \
    --ranks-per-node 1 --telemetry "$work/run.h5" --summary-json "$work/run.json" \
    --progress-interval 0 --quiet >"$work/run.out" 2>&1 || { cat "$work/run.out"; exit 1; }
[ -s "$work/run.h5" ] && [ -s "$work/run.json" ] || { echo "run wrote no telemetry/summary"; exit 1; }
echo "fixture run ok: $work/run.h5"
