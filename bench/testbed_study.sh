#!/usr/bin/env bash
# testbed_study.sh — the exchange study of docs/benchmarks.md on the emulated multi-host test
# bed: a2a-bench on HOSTS emulated hosts x RANKS ranks, unshaped and with every host link
# shaped to RATE, for top-8 of 64, top-4 of 32 and top-2 of 16 experts, every exchange.
# Not a test. Needs root (network namespaces). Run it on a quiet machine.
#
# Usage: bench/testbed_study.sh [OUTDIR]   (default ./testbed-study)
# Env:   BUILD (build dir, default ./build), HOSTS (4), RANKS (2), RATE (1gbit), GBIT (1),
#        TOKENS (64,256), WORKLOADS (uniform,zipf:1.2), EXCHANGES (flat,hier,2dh,ucx),
#        ITERS (5), D (1024)
# Writes OUTDIR/<shaping>-top<k>of<E>.{txt,json}: the nccl-tests-style tables and JSON.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$PWD/testbed-study}
build=${BUILD:-$root/build}
hosts=${HOSTS:-4} ranks=${RANKS:-2} rate=${RATE:-1gbit} gbit=${GBIT:-1}
tokens=${TOKENS:-64,256} workloads=${WORKLOADS:-uniform,zipf:1.2}
exchanges=${EXCHANGES:-flat,hier,2dh,ucx} iters=${ITERS:-5} d=${D:-1024}
emu="$root/jobs/cluster/emulate.sh"
state=$(mktemp -d "${TMPDIR:-/tmp}/moe-study.XXXXXX")
mkdir -p "$out"
cleanup() { "$emu" --state "$state/tb" down >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

for shaping in unshaped "$rate"; do
    if [ "$shaping" = unshaped ]; then
        "$emu" --state "$state/tb" up --hosts "$hosts" --slots "$ranks" >/dev/null
        link=()
    else
        "$emu" --state "$state/tb" up --hosts "$hosts" --slots "$ranks" --rate "$rate" >/dev/null
        link=(--link-gbit "$gbit")
    fi
    for ek in 64:8 32:4 16:2; do
        E=${ek%:*} k=${ek#*:}
        tag="$shaping-top${k}of${E}"
        echo "== $tag"
        "$emu" --state "$state/tb" run --timeout 1800 -- mpirun -np $((hosts * ranks)) \
            "$build/a2a-bench" --experts "$E" --top-k "$k" --d-model "$d" --tokens "$tokens" \
            --workloads "$workloads" --exchanges "$exchanges" --iters "$iters" --warmup 1 \
            "${link[@]}" --json "$out/$tag.json" | tee "$out/$tag.txt"
    done
    "$emu" --state "$state/tb" down >/dev/null
done
echo "testbed_study: results in $out"
