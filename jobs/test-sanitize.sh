#!/usr/bin/env bash
# test-sanitize.sh — the whole test suite again, built with AddressSanitizer and
# UndefinedBehaviorSanitizer (into ./build-asan or $MOERUN_ASAN_BUILD_DIR), with the
# invariant checks of MOE_ASSERT compiled in (-DMOERUN_ASSERTS=ON).
#
# Every MPI rank, tool and test program runs instrumented: any invalid access, any undefined
# behaviour (halt_on_error) and any leak in moerun's code fails the test that hit it. Leaks
# that Open MPI, PMIx, UCX, hwloc and HDF5 keep for the life of the process are suppressed
# by library (tests/sanitize/lsan.supp); so that their stacks can be named at exit, a shim
# preloaded into every process makes dlclose() a no-op (tests/sanitize/keep_dlopen.c).
# Extra arguments go to ctest (e.g. -R equiv). Runs after jobs/install-deps.sh --test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOERUN_ASAN_BUILD_DIR:-$root/build-asan}
MOERUN_BUILD_DIR="$build" "$root/jobs/build.sh" -DMOERUN_SANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOERUN_ASSERTS=ON
shim="$build/tests/sanitize/libmoe_keep_dlopen.so"
[ -f "$shim" ] || { echo "test-sanitize: $shim was not built" >&2; exit 1; }
export LD_PRELOAD="$shim"
export ASAN_OPTIONS="verify_asan_link_order=0:fast_unwind_on_malloc=0:detect_leaks=1:abort_on_error=0:exitcode=86"
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
ctest --test-dir "$build" --output-on-failure --timeout 900 "$@"
