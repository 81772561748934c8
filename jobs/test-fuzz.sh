#!/usr/bin/env bash
# test-fuzz.sh — build the libFuzzer targets with clang (-DMOERUN_FUZZ=ON, into
# ./build-fuzz or $MOERUN_FUZZ_BUILD_DIR) and run each for FUZZ_SECONDS (default 60; half for
# fuzz_analyze and fuzz_import):
# first the regression inputs of tests/fuzz/regressions/<target>/ (each must pass), then
# fuzzing from the seeds in tests/fuzz/corpus/<target>/ with a fixed seed. A crash, a
# sanitizer report or a leak in moerun's code fails the run; the input is kept in
# $MOERUN_FUZZ_BUILD_DIR/artifacts/ to be added to regressions/ once fixed.
# Runs after jobs/install-deps.sh --test (clang, libclang-rt-14-dev).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOERUN_FUZZ_BUILD_DIR:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
CC=clang cmake -S "$root" -B "$build" -DMOERUN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_config fuzz_telemetry_reader fuzz_routing_log fuzz_analyze fuzz_import)
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
# leaks Open MPI and HDF5 keep are not the targets' (same suppressions as the ASan run)
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1"
rm -rf "$build/artifacts"; mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    corpus="$build/corpus/$name"
    rm -rf "$corpus"; mkdir -p "$corpus"
    cp "$root/tests/fuzz/corpus/$name/"* "$corpus/"
    if [ -d "$root/tests/fuzz/regressions/$name" ]; then
        echo "test-fuzz: $t: regression inputs"
        "$build/tests/fuzz/$t" -runs=0 -timeout=30 "$root/tests/fuzz/regressions/$name"/*
    fi
    tsecs=$secs
    case "$t" in fuzz_analyze | fuzz_import) tsecs=$(( (secs + 1) / 2 )) ;; esac
    echo "test-fuzz: $t: fuzzing for $tsecs s"
    "$build/tests/fuzz/$t" -seed=1 -max_total_time="$tsecs" -max_len=65536 -timeout=20 \
        -rss_limit_mb=4096 -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 \
        "$corpus" 2>&1 | grep -E "^(#[0-9]+ +(INITED|DONE)|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
    # grep above only filters the log; the fuzzer's own status decides
    "$build/tests/fuzz/$t" -runs=0 "$corpus" >/dev/null 2>&1 \
        || { echo "test-fuzz: $t: the corpus it produced no longer passes"; exit 1; }
    # crash-, leak-, timeout-, oom- are findings; slow-unit- (> 10 s) is only a note
    found=$(find "$build/artifacts" -name "$t-crash-*" -o -name "$t-leak-*" \
                 -o -name "$t-timeout-*" -o -name "$t-oom-*")
    if [ -n "$found" ]; then
        echo "test-fuzz: $t: found failing inputs:"; echo "$found"; exit 1
    fi
done
echo "test-fuzz: all targets ran ${secs} s without a finding"
