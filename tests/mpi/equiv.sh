#!/usr/bin/env bash
# equiv.sh — a P-rank run equals a 1-rank run of the same global batch.
#
# Usage: equiv.sh NAME GLOBAL_TOKENS "NP1 NP2 ..." -- [moerun options]
# Env: MOERUN, DUMPCMP, MPIEXEC, CHECK_TELEMETRY (optional: python checker), PYTHON.
# For each NP: runs `mpiexec -np NP moerun --tokens GLOBAL/NP ...`, then checks against the
# first NP of the list: the last layer output (dumpcmp, relative 1e-5) and the routed,
# processed and dropped totals (exactly equal); the telemetry file against the summary
# (check_telemetry.py) when given. Also reruns the first NP and requires identical counts
# and a bitwise identical output (same seed => same run).
set -euo pipefail
name=$1; global=$2; nps=${3//;/ }; shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-equiv-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

field() { # field FILE KEY -> the number after "KEY": in a cJSON document
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1
}

run() { # run TAG NP
    local tag=$1 np=$2 t=$((global / $2))
    shift 2
    if [ $((t * np)) -ne "$global" ]; then echo "equiv: $global tokens do not split over $np ranks"; exit 2; fi
    if ! "$MPIEXEC" -np "$np" "$MOERUN" --tokens "$t" --quiet --telemetry "$work/$tag.h5" \
          --summary-json "$work/$tag.json" --output-dump "$work/$tag.bin" "$@" \
          >"$work/$tag.out" 2>"$work/$tag.err"; then
        echo "equiv[$name]: run $tag (np $np) failed:"; cat "$work/$tag.err" "$work/$tag.out"; exit 1
    fi
    if [ -n "${CHECK_TELEMETRY:-}" ]; then
        "${PYTHON:-/usr/bin/python3}" "$CHECK_TELEMETRY" "$work/$tag.h5" --summary "$work/$tag.json" \
            || { echo "equiv[$name]: telemetry check failed for np $np"; exit 1; }
    fi
}

first=""
for np in $nps; do
    run "np$np" "$np" "$@"
    printf 'equiv[%s]: np %-2s routed %s processed %s dropped %s\n' "$name" "$np" \
        "$(field "$work/np$np.json" routed)" "$(field "$work/np$np.json" processed)" \
        "$(field "$work/np$np.json" dropped)"
    if [ -z "$first" ]; then first=$np; continue; fi
    for key in routed processed dropped steps_completed; do
        a=$(field "$work/np$first.json" $key); b=$(field "$work/np$np.json" $key)
        if [ -z "$a" ] || [ "$a" != "$b" ]; then
            echo "equiv[$name]: $key differs: np $first -> '$a', np $np -> '$b'"; exit 1
        fi
    done
    "$DUMPCMP" "$work/np$np.bin" "$work/np$first.bin" 1e-5 || { echo "equiv[$name]: outputs differ (np $np vs np $first)"; exit 1; }
done

# same seed, same rank count: identical counts and identical bits
run again "$first" "$@"
for key in routed processed dropped; do
    [ "$(field "$work/np$first.json" $key)" = "$(field "$work/again.json" $key)" ] \
        || { echo "equiv[$name]: rerun changed $key"; exit 1; }
done
cmp -s "$work/np$first.bin" "$work/again.bin" || { echo "equiv[$name]: rerun output differs"; exit 1; }
dropped=$(field "$work/np$first.json" dropped)
if [ "${EXPECT_DROPS:-}" = yes ] && [ "$dropped" = 0 ]; then
    echo "equiv[$name]: expected drops in this configuration, got none"; exit 1
fi
if [ "${EXPECT_DROPS:-}" = no ] && [ "$dropped" != 0 ]; then
    echo "equiv[$name]: expected no drops (dropless), got $dropped"; exit 1
fi
echo "equiv[$name]: ok"
