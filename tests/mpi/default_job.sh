#!/usr/bin/env bash
# default_job.sh — the README's main job (4 ranks, embedded defaults), checked for real:
# the telemetry file against the run's own summary (check_telemetry.py: schema, counts,
# routed = processed + dropped), the summary's invariant, and moerun-analyze reading it back.
# Env: MOERUN, MPIEXEC, CHECK_TELEMETRY, PYTHON, ANALYZE.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-default.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
"$MPIEXEC" -np 4 "$MOERUN" --summary-json summary.json --progress-interval 0 >out.txt 2>err.txt \
    || { cat err.txt out.txt; exit 1; }
cat out.txt
grep -q "moerun: step 20/20" err.txt || { echo "no progress line on stderr"; cat err.txt; exit 1; }
[ -f moerun.h5 ] || { echo "default telemetry file moerun.h5 missing"; exit 1; }
"$PYTHON" "$CHECK_TELEMETRY" moerun.h5 --summary summary.json
"$PYTHON" - summary.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == "complete", s["status"]
assert s["ranks"] == 4, s["ranks"]
assert s["routed"] == s["processed"] + s["dropped"], (s["routed"], s["processed"], s["dropped"])
# routed pairs = steps x layers x global tokens x k
want = s["steps_completed"] * s["layers"] * s["tokens_per_rank"] * s["ranks"] * s["top_k"]
assert s["routed"] == want, (s["routed"], want)
assert s["tokens_per_s"] > 0 and s["output_checksum"]["count"] == s["tokens_per_rank"] * 4 * s["d_model"]
print("summary ok:", s["routed"], "routed,", s["dropped"], "dropped")
PY
"$ANALYZE" moerun.h5 >analyze.txt || { cat analyze.txt; exit 1; }
grep -qi "routed" analyze.txt || { echo "moerun-analyze printed no routing totals"; cat analyze.txt; exit 1; }
echo "default job ok"
