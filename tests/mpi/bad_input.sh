#!/usr/bin/env bash
# bad_input.sh — walks the catalogue in docs/inputs.md: every bad input there is run for
# real and must fail before any compute, with exactly one error line (from rank 0) that
# contains the catalogue's text, the catalogue's exit code, and no file written.
# The moerun rows (an mpirun launch each, most of the test's time) run BAD_INPUT_JOBS (4) at
# a time, each in its own scratch directory holding its own copy of the fixtures; the other
# programs' rows run one after another in the main scratch directory. Every scratch
# directory's attacked files are checked at the end.
# Env: MOERUN, ANALYZE, IMPORT, PLACE, MPIEXEC, CATALOGUE (docs/inputs.md), BAD_INPUT_JOBS.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-bad.XXXXXX")
trap 'rm -rf "$work" "$work".m* "$work".md5' EXIT
jobs_max=${BAD_INPUT_JOBS:-4}
[[ "$jobs_max" =~ ^[1-9][0-9]?$ ]] || { echo "FAIL: BAD_INPUT_JOBS must be 1..99, got '$jobs_max'"; exit 1; }
fail=0; n=0
good='{"layer": 0, "experts": [1, 2], "gating_probs": [0.6, 0.4], "token_idx": 0}'
# placement files for the moerun rows (8 experts, 2 layers, 2 ranks on 1 node)
pmap() { # pmap DIR NAME RANKS SLOTS LAYER0 LAYER1
    printf 'moerun-placement 1\nexperts 8\nlayers 2\nranks %s\nnodes 1\nslots %s\nlayer 0: %s\nlayer 1: %s\n' \
        "$3" "$4" "$5" "$6" > "$1/$2"
}
attacked=(victim exists.tel ok.ini bad-json.jsonl text.h5 long.jsonl sum.csv)
fixtures() { # fixtures DIR: the catalogue's inputs and hostile paths
    local w=$1
    printf '[moerun]\nexperts = 8\nfooo = 1\n' > "$w/bad.ini"
    printf 'this is not HDF5\n' > "$w/text.h5"
    printf '%s\n%s\n' "$good" '{"layer": 0, "experts": [1, 9], "gating_probs": [0.6, 0.4], "token_idx": 1}' \
        > "$w/bad-expert.jsonl"
    printf '%s\n%s\n' "$good" '{"layer": 0, "experts": [1,' > "$w/bad-json.jsonl"
    pmap "$w" no-rank.txt 2 4 "0 0 0 0 1 1 1 1" "0 0 0 - 1 1 1 1"
    pmap "$w" rank-range.txt 2 4 "0 0 0 0 1 1 1 5" "0 0 0 0 1 1 1 1"
    pmap "$w" over-slots.txt 2 4 "0 0 0 0 1 1 1 1" "0 0 0 0,1 1 1 1 1"
    pmap "$w" other-shape.txt 4 2 "0 0 1 1 2 2 3 3" "0 0 1 1 2 2 3 3"
    printf 'experts 8\n' > "$w/not-a-map.txt"
    # hostile output paths: a file a link points to, an existing telemetry file, a FIFO, a
    # valid INI file; each must be left exactly as it was (checked at the end)
    printf 'victim: must not change\n' > "$w/victim"
    ln -s victim "$w/link.out"
    printf 'an earlier run\n' > "$w/exists.tel"
    mkfifo "$w/fifo"
    printf '[moerun]\nexperts = 8\n' > "$w/ok.ini"
    # untrusted inputs: a 2 MB line, counts whose sum passes 2^62
    { head -c 2000000 /dev/zero | tr '\0' 'a'; echo; } > "$w/long.jsonl"
    { echo 'step,layer,expert,count'; for _ in $(seq 520); do echo '0,0,1,9007199254740991'; done; } \
        > "$w/sum.csv"
    (cd "$w" && md5sum "${attacked[@]}") > "$w.md5"
}
fixtures "$work"

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; s=${s#\`}; s=${s%\`}; printf '%s' "$s"; }

# run_case DIR PROGRAM CODE NEEDLE WORDS...: prints one ok/FAIL line (and the evidence);
# returns 1 on failure. DIR is the scratch directory the row's $WORK expanded to.
run_case() {
    local w=$1 prog=$2 code=$3 needle=$4; shift 4
    local envs=() args=() a rc msgs pattern
    for a in "$@"; do
        if [ ${#args[@]} -eq 0 ] && [[ "$a" =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$a"); else args+=("$a"); fi
    done
    rm -f "$w"/out.h5 "$w"/sum.json
    case "$prog" in
    moerun)
        env "${envs[@]+"${envs[@]}"}" "$MPIEXEC" -np 2 "$MOERUN" --quiet --steps 2 --tokens 8 \
            --d-model 8 --d-ffn 8 --telemetry "$w/out.h5" --summary-json "$w/sum.json" \
            "${args[@]}" </dev/null >"$w/stdout" 2>"$w/stderr"
        rc=$?; pattern='error' ;;
    moerun-analyze)
        env "${envs[@]+"${envs[@]}"}" "$ANALYZE" "${args[@]}" </dev/null >"$w/stdout" 2>"$w/stderr"
        rc=$?; pattern='^moerun-analyze: ' ;;
    moerun-import)
        env "${envs[@]+"${envs[@]}"}" "$IMPORT" "${args[@]}" </dev/null >"$w/stdout" 2>"$w/stderr"
        rc=$?; pattern='^moerun-import: ' ;;
    moerun-place)
        env "${envs[@]+"${envs[@]}"}" "$PLACE" "${args[@]}" </dev/null >"$w/stdout" 2>"$w/stderr"
        rc=$?; pattern='^moerun-place: ' ;;
    *) echo "FAIL: catalogue row for unknown program '$prog'"; return 1 ;;
    esac
    msgs=$(grep -c -- "$pattern" "$w/stderr")
    if [ "$rc" -ne "$code" ] || ! grep -qF -- "$needle" "$w/stderr" || [ "$msgs" -ne 1 ] \
       || [ -e "$w/out.h5" ] || [ -e "$w/sum.json" ] || ls "$w"/*.tmp* >/dev/null 2>&1; then
        echo "FAIL: $prog ${args[*]} -> exit $rc (want $code), $msgs error line(s), want one containing '$needle'"
        sed 's/^/    /' "$w/stderr"
        [ -e "$w/out.h5" ] && echo "    telemetry file was left behind"
        return 1
    fi
    echo "ok:   $(grep -m1 -- "$pattern" "$w/stderr")"
}

rows=0 dirs=("$work")
while IFS='|' read -r _ prog args code needle _; do
    prog=$(trim "$prog"); args=$(trim "$args"); code=$(trim "$code"); needle=$(trim "$needle")
    case "$prog" in program | ---* | "") continue ;; esac
    rows=$((rows + 1)); n=$((n + 1))
    if [ "$prog" = moerun ]; then
        # own scratch directory, beside (not inside) $work: a folder argument of
        # moerun-analyze reads $work's *.h5
        w="$work.m$n"; mkdir "$w"; fixtures "$w"; dirs+=("$w")
        args=${args//\$WORK/$w}; needle=${needle//\$WORK/$w}
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
        # shellcheck disable=SC2086 # catalogue arguments are whitespace-separated words
        ( run_case "$w" "$prog" "$code" "$needle" $args > "$w.result"; echo $? >> "$w.result" ) &
    else
        args=${args//\$WORK/$work}; needle=${needle//\$WORK/$work}
        # shellcheck disable=SC2086
        run_case "$work" "$prog" "$code" "$needle" $args || fail=$((fail + 1))
    fi
done < <(sed -n '/<!-- catalogue:begin -->/,/<!-- catalogue:end -->/p' "$CATALOGUE" | grep '^|')
wait
for w in "${dirs[@]}"; do
    if [ "$w" != "$work" ]; then
        if [ ! -s "$w.result" ] || [ "$(tail -n 1 "$w.result")" != 0 ]; then fail=$((fail + 1)); fi
        sed '$d' "$w.result"
    fi
    after=$(cd "$w" && md5sum "${attacked[@]}")
    if [ "$(cat "$w.md5")" != "$after" ] || [ ! -L "$w/link.out" ] || [ ! -p "$w/fifo" ] \
       || [ ! -c /dev/null ] || ls "$w"/*.tmp.* >/dev/null 2>&1; then
        echo "FAIL: in $w a file the catalogue attacks was changed or a temporary file was left:"
        diff "$w.md5" <(echo "$after"); ls -la "$w"; fail=$((fail + 1))
    fi
done

if [ "$rows" -lt 20 ]; then
    echo "FAIL: only $rows catalogue rows found in $CATALOGUE"; fail=$((fail + 1))
fi
echo "$((n - fail)) of $n catalogue rows passed ($((${#dirs[@]} - 1)) moerun rows, $jobs_max at a time)"
[ "$fail" -eq 0 ]
