#!/usr/bin/env bash
# build.sh — configure and build moerun with CMake into ./build (or $MOERUN_BUILD_DIR).
# Warnings are errors (MOERUN_WERROR=ON), as in CI. Extra arguments go to cmake configure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOERUN_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DMOERUN_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
