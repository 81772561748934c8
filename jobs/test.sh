#!/usr/bin/env bash
# test.sh — install dependencies (with the test extras), build with -Werror, run every
# test with ctest: unit tests, MPI tests on 1, 2, 4 and 8 oversubscribed ranks, telemetry
# checks. Extra arguments go to ctest (e.g. -L unit, -R equiv).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/jobs/install-deps.sh" --test
"$root/jobs/build.sh"
build=${MOERUN_BUILD_DIR:-$root/build}
ctest --test-dir "$build" --output-on-failure --timeout 600 "$@"
