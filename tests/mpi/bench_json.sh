#!/usr/bin/env bash
# bench_json.sh — the benchmark programs' --json outputs go through the safe-output helpers
# (include/moerun/base/fileio.h via bench_json_* in bench/bench_util.c): hostile targets are
# refused before any work with exit 2 and a message naming --json and the path, and leave
# every file as it was; a good target (also an existing regular file) gets complete JSON
# through an exclusive temporary name, with no temporary file left and no planted link at a
# guessable name followed.
# Env: BENCH_A2A, BENCH_MOERUN, BENCH_SOAK, MPIEXEC, PYTHON.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-benchjson.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "bench_json: FAIL: $*"; for f in out err; do [ -s "$f" ] && sed "s/^/    $f: /" "$f" | head -8; done; exit 1; }
a2a_small=(--experts 4 --top-k 1 --d-model 8 --tokens 8 --workloads uniform --iters 1 --warmup 0)
soak_small=(--steps 4 --flush-interval 2 --tokens 8 --d-model 8 --d-ffn 8 --experts 4 --top-k 1)

printf 'victim: must not change\n' >victim
ln -s victim link.json
mkdir adir
before=$(md5sum victim)

# refused: exit 2, one message naming --json and the path, no work done (no table printed)
refused() { # refused WHAT_IN_MESSAGE NP PROGRAM ARGS...
    local want=$1 np=$2; shift 2
    "$MPIEXEC" -np "$np" "$@" >out 2>err
    rc=$?
    [ "$rc" -eq 2 ] || fail "$(basename "$1") ${*: -1}: exit $rc, want 2"
    grep -q -- "--json: .*$want" err || fail "$(basename "$1"): no message with '--json: ... $want'"
    [ "$(grep -c -- "--json:" err)" -eq 1 ] || fail "$(basename "$1"): want one --json message (rank 0)"
    ! grep -q '^#' out || fail "$(basename "$1"): work was done before the refusal"
    echo "bench_json: refused: $(grep -- "--json:" err)"
}
refused "'link.json' is a symbolic link" 2 "$BENCH_A2A" "${a2a_small[@]}" --exchanges flat --json link.json
refused "'/dev/null' exists and is a character device" 1 "$BENCH_MOERUN" --json /dev/null
refused "'adir' exists and is a directory" 1 "$BENCH_SOAK" "${soak_small[@]}" --telemetry s.h5 --json adir
refused "directory 'missing'" 1 "$BENCH_A2A" "${a2a_small[@]}" --exchanges flat --json missing/a.json
[ -c /dev/null ] || fail "/dev/null is no longer a character device"
[ "$(md5sum victim)" = "$before" ] && [ -L link.json ] || fail "the file behind the link changed"
[ ! -e s.h5 ] || fail "moerun-soak created its telemetry before refusing --json"

# written: an existing regular file is replaced by complete JSON; a link planted at the old
# predictable temporary name (NAME.tmp) is not followed; no temporary file is left
printf 'an earlier result\n' >a2a.json
ln -s victim a2a.json.tmp
"$MPIEXEC" -np 2 "$BENCH_A2A" "${a2a_small[@]}" --exchanges flat,hier --json a2a.json >out 2>err \
    || fail "a2a-bench --json a2a.json: exit $?"
"$MPIEXEC" -np 1 "$BENCH_SOAK" "${soak_small[@]}" --telemetry s.h5 --json soak.json >out 2>err \
    || fail "moerun-soak --json soak.json: exit $?"
[ "$(md5sum victim)" = "$before" ] || fail "a link at a2a.json.tmp was followed"
left=$(find . -name '*.tmp.*')
[ -z "$left" ] || fail "temporary files left: $left"
"$PYTHON" - <<'EOF' || fail "the JSON outputs are not what the runs measured"
import json
rows = json.load(open("a2a.json"))
# one workload x one token count x (the alltoallv baseline + flat + hier)
assert [r["exchange"] for r in rows] == ["alltoallv", "flat", "hier"], rows
assert all(r["ranks"] == 2 and r["wrong"] == 0 and r["tokens"] == 8 for r in rows), rows
s = json.load(open("soak.json"))
assert s["ranks"] == 1 and s["steps"] == 4 and [x["step"] for x in s["samples"]] == [1, 2, 3, 4], s
print(f"bench_json: a2a.json {len(rows)} rows, soak.json {len(s['samples'])} samples")
EOF
echo "bench_json: ok"
