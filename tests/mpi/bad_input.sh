#!/usr/bin/env bash
# bad_input.sh — walks the catalogue in docs/inputs.md: every bad input there is run for
# real and must fail before any compute, with exactly one error line (from rank 0) that
# contains the catalogue's text, the catalogue's exit code, and no file written.
# Env: MOERUN, ANALYZE, IMPORT, MPIEXEC, CATALOGUE (docs/inputs.md).
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-bad.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0; n=0
printf '[moerun]\nexperts = 8\nfooo = 1\n' > "$work/bad.ini"
printf 'this is not HDF5\n' > "$work/text.h5"
good='{"layer": 0, "experts": [1, 2], "gating_probs": [0.6, 0.4], "token_idx": 0}'
printf '%s\n%s\n' "$good" '{"layer": 0, "experts": [1, 9], "gating_probs": [0.6, 0.4], "token_idx": 1}' \
    > "$work/bad-expert.jsonl"
printf '%s\n%s\n' "$good" '{"layer": 0, "experts": [1,' > "$work/bad-json.jsonl"
# hostile output paths: a file a link points to, an existing telemetry file, a FIFO, a
# valid INI file; each must be left exactly as it was (checked at the end)
printf 'victim: must not change\n' > "$work/victim"
ln -s victim "$work/link.out"
printf 'an earlier run\n' > "$work/exists.tel"
mkfifo "$work/fifo"
printf '[moerun]\nexperts = 8\n' > "$work/ok.ini"
# untrusted inputs: a 2 MB line, counts whose sum passes 2^62
{ head -c 2000000 /dev/zero | tr '\0' 'a'; echo; } > "$work/long.jsonl"
{ echo 'step,layer,expert,count'; for _ in $(seq 520); do echo '0,0,1,9007199254740991'; done; } \
    > "$work/sum.csv"
before=$(cd "$work" && md5sum victim exists.tel ok.ini bad-json.jsonl text.h5 long.jsonl sum.csv)

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; s=${s#\`}; s=${s%\`}; printf '%s' "$s"; }

# run_case PROGRAM CODE NEEDLE WORDS...
run_case() {
    local prog=$1 code=$2 needle=$3; shift 3
    local envs=() args=() w rc msgs pattern
    for w in "$@"; do
        if [ ${#args[@]} -eq 0 ] && [[ "$w" =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$w"); else args+=("$w"); fi
    done
    n=$((n + 1))
    rm -f "$work"/out.h5 "$work"/sum.json
    case "$prog" in
    moerun)
        env "${envs[@]+"${envs[@]}"}" "$MPIEXEC" -np 2 "$MOERUN" --quiet --steps 2 --tokens 8 \
            --d-model 8 --d-ffn 8 --telemetry "$work/out.h5" --summary-json "$work/sum.json" \
            "${args[@]}" </dev/null >"$work/stdout" 2>"$work/stderr"
        rc=$?; pattern='error' ;;
    moerun-analyze)
        env "${envs[@]+"${envs[@]}"}" "$ANALYZE" "${args[@]}" </dev/null >"$work/stdout" 2>"$work/stderr"
        rc=$?; pattern='^moerun-analyze: ' ;;
    moerun-import)
        env "${envs[@]+"${envs[@]}"}" "$IMPORT" "${args[@]}" </dev/null >"$work/stdout" 2>"$work/stderr"
        rc=$?; pattern='^moerun-import: ' ;;
    *) echo "FAIL: catalogue row for unknown program '$prog'"; fail=$((fail + 1)); return ;;
    esac
    msgs=$(grep -c -- "$pattern" "$work/stderr")
    if [ "$rc" -ne "$code" ] || ! grep -qF -- "$needle" "$work/stderr" || [ "$msgs" -ne 1 ] \
       || [ -e "$work/out.h5" ] || [ -e "$work/sum.json" ] || ls "$work"/*.tmp* >/dev/null 2>&1; then
        echo "FAIL: $prog ${args[*]} -> exit $rc (want $code), $msgs error line(s), want one containing '$needle'"
        sed 's/^/    /' "$work/stderr"
        [ -e "$work/out.h5" ] && echo "    telemetry file was left behind"
        fail=$((fail + 1))
    else
        echo "ok:   $(grep -m1 -- "$pattern" "$work/stderr")"
    fi
}

rows=0
while IFS='|' read -r _ prog args code needle _; do
    prog=$(trim "$prog"); args=$(trim "$args"); code=$(trim "$code"); needle=$(trim "$needle")
    case "$prog" in program | ---* | "") continue ;; esac
    rows=$((rows + 1))
    args=${args//\$WORK/$work}; needle=${needle//\$WORK/$work}
    # shellcheck disable=SC2086 # catalogue arguments are whitespace-separated words
    run_case "$prog" "$code" "$needle" $args
done < <(sed -n '/<!-- catalogue:begin -->/,/<!-- catalogue:end -->/p' "$CATALOGUE" | grep '^|')

after=$(cd "$work" && md5sum victim exists.tel ok.ini bad-json.jsonl text.h5 long.jsonl sum.csv)
if [ "$before" != "$after" ] || [ ! -L "$work/link.out" ] || [ ! -p "$work/fifo" ] \
   || [ ! -c /dev/null ] || ls "$work"/*.tmp.* >/dev/null 2>&1; then
    echo "FAIL: a file the catalogue attacks was changed or a temporary file was left:"
    diff <(echo "$before") <(echo "$after"); ls -la "$work"; fail=$((fail + 1))
fi

if [ "$rows" -lt 20 ]; then
    echo "FAIL: only $rows catalogue rows found in $CATALOGUE"; fail=$((fail + 1))
fi
echo "$((n - fail)) of $n catalogue rows passed"
[ "$fail" -eq 0 ]
