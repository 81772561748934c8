#!/usr/bin/env bash
# memory_placement.sh — the memory estimate counts a placement file's expert copies.
#
# Env: MOERUN, MPIEXEC, PYTHON, MAP (tests/mpi/placements/replicas_e8_l2_p4.txt: 8 experts,
# 2 layers, 4 ranks; its busiest ranks hold 6 expert copies over the two layers, contiguous
# 2 x 2 = 4).
# --print-config on 4 ranks with the map and with contiguous: the weights figure equals
# 4 x (L x d x E + H x (d x d_ffn + d_ffn x d)) bytes, H counted here from the file (the
# most copies one rank holds, summed over layers), and the totals differ by exactly the extra
# copies' weights. Then --max-memory between the two totals: the run with the map is refused
# (exit 2, the max_memory message, before any compute: no telemetry file), contiguous runs.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-memplace.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "memory_placement: FAIL: $*"; exit 1; }
shape=(--experts 8 --top-k 2 --layers 2 --d-model 512 --d-ffn 1024 --tokens 16 --steps 1 --quiet)
for m in map contiguous; do
    spec=contiguous
    [ $m = map ] && spec="file:$MAP"
    "$MPIEXEC" -np 4 "$MOERUN" --print-config "${shape[@]}" --placement "$spec" \
        >"$work/$m.out" 2>&1 || { cat "$work/$m.out"; fail "--print-config with $m"; }
    grep '^# estimated memory with 4 ranks:' "$work/$m.out" >"$work/$m.line" \
        || { cat "$work/$m.out"; fail "no estimate line with $m"; }
done
budget=$("$PYTHON" - "$MAP" "$work/map.line" "$work/contiguous.line" <<'PY'
import re, sys
L, d, f, E, P = 2, 512, 1024, 8, 4
held = [[0] * L for _ in range(P)]
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line.startswith("layer "):
        head, rest = line.split(":", 1)
        l = int(head.split()[1])
        for field in rest.split():
            for r in field.split(","):
                held[int(r)][l] += 1
H = max(sum(h) for h in held)
assert H == 6, H
MiB = 1024.0 * 1024.0
tot = {}
for path, h in ((sys.argv[2], H), (sys.argv[3], L * -(-E // P))):
    text = open(path).read()
    m = re.search(r"with 4 ranks: ([0-9.]+) MiB per rank: weights ([0-9.]+) ", text)
    assert m, text
    want = 4 * (L * d * E + h * (d * f + f * d))
    assert m.group(2) == f"{want / MiB:.1f}", f"{path}: weights {m.group(2)} MiB, formula {want / MiB:.1f} (H {h})"
    tot[h] = float(m.group(1))
extra = (H - 4) * 4 * (d * f + f * d) / MiB
assert abs(tot[H] - tot[4] - extra) <= 0.1 + 1e-9, (tot, extra)
print(f"memory_placement: weights with the map (H {H}) and contiguous (H 4) match the formula; "
      f"totals {tot[H]} and {tot[4]} MiB differ by {extra} MiB", file=sys.stderr)
print(int((tot[H] + tot[4]) / 2))
PY
) || fail "estimate against the formula"
if "$MPIEXEC" -np 4 "$MOERUN" "${shape[@]}" --placement "file:$MAP" --max-memory "$budget" \
        --telemetry "$work/refused.h5" >"$work/refused.out" 2>&1; then
    fail "the map's run was not refused under --max-memory $budget"
fi
grep -q "max_memory: the run needs about" "$work/refused.out" || { cat "$work/refused.out"; fail "no max_memory message"; }
[ ! -e "$work/refused.h5" ] || fail "a refused run left a telemetry file"
# the other way round: the map's figure is the larger one, so contiguous fits the budget
"$MPIEXEC" -np 4 "$MOERUN" "${shape[@]}" --placement contiguous --max-memory "$budget" \
    --telemetry "$work/ok.h5" >"$work/ok.out" 2>&1 || { cat "$work/ok.out"; fail "contiguous under --max-memory $budget"; }
echo "memory_placement: ok (budget $budget MiB: the map refused, contiguous runs)"
