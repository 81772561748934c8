#!/usr/bin/env bash
# run-default.sh — the main job: install dependencies, build, and run moerun on 4 ranks
# with its embedded defaults (8 experts, top-2, 2 layers, 256 tokens per rank, 20 steps).
# Writes telemetry to ./moerun.h5 and the summary to ./moerun-summary.json, prints the
# routing-health summary, then reads the file back with moerun-analyze.
# Extra arguments are passed to moerun (e.g. --workload zipf:1.2 --steps 100).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/jobs/install-deps.sh"
"$root/jobs/build.sh"
build=${MOERUN_BUILD_DIR:-$root/build}
mpi_env=(OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1)
if [ "$(id -u)" -eq 0 ]; then
    mpi_env+=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
fi
env "${mpi_env[@]}" mpirun -np 4 "$build/moerun" --telemetry moerun.h5 --overwrite \
    --summary-json moerun-summary.json "$@"
echo
"$build/moerun-analyze" moerun.h5
