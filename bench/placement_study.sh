#!/usr/bin/env bash
# placement_study.sh — the placement study of docs/benchmarks.md: on HOSTS emulated hosts x
# RANKS ranks with every host link shaped to RATE, a zipf-skewed workload, top-8 of 64 and
# top-4 of 32 experts: a measuring run (contiguous, hier, every route recorded), moerun-place
# plans with policies eplb and moerun at the same replica budget, then every map runs with
# flat and hier. Per row: step time (median over steps 1.., sum over layers of the slowest
# rank's total), inter-node bytes per step, rank max/mean load (rows_in), their ratios to
# contiguous with the same exchange (measured in the same study), and the planner's
# predictions. Not a test. Needs root (network namespaces). Run it on a quiet machine.
#
# Usage: bench/placement_study.sh [OUTDIR]   (default ./placement-study)
# Env:   BUILD (./build), HOSTS (4), RANKS (2), RATE (1gbit), WORKLOAD (zipf:1.0), TOKENS (128
#        per rank), D (256), STEPS (8), COPIES (2: copies per expert, slots = COPIES*E/ranks)
# Writes OUTDIR/top<k>of<E>/ (telemetry, plans, JSON) and OUTDIR/table.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$PWD/placement-study}
build=${BUILD:-$root/build}
hosts=${HOSTS:-4} ranks=${RANKS:-2} rate=${RATE:-1gbit} wl=${WORKLOAD:-zipf:1.0}
tokens=${TOKENS:-128} d=${D:-256} steps=${STEPS:-8} copies=${COPIES:-2}
np=$((hosts * ranks)); G=$((np * tokens))
emu="$root/jobs/cluster/emulate.sh"
state=$(mktemp -d "${TMPDIR:-/tmp}/moe-pstudy.XXXXXX")
mkdir -p "$out"
cleanup() { "$emu" --state "$state/tb" down >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT
"$emu" --state "$state/tb" up --hosts "$hosts" --slots "$ranks" --rate "$rate" >/dev/null

for ek in 64:8 32:4; do
    E=${ek%:*} k=${ek#*:}
    dir="$out/top${k}of${E}"; mkdir -p "$dir"
    common=(--experts "$E" --top-k "$k" --d-model "$d" --d-ffn "$d" --layers 2 --tokens "$tokens"
            --capacity-factor 0 --workload "$wl" --seed 11 --quiet)
    run() { # run TAG EXCHANGE STEPS [options]
        local tag=$1 ex=$2 n=$3; shift 3
        "$emu" --state "$state/tb" run --timeout 1800 -- mpirun -np "$np" "$build/moerun" \
            "${common[@]}" --steps "$n" --exchange "$ex" --telemetry "$dir/$tag.h5" \
            --summary-json "$dir/$tag.json" "$@" >"$dir/$tag.out" 2>&1
    }
    echo "== top-$k of $E: measuring run"
    run measure hier 4 --route-samples "$G"
    slots=$((copies * E / np))
    for pol in eplb moerun; do
        "$build/moerun-place" "$dir/measure.h5" --policy "$pol" --slots "$slots" \
            -o "$dir/plan-$pol.txt" --json "$dir/plan-$pol.json" >"$dir/plan-$pol.table"
    done
    "$build/moerun-place" "$dir/measure.h5" --policy contiguous -o "$dir/plan-contiguous.txt" \
        --json "$dir/plan-contiguous.json" >"$dir/plan-contiguous.table"
    for pol in contiguous eplb moerun; do
        for ex in flat hier; do
            echo "   $pol $ex"
            run "$pol-$ex" "$ex" "$steps" --placement "file:$dir/plan-$pol.txt"
        done
    done
done

/usr/bin/python3 - "$out" "$hosts" "$ranks" "$rate" "$wl" "$tokens" "$d" "$copies" <<'PY' | tee "$out/table.md"
import json, sys, os
import h5py, numpy as np
out, hosts, ranks, rate, wl, tokens, d, copies = sys.argv[1:]

def measure(p):
    f = h5py.File(p, "r")
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
    t = f["steps/traffic"][()]
    pc = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/phase_time"].attrs["columns"]]
    ph = f["steps/phase_time"][()][:, :, :, pc.index("total")]     # [S][L][P]
    step = ph.max(axis=2).sum(axis=1)                                # slowest rank per layer
    rows = t[:, :, :, cols.index("rows_in")].sum(axis=0).astype(float)
    mm = float((rows.max(axis=1) / rows.mean(axis=1)).mean())
    inter = float(t[:, :, :, cols.index("bytes_inter")].sum()) / t.shape[0]
    return float(np.median(step[1:])) * 1e3, inter, mm

print(f"Placement study: {hosts} emulated hosts x {ranks} ranks, links shaped to {rate}, workload "
      f"{wl}, {tokens} tokens per rank, d_model {d}, 2 layers, dropless; eplb and moerun at "
      f"{copies} copies per expert. Load average when the study ended: "
      f"{os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs; the 8 ranks alone oversubscribe "
      f"a 2-core machine, so compare ratios, not absolute times.\n")
print("| experts | policy | exchange | step ms | x contiguous | inter-node MB/step | x contiguous | predicted MB/step | rank max/mean | predicted |")
print("|---|---|---|---|---|---|---|---|---|---|")
for ek in ("64:8", "32:4"):
    E, k = ek.split(":")
    dr = os.path.join(out, f"top{k}of{E}")
    base = {}
    for pol in ("contiguous", "eplb", "moerun"):
        plan = json.load(open(os.path.join(dr, f"plan-{pol}.json")))["total"]["after"]
        for ex in ("flat", "hier"):
            ms, inter, mm = measure(os.path.join(dr, f"{pol}-{ex}.h5"))
            if pol == "contiguous":
                base[ex] = (ms, inter)
            pb = plan[f"{ex}_inter_bytes_per_step"]
            print(f"| {E} top-{k} | {pol} | {ex} | {ms:.1f} | {ms / base[ex][0]:.2f} | {inter / 1e6:.2f} | "
                  f"{inter / base[ex][1]:.2f} | {pb / 1e6:.2f} | {mm:.3f} | {plan['max_mean']:.3f} |")
PY
