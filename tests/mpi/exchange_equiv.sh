#!/usr/bin/env bash
# exchange_equiv.sh — every exchange backend gives the flat exchange's result.
#
# Usage: exchange_equiv.sh NAME GLOBAL_TOKENS -- [moerun options]
# Env: MOERUN, DUMPCMP, MPIEXEC; optional NPS (default "2 4"), EXCHANGES (default "hier 2dh ucx"),
#      RPN (ranks per node imposed with --ranks-per-node, default 2).
# For each NP: runs `moerun --exchange flat`, then each of EXCHANGES, with the same global
# batch and a node structure of RPN ranks per node; checks against flat: the routed,
# processed and dropped totals (exactly equal) and the last layer output (dumpcmp, relative
# 1e-5). hier and ucx run one algorithm over different inter-node transports, so their
# outputs must also be bitwise identical; 2dh delivers rows in flat's order and sums in
# flat's order, so its output must be bitwise flat's.
# An entry NAME:N runs backend NAME with --hier-chunks N (hier, ucx: the inter-node stage in
# N pipelined pieces). The pipelined form delivers the unpipelined batch and sums in the same
# order, so every hier/ucx output, whatever N, must be bitwise the first hier/ucx entry's
# (plain "hier" and "ucx" run the default, --hier-chunks 4).
set -euo pipefail
name=$1; global=$2; shift 2
[ "${1:-}" = "--" ] && shift
nps=${NPS:-2 4}; exchanges=${EXCHANGES:-hier 2dh ucx}; rpn=${RPN:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-xequiv-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

field() { # field FILE KEY -> the number after "KEY": in a cJSON document
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1
}

run() { # run TAG NP EXCHANGE [options]
    local tag=$1 np=$2 ex=$3 t=$((global / $2))
    shift 3
    if [ $((t * np)) -ne "$global" ]; then echo "xequiv: $global tokens do not split over $np ranks"; exit 2; fi
    if ! "$MPIEXEC" -np "$np" "$MOERUN" --tokens "$t" --quiet --exchange "$ex" \
          --ranks-per-node "$rpn" --telemetry "$work/$tag.h5" --summary-json "$work/$tag.json" \
          --output-dump "$work/$tag.bin" "$@" >"$work/$tag.out" 2>"$work/$tag.err"; then
        echo "xequiv[$name]: run $tag (np $np, --exchange $ex) failed:"
        cat "$work/$tag.err" "$work/$tag.out"; exit 1
    fi
}

for np in $nps; do
    run "np$np.flat" "$np" flat "$@"
    hfirst=
    for ex in $exchanges; do
        case $ex in
            *:*) run "np$np.$ex" "$np" "${ex%%:*}" --hier-chunks "${ex#*:}" "$@" ;;
            *)   run "np$np.$ex" "$np" "$ex" "$@" ;;
        esac
        for key in routed processed dropped steps_completed; do
            a=$(field "$work/np$np.flat.json" $key); b=$(field "$work/np$np.$ex.json" $key)
            if [ -z "$a" ] || [ "$a" != "$b" ]; then
                echo "xequiv[$name]: np $np: $key differs: flat '$a', $ex '$b'"; exit 1
            fi
        done
        printf 'xequiv[%s]: np %-2s %-5s routed %s processed %s dropped %s: ' "$name" "$np" "$ex" \
            "$(field "$work/np$np.$ex.json" routed)" "$(field "$work/np$np.$ex.json" processed)" \
            "$(field "$work/np$np.$ex.json" dropped)"
        "$DUMPCMP" "$work/np$np.$ex.bin" "$work/np$np.flat.bin" 1e-5 \
            || { echo "xequiv[$name]: np $np: $ex output differs from flat"; exit 1; }
        case $ex in hier|hier:*|ucx|ucx:*)
            if [ -z "$hfirst" ]; then
                hfirst=$ex
            else
                cmp -s "$work/np$np.$hfirst.bin" "$work/np$np.$ex.bin" \
                    || { echo "xequiv[$name]: np $np: $ex output is not bitwise equal to $hfirst"; exit 1; }
                echo "xequiv[$name]: np $np: $ex output bitwise equal to $hfirst"
            fi ;;
        esac
    done
    # (one pattern per name: " hier ucx " shares the space between them, so a single
    # *" hier "*" ucx "* pattern never matched and this check never ran)
    case " $exchanges " in *" hier "*)
        case " $exchanges " in *" ucx "*)
            cmp -s "$work/np$np.hier.bin" "$work/np$np.ucx.bin" \
                || { echo "xequiv[$name]: np $np: ucx output is not bitwise equal to hier"; exit 1; }
            echo "xequiv[$name]: np $np: ucx output bitwise equal to hier" ;;
        esac ;;
    esac
    case " $exchanges " in *" 2dh "*)
        cmp -s "$work/np$np.2dh.bin" "$work/np$np.flat.bin" \
            || { echo "xequiv[$name]: np $np: 2dh output is not bitwise equal to flat"; exit 1; }
        echo "xequiv[$name]: np $np: 2dh output bitwise equal to flat" ;;
    esac
done
echo "xequiv[$name]: ok"
