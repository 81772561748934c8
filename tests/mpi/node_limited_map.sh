#!/usr/bin/env bash
# node_limited_map.sh — the node-limited router follows each layer's own map and replicas.
#
# Env: MOERUN, MPIEXEC, CHECK_TELEMETRY, CHECK_LOADS, PYTHON, MAP (tests/mpi/placements/
# replicas_e8_l2_p4.txt: 8 experts, 2 layers, 4 ranks on 2 nodes, layer 1 another map than
# layer 0, replicated experts in both).
# Runs --router node-limited --route-max-nodes 1 on 4 ranks (2 nodes), flat and hier, with
# every token's route recorded, and checks, independently of the runtime (Python, from
# placement/expert_ranks and routes/* in the telemetry):
#  - every (token, layer) sends its pairs to exactly 1 node under that layer's map and the
#    replica rule of docs/placement.md (a replica on the token's node is on-node);
#  - not vacuous: the old rule (layer 0's primary node for every layer) would have let some
#    layer-1 token reach 2 nodes, and tokens use replicated experts on both nodes;
#  - flat and hier route identically (same routes, same output within 1e-5: dumpcmp);
#  - conservation (check_telemetry.py) and rows_in per rank by the replica rule
#    (check_rank_loads.py);
#  - moerun-analyze's exchange what-if (flat/hier copies per token), its rank loads (hotspots)
#    and per-rank FLOPs (compute) use the same rule;
#  - a map whose layer 1 leaves a node too few experts for top-k on M nodes is refused
#    (exit 2, the per-layer route_max_nodes message, no telemetry file).
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-nlmap.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "node_limited_map: FAIL: $*"; exit 1; }
for ex in flat hier; do
    "$MPIEXEC" -np 4 "$MOERUN" --experts 8 --top-k 2 --layers 2 --d-model 16 --d-ffn 16 \
        --tokens 32 --steps 2 --seed 5 --workload zipf:1.0 --capacity-factor 0 --quiet \
        --router node-limited --route-max-nodes 1 --ranks-per-node 2 --exchange $ex \
        --placement "file:$MAP" --route-samples 128 --telemetry "$work/$ex.h5" \
        --summary-json "$work/$ex.json" --output-dump "$work/$ex.bin" >"$work/$ex.out" 2>&1 \
        || { cat "$work/$ex.out"; fail "moerun --exchange $ex"; }
    "$PYTHON" "$CHECK_TELEMETRY" "$work/$ex.h5" --summary "$work/$ex.json" >/dev/null \
        || fail "telemetry of the $ex run"
    "$PYTHON" "$CHECK_LOADS" "$work/$ex.h5" 2 >/dev/null || fail "rows_in of the $ex run"
done
"$DUMPCMP" "$work/hier.bin" "$work/flat.bin" 1e-5 >/dev/null || fail "hier output differs from flat"
"$PYTHON" - "$work" <<'PY' || fail "routes against the per-layer map"
import sys
import h5py, numpy as np
w = sys.argv[1]
routes = {}
for ex in ("flat", "hier"):
    f = h5py.File(f"{w}/{ex}.h5", "r")
    T, rpn = int(f.attrs["tokens_per_rank"]), 2
    er = f["placement/expert_ranks"][()]
    token, expert = f["routes/token"][()], f["routes/expert"][()]
    step = f["routes/step"][()]
    routes[ex] = (step, token, expert)
    assert len(token) == 2 * 4 * T, f"{ex}: {len(token)} routes, want every token"
    old_two = both_used = 0
    for i in range(len(token)):
        g = int(token[i])
        node = (g // T) // rpn
        for l in range(expert.shape[1]):
            dest = set()
            for e in expert[i, l]:
                reps = [int(x) for x in er[l, int(e)] if x >= 0]
                near = [r for r in reps if r // rpn == node]
                cand = near if near else reps
                dest.add(cand[g % len(cand)] // rpn)
                if len({r // rpn for r in reps}) > 1:
                    both_used += 1
            assert len(dest) == 1, f"{ex}: token {g} layer {l} on node {node} reaches nodes {dest}"
            if l == 1 and len({int(er[0, int(e)][0]) // rpn for e in expert[i, l]}) > 1:
                old_two += 1
    assert old_two > 0, f"{ex}: no layer-1 token would break the old layer-0 rule: test is vacuous"
    assert both_used > 0, f"{ex}: no token used an expert replicated on both nodes"
    print(f"node_limited_map: {ex}: {len(token)} tokens x {expert.shape[1]} layers each on 1 node "
          f"of its layer's map; {old_two} layer-1 tokens would reach 2 nodes by layer 0's "
          f"primaries; {both_used} pairs of experts replicated on both nodes")
for a, b in zip(routes["flat"], routes["hier"]):
    assert np.array_equal(a, b), "flat and hier recorded different routes"
PY
# moerun-analyze's exchange what-if follows each layer's map and replicas too: a top-k run
# (routes of every token recorded) analysed, its flat/hier inter-node copies per token
# against the same rule computed here from routes/* and placement/expert_ranks
"$MPIEXEC" -np 4 "$MOERUN" --experts 8 --top-k 3 --layers 2 --d-model 16 --d-ffn 16 \
    --tokens 32 --steps 2 --seed 7 --workload uniform --capacity-factor 0 --quiet \
    --ranks-per-node 2 --placement "file:$MAP" --route-samples 128 \
    --telemetry "$work/topk.h5" >"$work/topk.out" 2>&1 || { cat "$work/topk.out"; fail "moerun top-k"; }
"$ANALYZE" "$work/topk.h5" --json "$work/topk.json" >"$work/topk.aout" 2>&1 \
    || { cat "$work/topk.aout"; fail "moerun-analyze"; }
"$PYTHON" - "$work" <<'PY' || fail "analyser's exchange what-if against the per-layer map"
import json, sys
import h5py
w = sys.argv[1]
f = h5py.File(f"{w}/topk.h5", "r")
T, rpn, P = int(f.attrs["tokens_per_rank"]), 2, 4
er = f["placement/expert_ranks"][()]
own0 = f["placement/expert_owner"][()]
token, expert = f["routes/token"][()], f["routes/expert"][()]
def rank_of(l, e, node, g):
    reps = [int(x) for x in er[l, e] if x >= 0]
    near = [r for r in reps if r // rpn == node]
    cand = near if near else reps
    return cand[g % len(cand)]
want = {"remote": 0.0, "inter": 0.0, "hier": 0.0}
old_inter = n = 0
for i in range(len(token)):
    g = int(token[i]); src = g // T; node = src // rpn
    for l in range(expert.shape[1]):
        ranks = [rank_of(l, int(e), node, g) for e in expert[i, l] if e >= 0]
        want["remote"] += sum(r != src for r in ranks)
        want["inter"] += sum(r // rpn != node for r in ranks)
        want["hier"] += len({r // rpn for r in ranks} - {node})
        old_inter += sum(int(own0[int(e)]) // rpn != node for e in expert[i, l] if e >= 0)
        n += 1
doc = json.load(open(f"{w}/topk.json"))
run = doc["runs"][0] if "runs" in doc else doc
xo = run["analyses"]["routing_map"]["exchange_what_if"]
got = {"remote": xo["flat_remote_pairs_per_token"], "inter": xo["flat_inter_node_copies_per_token"],
       "hier": xo["hier_inter_node_copies_per_token"]}
assert xo["routes"] == n, (xo["routes"], n)
assert "expert_ranks" in xo["shape"]["placement"], xo["shape"]
for k in want:
    assert abs(got[k] - want[k] / n) < 1e-9, (k, got[k], want[k] / n)
assert abs(old_inter / n - want["inter"] / n) > 0.05, "layer 0's map gives the same copies: vacuous"
print(f"node_limited_map: analyser what-if per layer: flat remote {got['remote']:.4f}, inter-node "
      f"{got['inter']:.4f} (layer 0's map would say {old_inter / n:.4f}), hier {got['hier']:.4f}")
# rank loads (hotspots) and per-rank FLOPs (compute) under each layer's map and the replica
# rule in expectation over tokens spread evenly (a node's share of the ranks to its replicas)
import numpy as np
routed, processed = f["steps/routed"][()], f["steps/processed"][()]
node = f["topology/node"][()]
def loads(x):
    rl = np.zeros(P); rl0 = np.zeros(P)
    for l in range(x.shape[1]):
        for e in range(x.shape[2]):
            w = float(x[:, l, e].sum()); reps = [int(r) for r in er[l, e] if r >= 0]
            rl0[int(own0[e])] += w
            for nd in sorted(set(int(v) for v in node)):
                share = float((node == nd).sum()) / P
                near = [r for r in reps if node[r] == nd]
                cand = near if near else reps
                for r in cand:
                    rl[r] += w * share / len(cand)
    return rl, rl0
rl, rl0 = loads(routed)
hs = run["analyses"]["hotspots"]
assert "expert_ranks" in hs["ranks_placement"], hs["ranks_placement"]
for o in hs["ranks"]:
    p = int(o["rank"])
    assert abs(o["load_over_mean"] - rl[p] * P / rl.sum()) < 1e-9, (p, o["load_over_mean"], rl[p] * P / rl.sum())
assert max(abs(rl - rl0)) / rl.sum() > 0.02, "layer 0's owners give the same rank loads: vacuous"
cp = run["analyses"]["compute"]
ph = f["steps/phase_time"][()]
cols = [c.decode() if isinstance(c, bytes) else c for c in f["steps/phase_time"].attrs["columns"]]
tex = ph[:, :, :, cols.index("expert")].sum(axis=(0, 1))
pl, _ = loads(processed)
fpp = cp["flops_per_pair"]
assert "expert_ranks" in cp["gflops_per_rank_placement"], cp["gflops_per_rank_placement"]
for p in range(P):
    want_g = fpp * pl[p] / tex[p] / 1e9
    assert abs(cp["gflops_per_rank"][p] - want_g) <= 1e-9 * max(1.0, want_g), (p, cp["gflops_per_rank"][p], want_g)
print("node_limited_map: analyser rank loads " + " ".join(f"{rl[p] * P / rl.sum():.3f}" for p in range(P)) +
      " (layer 0's owners: " + " ".join(f"{rl0[p] * P / rl0.sum():.3f}" for p in range(P)) + "), FLOPs per rank by the same rule")
PY
# refused before any compute: at layer 1 node 0 holds only expert 0 (layer 0 is contiguous,
# which the old layer-0 rule accepted), so a token there may find 1 expert for top-k 2
cat >"$work/thin.txt" <<'MAP'
moerun-placement 1
experts 8
layers 2
ranks 4
nodes 2
slots 4
layer 0: 0 0 1 1 2 2 3 3
layer 1: 0 2 2 2 3 3 3 3
MAP
rc=0
"$MPIEXEC" -np 4 "$MOERUN" --experts 8 --top-k 2 --layers 2 --d-model 16 --d-ffn 16 \
    --tokens 32 --steps 1 --quiet --router node-limited --route-max-nodes 1 \
    --ranks-per-node 2 --placement "file:$work/thin.txt" --telemetry "$work/thin.h5" \
    >"$work/thin.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat "$work/thin.out"; fail "a map whose layer 1 leaves node 0 one expert: exit $rc, want 2"; }
grep -q "route_max_nodes: at layer 1 a token on node 0 may find only 1 experts" "$work/thin.out" \
    || { cat "$work/thin.out"; fail "no per-layer route_max_nodes message"; }
[ ! -e "$work/thin.h5" ] || fail "the refused run left a telemetry file"
echo "node_limited_map: ok"
