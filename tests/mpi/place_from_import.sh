#!/usr/bin/env bash
# place_from_import.sh — a plan from an imported routing log runs.
#
# Env: MOERUN, IMPORT, PLACE, MPIEXEC, CHECK_TELEMETRY, PYTHON, FIXTURE (a JSON-lines log of
# 8 experts, 2 layers, top-2).
# Imports the log, plans for 2 nodes x 2 ranks with moerun-place (no ranks in a log: the
# uniform-origin model), checks the plan file's shape lines, then runs moerun on 4 ranks with
# --ranks-per-node 2 and --placement file:PLAN, and checks its telemetry (conservation,
# placement/expert_ranks equal to the plan's lists, rows_in vs processed).
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-pimport.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "place_from_import: FAIL: $*"; exit 1; }
"$IMPORT" "$FIXTURE" -o "$work/log.h5" --experts 8 >"$work/import.out" 2>&1 || { cat "$work/import.out"; fail "import"; }
"$PLACE" "$work/log.h5" --nodes 2 --ranks-per-node 2 -o "$work/plan.txt" --json "$work/plan.json" \
    >"$work/plan.out" 2>&1 || { cat "$work/plan.out"; fail "moerun-place"; }
for want in "experts 8" "layers 2" "ranks 4" "nodes 2"; do
    grep -qx "$want" "$work/plan.txt" || fail "plan lacks '$want'"
done
grep -qE '"prediction":[[:space:]]*"uniform origin"' "$work/plan.json" || fail "plan JSON does not say uniform origin"
"$MPIEXEC" -np 4 "$MOERUN" --experts 8 --top-k 2 --layers 2 --d-model 16 --d-ffn 16 --tokens 16 \
    --steps 2 --quiet --ranks-per-node 2 --placement "file:$work/plan.txt" \
    --telemetry "$work/run.h5" --summary-json "$work/run.json" >"$work/run.out" 2>&1 \
    || { cat "$work/run.out"; fail "moerun with the plan"; }
"$PYTHON" "$CHECK_TELEMETRY" "$work/run.h5" --summary "$work/run.json" || fail "telemetry"
"$PYTHON" - "$work/run.h5" "$work/plan.txt" <<'PY' || fail "placement/expert_ranks differs from the plan"
import sys, h5py
er = h5py.File(sys.argv[1], "r")["placement/expert_ranks"][()]
for line in open(sys.argv[2]):
    if line.startswith("layer "):
        head, rest = line.split(":", 1)
        l = int(head.split()[1])
        for e, field in enumerate(rest.split()):
            want = [int(x) for x in field.split(",")]
            got = [int(x) for x in er[l, e] if x >= 0]
            if got != want:
                print(f"layer {l} expert {e}: file {want}, telemetry {got}"); sys.exit(1)
PY
echo "place_from_import: ok"
