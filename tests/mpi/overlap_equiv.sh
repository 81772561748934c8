#!/usr/bin/env bash
# overlap_equiv.sh — the flat exchange overlapped with expert compute (--overlap 1) gives
# bitwise the output of the non-overlapped path (--overlap 0), with the same routed,
# processed and dropped totals, and its telemetry passes check_telemetry (phases add up,
# the wait and stage columns within their phases).
#
# With SLOTS="NP:C:OV ..." also --compute-slots C at NP ranks with --overlap OV (comm/slots.h):
# the output bitwise that of NP ranks without slots (--compute-slots 0) and within 1e-5 of a
# 1-rank run's (dumpcmp, as equiv.sh), the 1-rank run's routed, processed and dropped totals,
# routed = processed + dropped, and the slot limit held: the summary's compute_slots is C, its
# most ranks seen computing at once is 1..C, and exactly 1 when C = 1 (not vacuous). C = auto
# expects the node's cores (hwloc-calc over this shell's binding) when NP outnumbers them, else off;
# then --wait-sleep-us auto at 4 ranks: bitwise MPI's waits, the value in effect reported.
#
# Usage: overlap_equiv.sh NAME GLOBAL_TOKENS "NPS" -- [moerun options]
# Env: MOERUN, MPIEXEC, PYTHON, CHECK_TELEMETRY; SLOTS and DUMPCMP (optional, together).
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

[ -n "${SLOTS:-}" ] || exit 0
run1() { # run1 TAG NP [options]: flat, no telemetry
    local tag=$1 np=$2; shift 2
    if ! "$MPIEXEC" -np "$np" "$MOERUN" --tokens $((global / np)) --quiet --exchange flat \
          --telemetry none --summary-json "$work/$tag.json" --output-dump "$work/$tag.bin" \
          "$@" >"$work/$tag.out" 2>"$work/$tag.err"; then
        echo "overlap[$name]: $tag failed:"; cat "$work/$tag.err"; exit 1
    fi
}
run1 ref1 1 "$@" --compute-slots 0
for spec in $SLOTS; do
    np=${spec%%:*}; rest=${spec#*:}; c=${rest%%:*}; ov=${rest#*:}; tag="slots.np$np.c$c.ov$ov"
    [ -f "$work/ref$np.bin" ] || run1 "ref$np" "$np" "$@" --compute-slots 0
    run1 "$tag" "$np" "$@" --overlap "$ov" --compute-slots "$c"
    cmp -s "$work/ref$np.bin" "$work/$tag.bin" || { echo "overlap[$name]: np $np --compute-slots" \
        "$c --overlap $ov: output is not bitwise that of --compute-slots 0"; exit 1; }
    "$DUMPCMP" "$work/$tag.bin" "$work/ref1.bin" 1e-5 >/dev/null \
        || { echo "overlap[$name]: $tag: output differs from np 1's"; exit 1; }
    for key in routed processed dropped; do
        a=$(field "$work/ref1.json" $key); b=$(field "$work/$tag.json" $key)
        if [ -z "$a" ] || [ "$a" != "$b" ]; then
            echo "overlap[$name]: $tag: $key differs: np 1 '$a', np $np '$b'"; exit 1
        fi
    done
    r=$(field "$work/$tag.json" routed); p=$(field "$work/$tag.json" processed)
    d=$(field "$work/$tag.json" dropped)
    [ "$r" -eq $((p + d)) ] || { echo "overlap[$name]: $tag: routed $r != processed $p + dropped $d"; exit 1; }
    got=$(field "$work/$tag.json" compute_slots); held=$(field "$work/$tag.json" compute_slots_max_holders)
    if [ "$c" = auto ]; then
        cores=$(hwloc-calc --number-of core "$(hwloc-bind --get)")
        c=$(( np > cores ? cores : 0 )); tag="$tag ($cores cores: $c slots)"
    fi
    [ "$got" = "$c" ] || { echo "overlap[$name]: $tag: compute_slots in the summary is '$got', not $c"; exit 1; }
    if [ "$c" = 0 ]; then
        [ "$held" = 0 ] || { echo "overlap[$name]: $tag: slots off, yet $held ranks held one"; exit 1; }
    elif [ -z "$held" ] || [ "$held" -lt 1 ] || [ "$held" -gt "$c" ]; then
        echo "overlap[$name]: $tag: $held ranks computed at once, the limit is $c (at least 1 expected)"; exit 1
    fi
    echo "overlap[$name]: $tag: output bitwise without slots," \
         "np 1's within 1e-5," \
         "routed $r = processed $p + dropped $d, at most $held of $c slots held at once"
done
# sleeping waits without slots (--wait-sleep-us): bitwise the run with MPI's waits, and the
# value in effect in the summary (auto: 50 us when the 4 ranks outnumber this shell's cores)
cores=$(hwloc-calc --number-of core "$(hwloc-bind --get)")
tag="waits.np4.wsauto"
run1 "$tag" 4 "$@" --overlap 1 --compute-slots 0 --wait-sleep-us auto
cmp -s "$work/ref4.bin" "$work/$tag.bin" || { echo "overlap[$name]: $tag: output is not" \
    "bitwise that of MPI's waits"; exit 1; }
want=$(( 4 > cores ? 50 : 0 )); got=$(field "$work/$tag.json" wait_sleep_us)
[ "$got" = "$want" ] || { echo "overlap[$name]: $tag: wait_sleep_us in the summary is '$got', not $want ($cores cores)"; exit 1; }
echo "overlap[$name]: $tag: output bitwise MPI's waits, wait_sleep_us $got ($cores cores)"
