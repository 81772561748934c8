#!/usr/bin/env bash
# router_study.sh — routers compared on one configuration (a benchmark, not a test).
#
# Usage: bench/router_study.sh [OUT_DIR]   (env: MOERUN, default build/moerun; NP 8; RPN 2;
#        TOKENS 1024; D 512; FFN 1024; E 32; K 4; STEPS 4; LAYERS 1; CF 1.25; WORKLOAD zipf:1.0;
#        ONLY: an extended regex of router names to run, default all; softmax always runs)
# Runs moerun with every router under --exchange flat and hier on NP ranks in nodes of RPN
# (--ranks-per-node), and node-limited with M = 1 and 2, then prints one Markdown table:
# tokens/s, router (gate) share of the layer time, drop rate, unrouted tokens, inter-node
# bytes per token, max/mean expert load, and inter-node bytes per token relative to softmax
# top-k under the same exchange (the baseline measured in the same run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
moerun=${MOERUN:-$root/build/moerun}
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/router-study.XXXXXX")}
mkdir -p "$out"
np=${NP:-8}; rpn=${RPN:-2}; E=${E:-32}; K=${K:-4}
common=(--tokens "${TOKENS:-1024}" --d-model "${D:-512}" --d-ffn "${FFN:-1024}" --experts "$E"
        --top-k "$K" --layers "${LAYERS:-1}" --steps "${STEPS:-4}" --capacity-factor "${CF:-1.25}"
        --workload "${WORKLOAD:-zipf:1.0}" --ranks-per-node "$rpn" --telemetry none --quiet
        --log-level error)
export OPENBLAS_NUM_THREADS=1
routers=("softmax|--router softmax" "switch|--router switch --top-k 1"
         "sigmoid|--router sigmoid" "group-limited G=8 M=2|--router group-limited --route-groups 8 --route-max-nodes 2"
         "node-limited M=1|--router node-limited --route-max-nodes 1"
         "node-limited M=2|--router node-limited --route-max-nodes 2"
         "expert-choice|--router expert-choice" "hash|--router hash")
for ex in flat hier; do
    for spec in "${routers[@]}"; do
        name=${spec%%|*}; args=${spec#*|}
        if [ -n "${ONLY:-}" ] && [ "$name" != softmax ] && ! [[ $name =~ $ONLY ]]; then continue; fi
        tag=$(echo "$ex.$name" | tr ' =' '__')
        # shellcheck disable=SC2086
        mpirun --allow-run-as-root --oversubscribe --mca mpi_yield_when_idle 1 -np "$np" \
            "$moerun" "${common[@]}" --exchange "$ex" $args --summary-json "$out/$tag.json" \
            >"$out/$tag.out" 2>&1 || { echo "router_study: $tag failed"; cat "$out/$tag.out"; exit 1; }
        echo "$ex|$name|$tag" >>"$out/index"
    done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
rows = [l.strip().split("|") for l in open(os.path.join(out, "index"))]
base = {}
data = []
for ex, name, tag in rows:
    s = json.load(open(os.path.join(out, tag + ".json")))
    G = s["ranks"] * s["tokens_per_rank"] * s["steps_completed"] * s["layers"]
    ph = s["phase_seconds_mean"]
    inter = s["inter_node_bytes"] / G
    if name == "softmax":
        base[ex] = inter
    data.append((ex, name, s["tokens_per_s"], ph["gate"] / ph["total"], s["drop_rate"],
                 s.get("unrouted", 0) / G, inter, s["max_mean_load"]))
print("| exchange | router | tokens/s | router share | drop rate | unrouted | inter-node B/token | vs softmax | max/mean load |")
print("|---|---|---|---|---|---|---|---|---|")
for ex, name, tps, gsh, dr, un, inter, mml in data:
    print(f"| {ex} | {name} | {tps:,.0f} | {100*gsh:.1f}% | {100*dr:.2f}% | {100*un:.2f}% | "
          f"{inter:,.0f} | {inter/base[ex]:.2f} | {mml:.2f} |")
PY
