#!/usr/bin/env bash
# place_from_import.sh — a plan from an imported routing log runs, and proves itself.
#
# Env: MOERUN, IMPORT, PLACE, MPIEXEC, CHECK_TELEMETRY, PYTHON, FIXTURE (a JSON-lines log of
# 8 experts, 2 layers, top-2).
# Part 1: imports the log, plans for 2 nodes x 2 ranks with moerun-place (no ranks in a log:
# the uniform-origin model), checks the plan file's shape lines, then runs moerun on 4 ranks
# with --ranks-per-node 2 and --placement file:PLAN, and checks its telemetry (conservation,
# placement/expert_ranks equal to the plan's lists, rows_in vs processed).
# Part 2 (the proof): a skewed log of 2048 tokens (E 8, L 2, top-2, independent choices; the
# hot experts of each layer share one rank under contiguous) is imported and planned
# (--policy moerun, and --policy contiguous for the baseline's prediction); `moerun --replay`
# of the log runs on 2 nodes x 2 ranks with the plan and with contiguous (flat, dropless).
# Measured from steps/traffic: max/mean rank load (rows_in over the run, mean over layers)
# and inter-node bytes per step (bytes_inter). Asserts: both fall with the plan against
# contiguous, and each measured value is within 10% of moerun-place's prediction for its map.
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

# ---- part 2: plan from a skewed log, replay it with the plan and with contiguous ----------
"$PYTHON" - "$work/skew.jsonl" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(7)
# layer 0: experts 0 and 1 hot (both on rank 0 under contiguous); layer 1: experts 6 and 7
w = [np.array([8, 6, 1, 1, 1, 1, 1, 1], float), np.array([1, 1, 1, 1, 1, 1, 6, 8], float)]
with open(sys.argv[1], "w") as f:
    for t in range(2048):
        for l in range(2):
            p = w[l] / w[l].sum()
            a = int(rng.choice(8, p=p))
            q = p.copy(); q[a] = 0; q /= q.sum()
            b = int(rng.choice(8, p=q))
            f.write('{"layer": %d, "experts": [%d, %d], "gating_probs": [0.6, 0.4], '
                    '"token_idx": %d, "step": 0, "request_id": "r%d"}\n' % (l, a, b, t, t // 64))
PY
"$IMPORT" "$work/skew.jsonl" -o "$work/skew.h5" --experts 8 >"$work/import2.out" 2>&1 \
    || { cat "$work/import2.out"; fail "import of the skewed log"; }
for pol in moerun contiguous; do
    "$PLACE" "$work/skew.h5" --nodes 2 --ranks-per-node 2 --policy $pol -o "$work/$pol.txt" \
        --json "$work/$pol.json" >"$work/$pol.out" 2>&1 || { cat "$work/$pol.out"; fail "moerun-place --policy $pol"; }
done
for pol in moerun contiguous; do
    spec=contiguous
    [ $pol = moerun ] && spec="file:$work/moerun.txt"
    "$MPIEXEC" -np 4 "$MOERUN" --replay "$work/skew.h5" --experts 8 --top-k 2 --layers 2 \
        --d-model 16 --d-ffn 16 --tokens 64 --ranks-per-node 2 --exchange flat \
        --capacity-factor 0 --quiet --placement "$spec" --telemetry "$work/r_$pol.h5" \
        --summary-json "$work/r_$pol.json" >"$work/r_$pol.out" 2>&1 \
        || { cat "$work/r_$pol.out"; fail "moerun --replay with $pol"; }
    "$PYTHON" "$CHECK_TELEMETRY" "$work/r_$pol.h5" --summary "$work/r_$pol.json" >/dev/null \
        || fail "telemetry of the $pol replay"
done
"$PYTHON" - "$work" <<'PY' || fail "the plan from the imported log does not prove itself"
import json, sys
import h5py, numpy as np
w = sys.argv[1]
meas = {}
for pol in ("moerun", "contiguous"):
    f = h5py.File(f"{w}/r_{pol}.h5", "r")
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
    tr = f["steps/traffic"][()]                       # [steps][L][P][column]
    S, L = tr.shape[0], tr.shape[1]
    assert int(f["steps/dropped"][()].sum()) == 0, f"{pol}: drops in a dropless run"
    routed = int(f["steps/routed"][()].sum())
    rows = tr[:, :, :, cols.index("rows_in")].sum(axis=0)     # [L][P] over the run
    assert int(rows.sum()) == routed == 2048 * 2 * 2, (pol, int(rows.sum()), routed)
    mm = float(np.mean([rows[l].max() / rows[l].mean() for l in range(L)]))
    inter = float(tr[:, :, :, cols.index("bytes_inter")].sum()) / S
    pred = json.load(open(f"{w}/{pol}.json"))["total"]["after"]
    # a log has no d_model and one "step" (the whole log): the prediction's copies per token
    # times the replay's tokens per step (4 ranks x 64) and a row each way (d_model 16, 4 B)
    pred_inter = pred["flat_copies_per_token"] * 4 * 64 * 2 * 16 * 4
    meas[pol] = (mm, inter)
    for name, m, p in (("max/mean rank load", mm, pred["max_mean"]),
                       ("inter-node bytes per step", inter, pred_inter)):
        print(f"place_from_import: {pol}: {name} measured {m:.6g}, predicted {p:.6g} "
              f"({100 * (m / p - 1):+.1f}%)")
        assert abs(m / p - 1) <= 0.10, f"{pol}: {name}: measured {m} not within 10% of {p}"
for i, name in enumerate(("max/mean rank load", "inter-node bytes per step")):
    assert meas["moerun"][i] < meas["contiguous"][i], \
        f"{name}: plan {meas['moerun'][i]} does not fall against contiguous {meas['contiguous'][i]}"
print(f"place_from_import: plan vs contiguous: max/mean {meas['moerun'][0]:.3f} vs "
      f"{meas['contiguous'][0]:.3f}, inter-node bytes/step {meas['moerun'][1]:.0f} vs {meas['contiguous'][1]:.0f}")
PY
echo "place_from_import: ok"
