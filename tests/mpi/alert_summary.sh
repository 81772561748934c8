#!/usr/bin/env bash
# alert_summary.sh — repeated alerts are summarised in the log (one line per kind per window
# of --monitor-window steps, with a count) while every event stays in the telemetry: 64
# experts on a skewed workload with every expert under its fair share "starved". Checks:
# at most 2 lines per kind per window, and the log's counts (1 per full line + N per "N more")
# add up to the events dataset's rows. Env: MOERUN, MPIEXEC, PYTHON.
set -uo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-alerts.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$MPIEXEC" -np 2 "$MOERUN" --experts 64 --tokens 32 --d-model 8 --d-ffn 8 --steps 12 \
    --monitor-window 4 --monitor-starved-share 1 --workload zipf:1.5 --quiet \
    --telemetry "$work/t.h5" </dev/null >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
lines=$(grep -c "alert" "$work/err")
logged=$(awk '/alert at step/ {n++} /raised [0-9]+ more/ {for (i = 1; i <= NF; i++) if ($i == "raised") n += $(i + 1)} END {print n + 0}' "$work/err")
events=$("$PYTHON" -c 'import h5py, sys; print(h5py.File(sys.argv[1], "r")["events"].shape[0])' "$work/t.h5")
windows=3 kinds=6
echo "alert_summary: $events events in the telemetry, $logged counted in $lines log lines"
[ "$lines" -le $((2 * kinds * windows)) ] || { echo "FAIL: $lines alert lines, want <= $((2 * kinds * windows))"; exit 1; }
[ "$events" -gt "$lines" ] || { echo "FAIL: only $events events: the case does not repeat alerts"; exit 1; }
[ "$logged" -eq "$events" ] || { echo "FAIL: the log counts $logged alerts, the telemetry holds $events"; exit 1; }
