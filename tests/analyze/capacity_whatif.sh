#!/usr/bin/env bash
# capacity_whatif.sh — the analyser's capacity what-if, at the run's own capacity factor,
# reproduces what the runtime enforced: the same capacity (both take moe_capacity() of
# include/moerun/capacity.h) and therefore the same dropped pairs.
#
# A 2-rank run at cf 1.25 (one of the what-if factors) with k * G / E not an integer
# (2 x 100 / 6 x 1.25 = 41.67, so the ceiling matters: C = 42) on a skewed workload, so
# that pairs are dropped; moerun-analyze --json on its telemetry. Checked against the
# run's summary JSON: what_if[cf 1.25].slots_per_step_layer = capacity x E and
# what_if[cf 1.25].dropped = dropped > 0; and capacity = ceil(1.25 x 2 x 100 / 6) = 42.
# Env: MOERUN, ANALYZE, MPIEXEC, PYTHON.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-capwi.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$MPIEXEC" -np 2 "$MOERUN" --quiet --experts 6 --top-k 2 --tokens 50 --d-model 8 --d-ffn 8 \
    --layers 2 --steps 4 --capacity-factor 1.25 --workload zipf:1.2 --seed 3 \
    --telemetry "$work/run.h5" --summary-json "$work/sum.json" >"$work/run.out" 2>&1 ||
    { echo "FAIL: moerun: $(tail -5 "$work/run.out")"; exit 1; }
"$ANALYZE" "$work/run.h5" --json "$work/an.json" >"$work/an.out" 2>&1 ||
    { echo "FAIL: moerun-analyze: $(tail -5 "$work/an.out")"; exit 1; }
"$PYTHON" - "$work/sum.json" "$work/an.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a = json.load(open(sys.argv[2]))
run = a["runs"][0] if "runs" in a else a
sec = run["analyses"]["capacity"] if "analyses" in run else run["capacity"]
row = [w for w in sec["what_if"] if abs(w["capacity_factor"] - 1.25) < 1e-12]
fail = []
if len(row) != 1:
    fail.append("no what-if row at cf 1.25: %r" % [w["capacity_factor"] for w in sec["what_if"]])
else:
    w = row[0]
    if s["capacity"] != 42:
        fail.append("runtime capacity %r, want ceil(1.25 * 2 * 100 / 6) = 42" % s["capacity"])
    if w["slots_per_step_layer"] != s["capacity"] * s["experts"]:
        fail.append("what-if slots per step x layer %r, runtime capacity x E = %r"
                    % (w["slots_per_step_layer"], s["capacity"] * s["experts"]))
    if w["dropped"] != s["dropped"] or s["dropped"] <= 0:
        fail.append("what-if dropped %r, runtime dropped %r (want equal, > 0)" % (w["dropped"], s["dropped"]))
    print("capacity %d, slots %g, dropped runtime %d what-if %d"
          % (s["capacity"], w["slots_per_step_layer"], s["dropped"], w["dropped"]))
for f in fail:
    print("FAIL:", f)
sys.exit(1 if fail else 0)
PY
