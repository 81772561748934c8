#!/usr/bin/env bash
# overlap_equiv.sh — the flat exchange overlapped with expert compute (--overlap 1) gives
# bitwise the output of the non-overlapped path (--overlap 0), with the same routed,
# processed and dropped totals, and its telemetry passes check_telemetry (phases add up,
# the wait and stage columns within their phases).
#
# Usage: overlap_equiv.sh NAME GLOBAL_TOKENS "NPS" -- [moerun options]
# Env: MOERUN, MPIEXEC, PYTHON, CHECK_TELEMETRY.
set -euo pipefail
name=$1; global=$2; nps=$3; shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-overlap-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

field() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1; }

for np in $nps; do
    for ov in 0 1; do
        tag="np$np.ov$ov"
        if ! "$MPIEXEC" -np "$np" "$MOERUN" --tokens $((global / np)) --quiet --exchange flat \
              --overlap "$ov" --telemetry "$work/$tag.h5" --summary-json "$work/$tag.json" \
              --output-dump "$work/$tag.bin" "$@" >"$work/$tag.out" 2>"$work/$tag.err"; then
            echo "overlap[$name]: np $np --overlap $ov failed:"; cat "$work/$tag.err"; exit 1
        fi
    done
    for key in routed processed dropped; do
        a=$(field "$work/np$np.ov0.json" $key); b=$(field "$work/np$np.ov1.json" $key)
        if [ -z "$a" ] || [ "$a" != "$b" ]; then
            echo "overlap[$name]: np $np: $key differs: --overlap 0 '$a', --overlap 1 '$b'"; exit 1
        fi
    done
    cmp -s "$work/np$np.ov0.bin" "$work/np$np.ov1.bin" \
        || { echo "overlap[$name]: np $np: --overlap 1 output is not bitwise --overlap 0's"; exit 1; }
    "$PYTHON" "$CHECK_TELEMETRY" "$work/np$np.ov1.h5" --summary "$work/np$np.ov1.json" >/dev/null \
        || { "$PYTHON" "$CHECK_TELEMETRY" "$work/np$np.ov1.h5" --summary "$work/np$np.ov1.json"; exit 1; }
    echo "overlap[$name]: np $np: routed $(field "$work/np$np.ov1.json" routed)," \
         "dropped $(field "$work/np$np.ov1.json" dropped), output bitwise equal, telemetry ok"
done
