#!/usr/bin/env bash
# bad_input.sh — every bad input fails before any compute, on every rank, with exactly one
# message (from rank 0) that names the field, a non-zero exit, and no file written.
# Env: MOERUN, MPIEXEC.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-bad.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0; n=0

# expect CODE NEEDLE [ENV=VALUE ...] -- moerun args
expect() {
    local code=$1 needle=$2; shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    n=$((n + 1))
    rm -f "$work"/out.h5 "$work"/sum.json
    env "${envs[@]+"${envs[@]}"}" "$MPIEXEC" -np 2 "$MOERUN" --quiet --steps 2 --tokens 8 \
        --d-model 8 --d-ffn 8 --telemetry "$work/out.h5" --summary-json "$work/sum.json" "$@" \
        >"$work/stdout" 2>"$work/stderr"
    local rc=$? msgs
    msgs=$(grep -c 'error' "$work/stderr")
    if [ "$rc" -ne "$code" ] || ! grep -q -- "$needle" "$work/stderr" || [ "$msgs" -ne 1 ] \
       || [ -e "$work/out.h5" ] || [ -e "$work/sum.json" ] || ls "$work"/*.tmp >/dev/null 2>&1; then
        echo "FAIL: moerun $* -> exit $rc (want $code), $msgs error line(s), want one containing '$needle'"
        sed 's/^/    /' "$work/stderr"
        [ -e "$work/out.h5" ] && echo "    telemetry file was left behind"
        fail=$((fail + 1))
    else
        echo "ok:   $(head -n 1 "$work/stderr")"
    fi
}

expect 2 "top_k"            -- --experts 8 --top-k 9
expect 2 "experts"          -- --experts 0
expect 2 "d_model"          -- --d-model 0
expect 2 "d_model"          -- --d-model -5
expect 2 "capacity_factor"  -- --capacity-factor nan
expect 2 "capacity_factor"  -- --capacity-factor inf
expect 2 "temperature"      -- --temperature 0
expect 2 "drop_policy"      -- --drop-policy random
expect 2 "activation"       -- --activation relu
expect 2 "workload"         -- --workload zipf:99
expect 2 "workload"         -- --workload domains:9 --experts 8
expect 2 "layers"           -- --layers 0
expect 2 "steps"            -- --steps 12abc
expect 2 "unknown option"   -- --expert 8
expect 2 "experts"          MOERUN_EXPERTS=abc -- --steps 2
expect 2 "MOERUN_BOGUS"     MOERUN_BOGUS=1 -- --steps 2
printf '[moerun]\nexperts = 8\nfooo = 1\n' > "$work/bad.ini"
expect 2 "fooo"             -- --config "$work/bad.ini"
expect 2 "config"           -- --config "$work/does-not-exist.ini"
expect 2 "tokens"           -- --tokens 16777216 --d-model 65536
expect 1 "$work/no-such-dir/t.h5" -- --telemetry "$work/no-such-dir/t.h5"

echo "$((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
