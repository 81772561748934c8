#!/usr/bin/env bash
# warmup.sh — `--warmup N` and the step-time percentiles, against the run's own telemetry.
# Every step's wall time on a rank is at least the sum over layers of that step's recorded
# phase "total" on that rank, so the summary's percentiles (nearest rank over the measured
# steps, max over ranks) are at least those of the recorded totals, and tokens_per_s is at
# most global tokens x measured steps / the slowest rank's recorded measured time; the warm-up
# steps count in elapsed_s but not in tokens_per_s. The rows each rank's experts computed
# (summary expert_rows_per_rank and its "compute" line) equal the telemetry's rows_in per
# rank, and their mean x ranks equals the processed pairs.
# Env: MOERUN, MPIEXEC, PYTHON.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-warmup.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$MPIEXEC" -np 2 "$MOERUN" --quiet --steps 7 --warmup 3 --layers 2 --tokens 64 --d-model 32 \
    --d-ffn 48 --flush-interval 2 --telemetry "$work/t.h5" --summary-json "$work/s.json" \
    >"$work/out.txt" 2>"$work/err.txt" || { cat "$work/err.txt" "$work/out.txt"; exit 1; }
grep -q "the first 3 warm-up steps not counted" "$work/out.txt" \
    || { echo "summary text does not mention the warm-up"; cat "$work/out.txt"; exit 1; }
grep -q "^step time  p50 " "$work/out.txt" || { echo "no step time line"; cat "$work/out.txt"; exit 1; }
"$PYTHON" - "$work/t.h5" "$work/s.json" "$work/out.txt" <<'PY'
import json, math, sys
import h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); s = json.load(open(sys.argv[2]))
cols = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/phase_time"].attrs["columns"]]
tot = f["steps/phase_time"][:, :, :, cols.index("total")].sum(axis=1)   # [steps][ranks]
w, n = s["warmup_steps"], s["steps_completed"]
assert (w, n) == (3, 7) and tot.shape[0] == 7, (w, n, tot.shape)
meas = tot[w:]                                                          # [4][ranks]
def nearest(v, p):
    v = np.sort(v); return v[math.ceil(len(v) * p / 100) - 1]
p50 = max(nearest(meas[:, r], 50) for r in range(meas.shape[1]))
p99 = max(nearest(meas[:, r], 99) for r in range(meas.shape[1]))
G = s["tokens_per_rank"] * s["ranks"]
eps = 1e-9
assert s["step_time_p50_s"] >= p50 * (1 - eps) and s["step_time_p99_s"] >= p99 * (1 - eps), (s, p50, p99)
assert s["step_time_p99_s"] >= s["step_time_p50_s"] > 0
assert s["step_time_p99_s"] <= s["elapsed_s"]
bound = G * (n - w) / meas.sum(axis=0).max()
assert s["tokens_per_s"] <= bound * (1 + eps), (s["tokens_per_s"], bound)
assert s["tokens_per_s"] * s["elapsed_s"] >= G * (n - w) * (1 - eps)
assert s["elapsed_s"] >= tot.sum(axis=0).max() * (1 - eps)
# rows each rank's experts computed: the telemetry's rows_in per rank (all steps and
# layers) gives min/mean/max, and mean x ranks is the processed pairs (conservation); the
# per-rank CPU-time rates are ordered and name a rank that exists
tc = [c.decode() if isinstance(c, bytes) else str(c) for c in f["steps/traffic"].attrs["columns"]]
rin = f["steps/traffic"][:, :, :, tc.index("rows_in")].sum(axis=(0, 1))   # [ranks]
er, eg = s["expert_rows_per_rank"], s["expert_cpu_gflops_per_rank"]
assert (er["min"], er["max"]) == (rin.min(), rin.max()) and abs(er["mean"] - rin.mean()) < 1e-9, (er, rin)
assert er["mean"] * s["ranks"] == s["processed"] == s["routed"] - s["dropped"], (er, s["processed"])
assert 0 < eg["min"] <= eg["mean"] <= eg["max"] and 0 <= eg["slowest_rank"] < s["ranks"], eg
out = open(sys.argv[3]).read()
line = "compute    expert calls per rank: %.0f-%.0f rows (mean %.0f), %.1f-%.1f GFLOP/s in CPU time; rank %d slowest" % (
    er["min"], er["max"], er["mean"], eg["min"], eg["max"], eg["slowest_rank"])
assert line in out, (line, out)
print("warmup ok: p50 %.6f >= %.6f, p99 %.6f >= %.6f, tokens/s %.0f <= %.0f"
      % (s["step_time_p50_s"], p50, s["step_time_p99_s"], p99, s["tokens_per_s"], bound))
PY
