#!/usr/bin/env bash
# smpi_test.sh — the SimGrid SMPI build of moerun (docs/simulation.md), end to end:
#  1. builds it (jobs/smpi/build.sh) into the test's build tree;
#  2. 8 simulated ranks (4 nodes x 2) with --sim-compute real, for flat, hier and 2dh, and the
#     same configuration under real mpirun: routed/processed/dropped per step, layer and
#     expert, and the traffic per rank, equal exactly (check_smpi.py counts), and
#     moerun-analyze reads the simulated file; with --sim-compute model (rows opaque: shared,
#     never copied or summed; flat, 2dh, hier pipelined, and hier unpipelined with one
#     transfer in flight, --hier-chunks 1 --overlap-window 1, against a real run of the same)
#     the first layer's counts and traffic equal the real run's too;
#  3. 64 simulated ranks (32 nodes x 2, E 32: half the ranks hold no expert, so flat's sparse
#     count exchange; top-8, flat with 2 transfers in flight per lane, modelled compute,
#     shared malloc): conservation, expert phase = charged FLOPs on every rank, inter-node
#     bytes (check_smpi.py model);
#  4. the SMPI build of a2a-bench (bench/smpi_validate.sh fits a platform with it) at 8
#     simulated ranks, flat, hier and 2dh: no wrong row in any exchange, and bytes per rank and
#     inter-node bytes equal a real run's of the same.
# Env: MOERUN, A2A_BENCH (MPI build), ANALYZE, MPIEXEC, PYTHON, SMPI_BUILD_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
check="${PYTHON:-/usr/bin/python3} $root/tests/smpi/check_smpi.py"
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-smpi-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export MOERUN_SMPI_BUILD_DIR=$SMPI_BUILD_DIR
"$root/jobs/smpi/build.sh" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }

cfg=(--experts 16 --top-k 2 --d-model 32 --d-ffn 48 --layers 2 --steps 4 --tokens 64
     --capacity-factor 1.0 --workload zipf:1.2 --seed 11 --quiet)
for ex in flat hier 2dh; do
    "$root/jobs/smpi/run.sh" --nodes 4 --ranks-per-node 2 -- "${cfg[@]}" --exchange "$ex" \
        --sim-compute real --telemetry "$work/sim-$ex.h5" >"$work/sim-$ex.out" 2>&1 \
        || { echo "smpi[$ex]: simulated run failed"; cat "$work/sim-$ex.out"; exit 1; }
    "$MPIEXEC" -np 8 "$MOERUN" "${cfg[@]}" --exchange "$ex" --ranks-per-node 2 \
        --telemetry "$work/real-$ex.h5" >"$work/real-$ex.out" 2>&1 \
        || { echo "smpi[$ex]: real run failed"; cat "$work/real-$ex.out"; exit 1; }
    $check counts "$work/sim-$ex.h5" "$work/real-$ex.h5"
    "$root/jobs/smpi/run.sh" --nodes 4 --ranks-per-node 2 -- "${cfg[@]}" --exchange "$ex" \
        --sim-compute model --telemetry "$work/model-$ex.h5" >"$work/model-$ex.out" 2>&1 \
        || { echo "smpi[$ex]: simulated run (model) failed"; cat "$work/model-$ex.out"; exit 1; }
    $check counts "$work/model-$ex.h5" "$work/real-$ex.h5" 1
done
# hier's unpipelined form (what bench/smpi_study.py simulates), point-to-point rounds of one
h1=(--hier-chunks 1 --overlap-window 1)
"$root/jobs/smpi/run.sh" --nodes 4 --ranks-per-node 2 -- "${cfg[@]}" --exchange hier "${h1[@]}" \
    --sim-compute model --telemetry "$work/model-hier1.h5" >"$work/model-hier1.out" 2>&1 \
    || { echo "smpi[hier:1]: simulated run (model) failed"; cat "$work/model-hier1.out"; exit 1; }
"$MPIEXEC" -np 8 "$MOERUN" "${cfg[@]}" --exchange hier "${h1[@]}" --ranks-per-node 2 \
    --telemetry "$work/real-hier1.h5" >"$work/real-hier1.out" 2>&1 \
    || { echo "smpi[hier:1]: real run failed"; cat "$work/real-hier1.out"; exit 1; }
$check counts "$work/model-hier1.h5" "$work/real-hier1.h5" 1
"$ANALYZE" "$work/sim-hier.h5" --json "$work/a.json" >"$work/a.out" \
    || { echo "smpi: moerun-analyze failed on a simulated file"; cat "$work/a.out"; exit 1; }
grep -q '"routed"' "$work/a.json" || { echo "smpi: no routed count in the analysis"; exit 1; }

"$root/jobs/smpi/run.sh" --nodes 32 --ranks-per-node 2 --shared-malloc 65536 -- \
    --experts 32 --top-k 8 --d-model 64 --d-ffn 128 --layers 2 --steps 3 --tokens 64 \
    --exchange flat --overlap-window 2 --quiet --telemetry "$work/m64.h5" >"$work/m64.out" 2>&1 \
    || { echo "smpi: 64-rank simulated run failed"; cat "$work/m64.out"; exit 1; }
$check model "$work/m64.h5"

ab=(--experts 16 --top-k 4 --d-model 32 --tokens 64 --workloads "uniform,zipf:1.2"
    --exchanges "flat,hier:1,hier:4,2dh" --iters 2 --warmup 1)
"$root/jobs/smpi/run.sh" --nodes 4 --ranks-per-node 2 --program a2a-bench -- "${ab[@]}" \
    --json "$work/ab-sim.json" >"$work/ab-sim.out" 2>&1 \
    || { echo "smpi: simulated a2a-bench failed"; cat "$work/ab-sim.out"; exit 1; }
"$MPIEXEC" -np 8 "$A2A_BENCH" "${ab[@]}" --ranks-per-node 2 --json "$work/ab-real.json" \
    >"$work/ab-real.out" 2>&1 || { echo "smpi: real a2a-bench failed"; cat "$work/ab-real.out"; exit 1; }
${PYTHON:-/usr/bin/python3} - "$work/ab-sim.json" "$work/ab-real.json" <<'PY'
import json, sys
sim, real = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda r: (r["workload"], r["tokens"], r["exchange"])
assert len(sim) == len(real) == 10, "a2a-bench rows: %d simulated, %d real, want 10" % (len(sim), len(real))
real = {key(r): r for r in real}
for r in sim:
    q = real[key(r)]
    assert r["wrong"] == 0 and q["wrong"] == 0, "%s: wrong rows %d simulated, %d real" % (key(r), r["wrong"], q["wrong"])
    for f in ("bytes_per_rank", "inter_node_bytes", "ranks", "nodes"):
        assert r[f] == q[f], "%s: %s %s simulated, %s real" % (key(r), f, r[f], q[f])
    assert r["time_us"]["median"] > 0, "%s: no simulated time" % (key(r),)
print("smpi: a2a-bench simulated = real (bytes, inter-node bytes, no wrong row) in %d rows" % len(sim))
PY
echo "smpi: ok"
