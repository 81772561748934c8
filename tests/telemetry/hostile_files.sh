#!/usr/bin/env bash
# hostile_files.sh — moerun-analyze on every file in tests/fuzz/regressions/telemetry_reader/
# (inputs the fuzzer found that crash libhdf5 or once crashed the reader): each must end
# with exit 1 and one "moerun-analyze: FILE: ..." message, never a signal.
# Usage: hostile_files.sh ANALYZE DIR
set -uo pipefail
analyze=$1 dir=$2 fail=0 n=0
for f in "$dir"/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    out=$("$analyze" "$f" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne 1 ] || [[ "$out" != "moerun-analyze: $f: "* ]]; then
        echo "FAIL: $f: exit $rc, message: $out"; fail=1
    else
        echo "ok:   $out"
    fi
done
[ "$n" -gt 0 ] || { echo "hostile_files: no files in $dir"; exit 1; }
exit "$fail"
