#!/usr/bin/env bash
# tool_outputs.sh — the outputs that used plain fopen go through the safe-output helpers
# (include/moerun/base/fileio.h): the benchmark programs' --json (bench_json_* in
# bench/bench_util.c), moerun-place's -o and --json, moerun-analyze's --write-placement.
# Hostile targets (a symbolic link, a device, a directory, a missing directory, an input, the
# other output) are refused before any work with exit 2 and a message naming the option and
# the path, and leave every file as it was; a good target (also an existing regular file)
# gets complete contents through an exclusive temporary name, with no temporary file left and
# no link planted at the old guessable name (NAME.tmp, NAME.tmp.<pid>) followed.
# Env: BENCH_A2A, BENCH_MOERUN, BENCH_SOAK, PLACE, ANALYZE, MPIEXEC, PYTHON.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-benchjson.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "tool_outputs: FAIL: $*"; for f in out err; do [ -s "$f" ] && sed "s/^/    $f: /" "$f" | head -8; done; exit 1; }
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
    echo "tool_outputs: refused: $(grep -- "--json:" err)"
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
"$MPIEXEC" -np 2 "$BENCH_SOAK" "${soak_small[@]}" --telemetry s.h5 --json soak.json >out 2>err \
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
assert s["ranks"] == 2 and s["steps"] == 4 and [x["step"] for x in s["samples"]] == [1, 2, 3, 4], s
print(f"tool_outputs: a2a.json {len(rows)} rows, soak.json {len(s['samples'])} samples")
EOF

# moerun-place -o / --json and moerun-analyze --write-placement, on the soak's telemetry
refused_tool() { # refused_tool WHAT_IN_MESSAGE PROGRAM ARGS...
    local want=$1; shift
    "$@" >out 2>err
    rc=$?
    [ "$rc" -eq 2 ] || fail "$(basename "$1") ${*:2}: exit $rc, want 2"
    grep -q -- "$want" err || fail "$(basename "$1") ${*:2}: no message with '$want'"
    echo "tool_outputs: refused: $(head -n 1 err)"
}
refused_tool "-o: 'link.json' is a symbolic link" "$PLACE" s.h5 -o link.json
refused_tool "--json: 's.h5' is an input file" "$PLACE" s.h5 --json s.h5
refused_tool "--json: 'p.txt' is the same file as -o 'p.txt'" "$PLACE" s.h5 -o p.txt --json p.txt
refused_tool "-o: '/dev/null' exists and is a character device" "$PLACE" s.h5 -o /dev/null
refused_tool "--write-placement: 'link.json' is a symbolic link" "$ANALYZE" s.h5 --write-placement link.json
refused_tool "--write-placement: 's.h5' is an input file" "$ANALYZE" s.h5 --write-placement s.h5
[ "$(md5sum victim)" = "$before" ] && [ -c /dev/null ] || fail "a refused output changed a file"
[ ! -e p.txt ] || fail "a refused output was created"
printf 'an earlier plan\n' >plan.txt
ln -s victim "plan.txt.tmp.$$"
"$PLACE" s.h5 -o plan.txt --json plan.json --nodes 1 --ranks-per-node 2 >out 2>err || fail "moerun-place: exit $?"
"$ANALYZE" s.h5 --write-placement plan2.txt --json an.json >out 2>err || fail "moerun-analyze --write-placement: exit $?"
"$PLACE" s.h5 -o via-link.txt --follow-symlinks >out 2>err && ln -s via-link.txt link2.txt \
    && "$PLACE" s.h5 -o link2.txt --follow-symlinks --policy round-robin >out 2>err \
    || fail "moerun-place --follow-symlinks: exit $?"
[ -L link2.txt ] && grep -q 'policy round-robin' via-link.txt || fail "--follow-symlinks did not write the file the link names"
[ "$(md5sum victim)" = "$before" ] || fail "a link planted at a temporary name was followed"
left=$(find . -name '*.tmp.*' ! -name "plan.txt.tmp.$$")
[ -z "$left" ] || fail "temporary files left: $left"
"$PYTHON" - <<'EOF' || fail "moerun-place / moerun-analyze outputs incomplete"
import json
for f, by in (("plan.txt", "moerun-place"), ("plan2.txt", "moerun-analyze --write-placement")):
    t = open(f).read().splitlines()
    assert t[0] == "moerun-placement 1" and t[1].startswith("# written by " + by), (f, t[:2])
    assert sum(1 for l in t if l.startswith("layer ")) == 2, (f, t)
j = json.load(open("plan.json"))
a = json.load(open("an.json"))
assert j and a
print("tool_outputs: plan.txt, plan2.txt, plan.json complete")
EOF
# a2a-bench's own flags: a value out of range (a negative --warmup wrote past its timing
# array before) is one message naming the flag and the allowed range, exit 2, nothing run
# or written
badflag() { # badflag 'MESSAGE' ARGS...
    local want=$1; shift
    rm -f bad.json
    "$MPIEXEC" -np 2 "$BENCH_A2A" "${a2a_small[@]}" --exchanges flat "$@" --json bad.json >out 2>err
    rc=$?
    [ "$rc" -eq 2 ] || fail "a2a-bench $*: exit $rc, want 2"
    grep -qF -- "a2a-bench: error: $want" err || fail "a2a-bench $*: no message '$want'"
    [ "$(grep -c "a2a-bench: error" err)" -eq 1 ] || fail "a2a-bench $*: want one message"
    [ ! -s out ] && [ ! -e bad.json ] || fail "a2a-bench $*: something ran or was written"
}
badflag "--warmup: '-1' is out of range; allowed 0..1000000" --warmup -1
badflag "--tokens: 'x' is out of range; allowed 1..1048576" --tokens 8,x
badflag "--top-k: 5 is out of range; allowed 1..4 (--experts)" --top-k 5
badflag "--exchanges: out of range; allowed 1..16 comma-separated names" --exchanges a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q
echo "tool_outputs: a2a-bench flags out of range refused"
echo "tool_outputs: ok"
