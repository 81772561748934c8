#!/usr/bin/env bash
# jobs/smpi/run.sh — run the SMPI build of moerun on a simulated cluster (docs/simulation.md).
#
#   jobs/smpi/run.sh [--nodes N] [--ranks-per-node R] [--preset ib100|eth25|testbed]
#                    [--topology T] [--node-cores C] [--platform-dir DIR] [--shared-malloc BYTES]
#                    [--program moerun|a2a-bench] -- PROGRAM ARGS...
#
# Generates the platform (jobs/smpi/platform.py) unless --platform-dir names one already made,
# then runs smpirun with N*R ranks and the settings moerun's model needs:
#   smpi/simulate-computation:no   compute is charged by moerun itself (runtime/sim.h)
#   smpi/bw-factor, lat-factor 0:1 no SimGrid correction factors: the platform's numbers hold
#   smpi/alltoallv:pair            pairwise MPI_Alltoallv (bounded concurrency: ~P flows,
#                                  not P^2, so 1024 ranks finish in seconds)
#   smpi/alltoall:bruck, allgather:bruck, allgatherv:mpich, allreduce:rdb, reduce:binomial,
#   bcast:binomial_tree, gather:ompi_binomial   O(P log P) messages for the small collectives
#                                  (SimGrid's defaults post O(P^2) at once)
#   maxmin/precision:1e-3
#   network/crosstraffic:0         no reverse acknowledgement flow per message (a second
#                                  solver variable each; ~15% of the simulation's CPU at 128
#                                  ranks, simulated step within 0.4%)
#   smpi/test, smpi/iprobe 1e-9   SimGrid charges 100 us of simulated time per MPI_Test* call
#                                  by default; flat's overlap polls with MPI_Testsome, which
#                                  then looked 10x slower than it is
#   smpi/shared-malloc-blocksize 64 MiB   the exchanges' row buffers under --sim-compute model
#                                  (the default) are SMPI_SHARED_MALLOC'd (comm/a2a_common.h):
#                                  one mapping per 64 MiB, not per 1 MiB (vm.max_map_count)
#   --shared-malloc BYTES          with --sim-compute model (the default): allocations of at
#                                  least BYTES are shared by all simulated ranks (contents
#                                  garbage, never read by the model) so 1024 ranks fit in
#                                  memory; 0 (the default) keeps every allocation private.
#   --program a2a-bench            runs the SMPI build of a2a-bench instead of moerun (its
#                                  MPI_Alltoallv baseline calibrates a platform against the
#                                  same benchmark measured, bench/smpi_validate.sh)
# Environment: MOERUN_SMPI_BUILD_DIR (default ./build-smpi), SMPIRUN (default smpirun),
# SMPI_EXTRA_CFG (more --cfg=... words for smpirun, space-separated).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${MOERUN_SMPI_BUILD_DIR:-$root/build-smpi}
nodes=4 rpn=2 preset=ib100 topology=flat pdir="" shared=0 cores=() prog=moerun
usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --nodes) nodes=$2; shift 2 ;;
        --ranks-per-node) rpn=$2; shift 2 ;;
        --preset) preset=$2; shift 2 ;;
        --topology) topology=$2; shift 2 ;;
        --node-cores) cores=(--node-cores "$2"); shift 2 ;;
        --platform-dir) pdir=$2; shift 2 ;;
        --shared-malloc) shared=$2; shift 2 ;;
        --program) prog=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "smpi/run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
case $nodes$rpn$shared in *[!0-9]*|"") echo "smpi/run.sh: --nodes, --ranks-per-node, --shared-malloc take integers" >&2; exit 2 ;; esac
case $prog in moerun | a2a-bench) ;; *) echo "smpi/run.sh: --program must be moerun or a2a-bench, got '$prog'" >&2; exit 2 ;; esac
[ -x "$build/$prog" ] || { echo "smpi/run.sh: $build/$prog not built (jobs/smpi/build.sh)" >&2; exit 1; }
tmp=""
if [ -z "$pdir" ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/moerun-smpi.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    pdir=$tmp
    "$root/jobs/smpi/platform.py" --nodes "$nodes" --ranks-per-node "$rpn" --preset "$preset" \
        --topology "$topology" "${cores[@]}" --out "$pdir" >/dev/null
fi
np=$(wc -l <"$pdir/hostfile")
if [ "$shared" -gt 0 ]; then
    # hier's and 2dh's metadata buffers must stay private: shared (garbage) contents would
    # corrupt them. Every exchange shares its row buffers itself under the model
    # (docs/simulation.md, Memory).
    prev=""
    for a in "$@"; do
        case "$prev=$a" in --exchange=hier|--exchange=2dh|*=--exchange=hier|*=--exchange=2dh)
            echo "smpi/run.sh: --shared-malloc works with --exchange flat only (hier's and 2dh's metadata must stay private; every exchange shares its rows itself under the model)" >&2; exit 2 ;;
        esac
        prev=$a
    done
fi
cfg=(--cfg=smpi/simulate-computation:no --cfg=smpi/bw-factor:0:1 --cfg=smpi/lat-factor:0:1
     --cfg=smpi/alltoallv:pair --cfg=smpi/alltoall:bruck --cfg=smpi/allgather:bruck
     --cfg=smpi/allgatherv:mpich --cfg=smpi/allreduce:rdb --cfg=smpi/reduce:binomial
     --cfg=smpi/bcast:binomial_tree --cfg=smpi/gather:ompi_binomial --cfg=maxmin/precision:1e-3
     --cfg=network/crosstraffic:0
     --cfg=smpi/test:1e-9 --cfg=smpi/iprobe:1e-9
     --cfg=smpi/privatization:dlopen --cfg=smpi/shared-malloc-blocksize:67108864)
# shellcheck disable=SC2206 # words on purpose
[ -n "${SMPI_EXTRA_CFG:-}" ] && cfg+=($SMPI_EXTRA_CFG)
if [ "$shared" -gt 0 ]; then
    cfg+=(--cfg=smpi/auto-shared-malloc-thresh:"$shared")
fi
exec "${SMPIRUN:-smpirun}" -np "$np" -platform "$pdir/platform.xml" -hostfile "$pdir/hostfile" \
    "${cfg[@]}" --log=root.thres:warning --log=smpi_config.thres:error "$build/$prog" "$@"
