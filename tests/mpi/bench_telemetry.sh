#!/usr/bin/env bash
# bench_telemetry.sh — `moerun-bench --telemetry FILE`: its repetitions with telemetry all
# write FILE (each replaces the one before), FILE ends as a complete telemetry file of the
# last repetition (check_telemetry.py; steps == --warmup + --steps: the warm-up steps run
# on the measured engine), the JSON rows per step per rank equal that file's steps/traffic
# rows_in (same deterministic run), and the printed overhead equals
# (with - without) / without from the two medians printed on the same line. A FILE that
# existed before the bench started is refused (exit 2, message naming it, the file left as
# it was) without --overwrite, and no rank reports "failed on another rank".
# Env: BENCH, MPIEXEC, PYTHON, CHECK_TELEMETRY.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-bench-tel.XXXXXX")
trap 'rm -rf "$work"' EXIT
small=(--tokens 64 --d-model 32 --d-ffn 48 --steps 5 --warmup 1 --flush-interval 2)
"$MPIEXEC" -np 2 "$BENCH" "${small[@]}" --telemetry "$work/tel.h5" --json "$work/b.json" \
    >"$work/out.txt" 2>"$work/err.txt" || { echo "bench failed"; cat "$work/err.txt" "$work/out.txt"; exit 1; }
"$PYTHON" "$CHECK_TELEMETRY" "$work/tel.h5" >/dev/null \
    || { "$PYTHON" "$CHECK_TELEMETRY" "$work/tel.h5"; exit 1; }
"$PYTHON" - "$work/tel.h5" "$work/out.txt" "$work/b.json" <<'PY'
import json, re, sys
import h5py
f = h5py.File(sys.argv[1], "r")
status = f.attrs["status"]
status = status.decode() if isinstance(status, bytes) else str(status)
n = f["steps/step"].shape[0]
assert status == "complete" and n == 6, ("last repetition's file: 1 warm-up + 5 steps", status, n)
out = open(sys.argv[2]).read()
m = re.search(r"telemetry overhead \(flush every 2 steps\)\s+([-+]\d+\.\d+)% of step time .*"
              r"median of 3 alternating runs each: (\d+\.\d+) ms with, (\d+\.\d+) ms without", out)
assert m, "no overhead line in:\n" + out
pct, w, wo = (float(g) for g in m.groups())
assert w > 0 and wo > 0, (w, wo)
want = 100 * (w - wo) / wo   # from the rounded ms figures: allow their rounding
slack = 100 * (0.0005 / wo + 0.0005 * w / wo ** 2) + 0.006
assert abs(pct - want) <= slack, ("overhead %.2f%% vs %.2f%% from the printed medians" % (pct, want))
j = json.load(open(sys.argv[3]))
assert abs(100 * j["telemetry_overhead"] - pct) <= 0.006, (j["telemetry_overhead"], pct)
# CPU time per step: ordered over ranks, and a rank (one thread computing) cannot be on a
# core much longer than the wall time of its steps
c = j["cpu_s_per_step"]
assert 0 < c["min"] <= c["avg"] <= c["max"] <= 1.5 * j["step_s_over_steps"]["max"], (c, j["step_s_over_steps"])
# rows per step per rank: the telemetry run is the same deterministic run, so its
# steps/traffic rows_in of the measured steps (after the 1 warm-up step) give the same
# per-rank means; the kernel's per-rank rate in the run is ordered and positive
cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
rin = f["steps/traffic"][1:, 0, :, cols.index("rows_in")].mean(axis=0)
r = j["rows_per_step_per_rank"]
for key, want in (("min", rin.min()), ("avg", rin.mean()), ("max", rin.max())):
    assert abs(r[key] - want) <= 0.006, ("rows_per_step_per_rank", key, r[key], want)
k = j["expert_cpu_gflops_over_ranks"]
assert 0 < k["min"] <= k["avg"] <= k["max"], k
# the limit at the slowest rank's expert calls, recomputed from the JSON's own fields
# (gelu: 2 GEMMs of 2*d*ffn FLOPs per routed pair, top_k pairs per token, 1 layer)
lim = j["ranks"] * k["min"] * 1e9 / (4.0 * j["d_model"] * j["d_ffn"] * j["top_k"])
assert abs(j["ratio_to_slowest_rank_limit"] - j["tokens_per_s"] / lim) <= 2e-4 + 1e-3 * j["tokens_per_s"] / lim, \
    (j["ratio_to_slowest_rank_limit"], j["tokens_per_s"] / lim)
assert re.search(r"rows a rank's experts computed per step\s+%.1f\s+%.1f\s+%.1f" % (r["min"], r["avg"], r["max"]), out), out
print("bench telemetry ok: %d steps, overhead %+.2f%% (%.3f ms with, %.3f without), rows/rank %.1f-%.1f"
      % (n, pct, w, wo, r["min"], r["max"]))
PY
if grep -q "failed on another rank" "$work/err.txt"; then echo "stderr:"; cat "$work/err.txt"; exit 1; fi
# a FILE that existed before the bench started: refused, left as it was
sum=$(cksum <"$work/tel.h5")
rc=0
"$MPIEXEC" -np 2 "$BENCH" "${small[@]}" --telemetry "$work/tel.h5" >"$work/out2.txt" 2>"$work/err2.txt" || rc=$?
[ "$rc" -eq 2 ] || { echo "existing FILE: exit $rc, want 2"; cat "$work/err2.txt"; exit 1; }
grep -q "^moerun-bench: error: telemetry: '$work/tel.h5' exists; refusing to overwrite it (--overwrite allows it)" "$work/err2.txt" \
    || { echo "existing FILE: message"; cat "$work/err2.txt"; exit 1; }
[ "$(grep -c "moerun-bench" "$work/err2.txt")" -eq 1 ] || { echo "more than one error line"; cat "$work/err2.txt"; exit 1; }
[ "$(cksum <"$work/tel.h5")" = "$sum" ] || { echo "refused FILE was changed"; exit 1; }
[ ! -s "$work/out2.txt" ] || { echo "refused run measured something"; cat "$work/out2.txt"; exit 1; }
echo "existing FILE refused: ok"
# a bad --warmup: one message naming the flag and its range, exit 2, nothing measured or written
for bad in -1 x 1000001; do
    rc=0
    "$MPIEXEC" -np 2 "$BENCH" "${small[@]/--warmup/--quiet}" --warmup "$bad" --json "$work/bad.json" \
        >"$work/out3.txt" 2>"$work/err3.txt" || rc=$?
    [ "$rc" -eq 2 ] || { echo "--warmup $bad: exit $rc, want 2"; cat "$work/err3.txt"; exit 1; }
    grep -q "^moerun-bench: error: --warmup: '$bad' is out of range; allowed 0..1000000" "$work/err3.txt" \
        || { echo "--warmup $bad: message"; cat "$work/err3.txt"; exit 1; }
    [ "$(grep -c "moerun-bench" "$work/err3.txt")" -eq 1 ] || { echo "--warmup $bad: more than one error line"; cat "$work/err3.txt"; exit 1; }
    [ ! -e "$work/bad.json" ] && [ ! -s "$work/out3.txt" ] || { echo "--warmup $bad: something written"; exit 1; }
done
echo "bad --warmup refused: ok"
