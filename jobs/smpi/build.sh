#!/usr/bin/env bash
# jobs/smpi/build.sh — build moerun for SimGrid SMPI into ./build-smpi (or $MOERUN_SMPI_BUILD_DIR):
# the runtime, comm and experts code, unmodified, compiled with smpicc (docs/simulation.md).
# Warnings are errors, as in the MPI build. Extra arguments go to cmake configure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${MOERUN_SMPI_BUILD_DIR:-$root/build-smpi}
command -v smpicc >/dev/null || { echo "smpi/build.sh: smpicc not found (jobs/install-deps.sh --test installs libsimgrid-dev)" >&2; exit 1; }
CC=smpicc cmake -S "$root" -B "$build" -DMOERUN_SMPI=ON -DMOERUN_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)" --target moerun a2a-bench
