#!/usr/bin/env bash
# router_equiv.sh — every router keeps the runtime's guarantees.
#
# Usage: router_equiv.sh   (env: MOERUN, DUMPCMP, MPIEXEC, CHECK_TELEMETRY, PYTHON)
# For each router, with drops (capacity factor 1.0, skewed workload) and sigmoid also
# dropless: the runs at np 2 (flat, 1 rank per node), np 4 (hier, 2 ranks per node) and, for
# switch, dropless sigmoid and expert-choice, np 8 (hier, 4 ranks per node) must
# give the np 1 run's routed, processed, dropped and unrouted totals exactly and its last
# layer output within 1e-5 (dumpcmp). Some np 4 files pass check_telemetry.py (routed =
# processed + dropped per step, layer and expert, and the file against the summary); every
# run's engine checks that invariant itself at each flush and stops on a violation.
# Router-specific checks, each against a value computed here:
#   expert-choice  routed = steps x layers x experts x min(C, G), dropped 0;
#   node-limited   np 2 and np 4 (2 nodes holding experts 0-3 and 4-7) equal the 1-rank
#                  group-limited run with 2 groups; every sampled route touches <= M nodes.
# One run each with --exchange 2dh and ucx. group-limited runs with --balance-bias and a
# shared expert (the bias trajectory is checked against the sign rule on the recorded
# loads); moerun-analyze names every router and puts the real node-limited run's measured
# inter-node copies next to its node_limited projection for the softmax run.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-requiv.XXXXXX")
trap 'rm -rf "$work"' EXIT
global=128
common=(--experts 8 --top-k 2 --d-model 32 --d-ffn 48 --layers 2 --steps 3 --flush-interval 2
        --seed 7 --workload zipf:1.2 --drop-policy probs)

field() { # field FILE KEY -> the number after "KEY": in a cJSON document
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1
}

run() { # run TAG NP EXCHANGE RPN [options]
    local tag=$1 np=$2 ex=$3 rpn=$4
    shift 4
    if ! "$MPIEXEC" -np "$np" "$MOERUN" --tokens $((global / np)) --quiet --exchange "$ex" \
          --ranks-per-node "$rpn" --telemetry "$work/$tag.h5" --summary-json "$work/$tag.json" \
          --output-dump "$work/$tag.bin" "${common[@]}" "$@" >"$work/$tag.out" 2>"$work/$tag.err"; then
        echo "requiv: run $tag (np $np, $ex) failed:"; cat "$work/$tag.err" "$work/$tag.out"; exit 1
    fi
}

same() { # same REF TAG: totals equal, output within 1e-5
    local key a b
    for key in routed processed dropped unrouted steps_completed; do
        a=$(field "$work/$1.json" $key); b=$(field "$work/$2.json" $key)
        if [ -z "$a" ] || [ "$a" != "$b" ]; then
            echo "requiv: $key differs: $1 '$a', $2 '$b'"; exit 1
        fi
    done
    "$DUMPCMP" "$work/$2.bin" "$work/$1.bin" 1e-5 >/dev/null \
        || { echo "requiv: output of $2 differs from $1"; "$DUMPCMP" "$work/$2.bin" "$work/$1.bin" 1e-5; exit 1; }
    printf 'requiv: %-28s = %-22s routed %s dropped %s unrouted %s\n' "$2" "$1" \
        "$(field "$work/$2.json" routed)" "$(field "$work/$2.json" dropped)" "$(field "$work/$2.json" unrouted)"
}

telcheck() { # telcheck TAG
    "${PYTHON:-/usr/bin/python3}" "$CHECK_TELEMETRY" "$work/$1.h5" --summary "$work/$1.json" >/dev/null \
        || { echo "requiv: telemetry check failed for $1"; "${PYTHON:-/usr/bin/python3}" "$CHECK_TELEMETRY" "$work/$1.h5" --summary "$work/$1.json"; exit 1; }
}

check_router() { # check_router NAME CF NPS TELCHECK [router options]
    local name=$1 cf=$2 nps=$3 tc=$4
    shift 4
    run "$name.np1" 1 flat 1 --capacity-factor "$cf" "$@"
    if [[ $nps == *2* ]]; then
        run "$name.np2" 2 flat 1 --capacity-factor "$cf" "$@"
        same "$name.np1" "$name.np2"
    fi
    run "$name.np4" 4 hier 2 --capacity-factor "$cf" "$@"
    same "$name.np1" "$name.np4"
    if [[ $nps == *8* ]]; then # 8 ranks on 2 nodes, one expert per rank
        run "$name.np8" 8 hier 4 --capacity-factor "$cf" "$@"
        same "$name.np1" "$name.np8"
    fi
    [ "$tc" = yes ] && telcheck "$name.np4"
    if [ "$cf" != 0 ] && [ "$name" != expert-choice ] && [ "$(field "$work/$name.np1.json" dropped)" = 0 ]; then
        echo "requiv: $name: expected drops at capacity factor $cf, got none"; exit 1
    fi
}

# softmax (the default) is covered by equiv.sh and exchange_equiv.sh
check_router switch 1.0 "2 4 8" no --router switch --top-k 1
check_router sigmoid 1.0 "2 4" no --router sigmoid --routed-scaling 1.5
check_router sigmoid-dropless 0 "4 8" no --router sigmoid
check_router group-limited 1.0 "2 4" yes --router group-limited --route-groups 4 --route-max-nodes 2 \
    --balance-bias 0.01 --shared-experts 1
check_router hash 1.0 "2 4" no --router hash --vocab-size 50
check_router expert-choice 0.5 "2 4 8" yes --router expert-choice

# expert-choice: each expert takes exactly min(C, G) tokens, C = ceil(0.5 * 2 * 128 / 8) = 16
want=$((3 * 2 * 8 * 16))
[ "$(field "$work/expert-choice.np1.json" routed)" = "$want" ] \
    || { echo "requiv: expert-choice routed $(field "$work/expert-choice.np1.json" routed), want $want"; exit 1; }
[ "$(field "$work/expert-choice.np1.json" dropped)" = 0 ] || { echo "requiv: expert-choice dropped pairs"; exit 1; }
[ "$(field "$work/expert-choice.np1.json" unrouted)" != 0 ] \
    || { echo "requiv: expert-choice at C = 16 < 128 tokens must leave tokens unrouted"; exit 1; }

# node-limited with M = 1 on 2 nodes = group-limited with 2 groups, 1 allowed
run node.ref 1 flat 1 --capacity-factor 1.0 --router group-limited --route-groups 2 --route-max-nodes 1
run node.np2 2 flat 1 --capacity-factor 1.0 --router node-limited --route-max-nodes 1
same node.ref node.np2
run node.np4 4 hier 2 --capacity-factor 1.0 --router node-limited --route-max-nodes 1
same node.ref node.np4
telcheck node.np4
run node.np4ucx 4 ucx 2 --capacity-factor 1.0 --router node-limited --route-max-nodes 1 \
    --route-samples 64
same node.ref node.np4ucx
"${PYTHON:-/usr/bin/python3}" - "$work/node.np4ucx.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
owner = f["placement/expert_owner"][:]; node = f["topology/node"][:]
ex = f["routes/expert"][:]            # [n][L][k]
nodes = node[owner[ex]]               # node of every selected expert
touched = np.array([[len(set(r)) for r in tok] for tok in nodes])
assert ex.shape[0] >= 64, ex.shape
assert touched.max() <= 1, f"a sampled token touched {touched.max()} nodes with M = 1"
ids = f["routes/token_id"][:]
assert ids.shape[0] == ex.shape[0] and ids.min() >= 0 and ids.max() < 32000, ids
print(f"requiv: node-limited M=1: {ex.shape[0]} sampled routes, each on 1 node")
PY
run sigmoid.np4_2dh 4 2dh 2 --capacity-factor 1.0 --router sigmoid --routed-scaling 1.5
same sigmoid.np1 sigmoid.np4_2dh

# balancing bias: starts at 0, moves by exactly +-0.01 or 0 per step (DeepSeek-V3 sign rule)
# against the step's own routed counts; the analyser reads the same rate back
run softmax.np4 4 flat 2 --capacity-factor 1.0 --router softmax --route-samples 64
"$ANALYZE" "$work/softmax.np4.h5" "$work/node.np4ucx.h5" "$work/group-limited.np4.h5" \
    --json "$work/an.json" >/dev/null || { echo "requiv: moerun-analyze failed"; exit 1; }
"${PYTHON:-/usr/bin/python3}" - "$work/group-limited.np4.h5" "$work/an.json" <<'PY'
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
b = f["steps/expert_bias"][:]; r = f["steps/routed"][:]
assert b.shape == r.shape, (b.shape, r.shape)
assert np.all(b[0] == 0), b[0]
for s in range(1, b.shape[0]):
    mean = r[s - 1].mean(axis=-1, keepdims=True)
    want = b[s - 1] + 0.01 * np.sign(mean - r[s - 1])
    assert np.allclose(b[s], want, atol=1e-6), (s, b[s], want)
runs = json.load(open(sys.argv[2]))["runs"]
assert [x["config"]["router"] for x in runs] == ["softmax", "node-limited", "group-limited"], \
    [x["config"]["router"] for x in runs]
bb = runs[2]["analyses"]["balance_bias"]
assert bb["status"] == "ok" and abs(bb["rate"] - 0.01) < 1e-6, bb
assert runs[0]["analyses"]["balance_bias"]["status"] == "missing"
assert runs[0]["analyses"]["specialisation"]["id_source"] == "routes/token_id"
rec = [x for x in runs[0]["recommendations"] if x["id"] == "node_limited"]
assert rec, "no node_limited recommendation for the softmax run on 2 nodes"
got = rec[0]["measured"]["inter_node_copies_per_token"]
want = runs[1]["analyses"]["routing_map"]["exchange_what_if"]["hier_inter_node_copies_per_token"]
assert abs(got - want) < 1e-12 and "measured with --router node-limited" in rec[0]["evidence"], (got, want)
print(f"requiv: bias trajectory ok; analyser: routers named, node_limited projected "
      f"{rec[0]['impact']['projected']:.3f} vs measured {got:.3f} copies/token")
PY
echo "requiv: ok"
