#!/usr/bin/env bash
# smpi_validate.sh — simulated against measured on the emulated hosts (docs/simulation.md).
# Not a test: run it on a quiet machine, as root (network namespaces).
#
#  1. stands up HOSTS x RANKS emulated hosts (jobs/cluster/emulate.sh) with links shaped to RATE;
#  2. calibrates the platform from the test bed itself: one-way latency = half the ping RTT
#     between two hosts; NIC bandwidth fitted to a2a-bench's plain MPI_Alltoallv baseline
#     (median time): first the inter-node bytes a host sends over the measured time, then
#     scaled by simulated / measured time of the same a2a-bench run simulated on the
#     platform (the SMPI build of a2a-bench; two rounds, then a check, in calibration.txt);
#     CPU: the expert kernel's GFLOP/s (thread CPU time, i.e. one core's rate) and the memcpy
#     GB/s of one moerun-bench rank -> --sim-gflops, --sim-copy-gbs; the test bed's HOSTS x
#     RANKS ranks share this machine's cores (nproc), so each simulated host gets
#     nproc / HOSTS cores for its RANKS ranks (platform.py --node-cores): compute and copies
#     are stretched in the simulation as they are on the test bed;
#  3. for each case (top-8 of 64, top-2 of 16) and exchange (EXCHANGES: flat, hier, 2dh):
#     runs moerun for real on the test bed and simulated (--sim-compute real, same configuration) on the
#     calibrated platform; compares dispatch + combine per step (mean over ranks and steps
#     after the first WARM), the same without combine's wait for other ranks' experts
#     (combine_wait: the exchange alone), and the routed/processed/dropped counts (must be
#     equal). flat runs with --overlap 0: Open MPI's TCP transport moves data only inside
#     MPI calls, so on the test bed nothing travels while a rank computes, whereas the model
#     lets the network progress during compute (it would hide flat's transfers behind the
#     experts). The simulation's eager/rendezvous split follows the test bed's Open MPI
#     TCP eager limit (smpi/async-small-thresh, smpi/send-is-detached-thresh). SimGrid's
#     cross-traffic (acknowledgements on the reverse path) stays on: the test bed is TCP.
# Usage: bench/smpi_validate.sh [OUTDIR]  Env: BUILD (./build), HOSTS (4), RANKS (2),
#        RATE (1gbit), TOKENS (256), D (1024), FFN (1024), STEPS (10), WARM (2: steps left out
#        of the comparison; the first steps grow and page-fault the exchange buffers),
#        EXCHANGES ("flat hier 2dh"), VAL_ARGS (more moerun options for both sides, e.g.
#        "--bind none")
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$PWD/smpi-validate}
build=${BUILD:-$root/build}
hosts=${HOSTS:-4} ranks=${RANKS:-2} rate=${RATE:-1gbit} tokens=${TOKENS:-256}
d=${D:-1024} ffn=${FFN:-1024} steps=${STEPS:-10} warm=${WARM:-2}
exchanges=${EXCHANGES:-flat hier 2dh}
read -ra val_args <<<"${VAL_ARGS:-}"
np=$((hosts * ranks))
emu="$root/jobs/cluster/emulate.sh"
py=/usr/bin/python3
state=$(mktemp -d "${TMPDIR:-/tmp}/moe-smpival.XXXXXX")
mkdir -p "$out"
cleanup() { "$emu" --state "$state/tb" down >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT
"$emu" --state "$state/tb" up --hosts "$hosts" --slots "$ranks" --rate "$rate" >/dev/null

rtt=$("$emu" --state "$state/tb" exec h0 -- ping -c 20 -i 0.05 -q 10.251.0.11 | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
lat_us=$(awk -v r="$rtt" 'BEGIN { printf "%.1f", r * 1000 / 2 }')
"$emu" --state "$state/tb" run --timeout 900 -- mpirun -np "$np" "$build/a2a-bench" --experts 64 \
    --top-k 8 --d-model "$d" --tokens "$tokens" --workloads uniform --exchanges flat --iters 5 \
    --warmup 1 --json "$out/calib.json" >"$out/calib.txt"
# Open MPI's TCP eager limit on the test bed (jobs/cluster/emulate.sh sets 1 MiB unless the
# caller set one): messages up to it go without waiting for the receiver, larger ones by
# rendezvous; SMPI models the same split with these two thresholds
eager=${OMPI_MCA_btl_tcp_eager_limit:-1048576}
[[ "$eager" =~ ^[0-9]+$ ]] || { echo "smpi_validate: OMPI_MCA_btl_tcp_eager_limit must be a byte count, got '$eager'"; exit 2; }
# and MPI_Alltoallv as Open MPI picks its algorithm (the test bed runs Open MPI; run.sh's
# pairwise default is for 1000 ranks: at 8 it put flat's top-2 exchange 1.4x over the test bed)
simcfg="--cfg=network/crosstraffic:1 --cfg=smpi/async-small-thresh:$eager --cfg=smpi/send-is-detached-thresh:$eager --cfg=smpi/alltoallv:ompi"
# a2a_time JSON: the MPI_Alltoallv baseline's median time (us); with FLAT also flat's
# inter-node bytes
a2a_time() {
    $py - "$@" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
a = [r for r in rows if r["exchange"] == "alltoallv"][-1]
f = [r for r in rows if r["exchange"] == "flat"][-1]
print("%.1f %d" % (a["time_us"]["median"], f["inter_node_bytes"]))
PY
}
read -r meas_us inter_bytes < <(a2a_time "$out/calib.json")
# first guess: the bytes a host sends to other hosts per exchange (dispatch + combine: flat's
# inter-node bytes / hosts) over the measured MPI_Alltoallv time
nic_gbit=$(awk -v b="$inter_bytes" -v h="$hosts" -v t="$meas_us" 'BEGIN { printf "%.4f", b / h * 8 / (t * 1e-6) / 1e9 }')
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 \
    mpirun -np 1 "$build/moerun-bench" --experts 64 --top-k 8 --tokens $((tokens * np)) --d-model "$d" \
    --d-ffn "$ffn" --layers 1 --steps 3 --quiet >"$out/calib-cpu.txt"
gflops=$(awk '/expert kernel .*CPU time GFLOP/ { print $(NF-3) }' "$out/calib-cpu.txt")
copy_gbs=$(awk '/memcpy 64 MiB/ { print $(NF-1) }' "$out/calib-cpu.txt")
node_cores=$(awk -v c="$(nproc)" -v h="$hosts" 'BEGIN { printf "%.4g", c / h }')
if [ -z "$gflops" ] || [ -z "$copy_gbs" ]; then echo "smpi_validate: no CPU rates in $out/calib-cpu.txt"; exit 1; fi
platform() {
    "$root/jobs/smpi/platform.py" --nodes "$hosts" --ranks-per-node "$ranks" --preset testbed \
        --nic-gbit "$nic_gbit" --nic-lat-us "$lat_us" --node-cores "$node_cores" \
        --out "$out/platform" >/dev/null
}
# fit: the same a2a-bench run simulated on the platform; the NIC bandwidth is scaled by
# simulated / measured MPI_Alltoallv time (twice: the time is nearly, not exactly, inverse in
# the bandwidth), then checked once more; the simulated pairwise schedule, the acknowledgement
# traffic and the latencies are so folded into the one fitted number
sim_a2a() {
    SMPI_EXTRA_CFG="$simcfg ${SMPI_EXTRA_CFG:-}" "$root/jobs/smpi/run.sh" --platform-dir "$out/platform" \
        --program a2a-bench -- --experts 64 --top-k 8 --d-model "$d" --tokens "$tokens" \
        --workloads uniform --exchanges flat --iters 5 --warmup 1 --json "$out/calib-sim.json" \
        >"$out/calib-sim.txt" 2>&1
    a2a_time "$out/calib-sim.json" | cut -d' ' -f1
}
nic0=$nic_gbit
for _ in 1 2; do
    platform
    sim_us=$(sim_a2a)
    nic_gbit=$(awk -v n="$nic_gbit" -v s="$sim_us" -v m="$meas_us" 'BEGIN { printf "%.4f", n * s / m }')
done
platform
sim_us=$(sim_a2a)
echo "calibrated: one-way latency $lat_us us (ping RTT $rtt ms); NIC $nic_gbit Gbit/s (bytes/time" \
     "$nic0, fitted so that MPI_Alltoallv takes $sim_us us simulated vs $meas_us measured, median);" \
     "CPU $gflops GFLOP/s and $copy_gbs GB/s per core, $node_cores cores per host" | tee "$out/calibration.txt"

printf '%-12s %-5s %12s %12s %8s %14s %14s %8s %s\n' case exchange measured_ms simulated_ms ratio \
    meas_nowait_ms sim_nowait_ms ratio counts | tee "$out/table.txt"
for ek in 64:8 16:2; do
    E=${ek%:*} k=${ek#*:}
    for ex in $exchanges; do
        tag="top${k}of${E}-$ex"
        args=(--experts "$E" --top-k "$k" --tokens "$tokens" --d-model "$d" --d-ffn "$ffn"
              --layers 1 --steps "$steps" --exchange "$ex" --overlap 0 --quiet --route-samples 0
              "${val_args[@]}")
        rm -f "$out/$tag-real.h5" "$out/$tag-sim.h5"
        "$emu" --state "$state/tb" run --timeout 900 -- mpirun -np "$np" "$build/moerun" "${args[@]}" \
            --telemetry "$out/$tag-real.h5" >/dev/null
        SMPI_EXTRA_CFG="$simcfg ${SMPI_EXTRA_CFG:-}" \
        "$root/jobs/smpi/run.sh" --platform-dir "$out/platform" -- "${args[@]}" --sim-compute real \
            --sim-gflops "$gflops" --sim-copy-gbs "$copy_gbs" --telemetry "$out/$tag-sim.h5" >/dev/null 2>&1
        $py - "$out/$tag-real.h5" "$out/$tag-sim.h5" "$tag" "$warm" <<'PY' | tee -a "$out/table.txt"
import sys, h5py, numpy as np
def comm(p):
    f = h5py.File(p, "r")
    c = [x.decode() if isinstance(x, bytes) else x for x in f["steps/phase_time"].attrs["columns"]]
    ph = f["steps/phase_time"][()][int(sys.argv[4]):]
    t = (ph[:, :, :, c.index("dispatch")] + ph[:, :, :, c.index("combine")]).sum(axis=1)
    w = ph[:, :, :, c.index("combine_wait")].sum(axis=1)  # counts_wait is part of counts
    return t.mean(), (t - w).mean(), f
m, mn, fr = comm(sys.argv[1]); s, sn, fs = comm(sys.argv[2])
same = all(np.array_equal(fr["steps/" + k][()], fs["steps/" + k][()]) for k in ("routed", "processed", "dropped"))
print("%-12s %-5s %12.3f %12.3f %8.2f %14.3f %14.3f %8.2f %s" % (sys.argv[3].rsplit("-", 1)[0],
      sys.argv[3].rsplit("-", 1)[1], m * 1e3, s * 1e3, s / m, mn * 1e3, sn * 1e3, sn / mn,
      "equal" if same else "DIFFER"))
PY
    done
done
