#!/usr/bin/env bash
# valgrind_mpi.sh — memcheck of a small real MPI run of moerun, and of moerun-analyze on the
# file it wrote: no invalid access, no use of uninitialised memory, no definite leak.
#
# Env: MOERUN, ANALYZE, MPIEXEC, KEEPDL (optional: the keep_dlopen shim, so stacks through
# Open MPI components stay symbolised), SUPP (tests/sanitize/valgrind.supp).
# Open MPI's own suppressions (/usr/share/openmpi/openmpi-valgrind.supp) cover its known
# reports; SUPP adds leaks whose allocation stack runs through third-party libraries. Each
# process writes its own log; the test fails if any log has errors, or if a log is missing
# (so a run where valgrind did not start cannot pass).
set -euo pipefail
command -v valgrind >/dev/null || { echo "valgrind_mpi: valgrind not installed (jobs/install-deps.sh --test)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
ompi_supp=/usr/share/openmpi/openmpi-valgrind.supp
vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --num-callers=40 --suppressions="$SUPP")
[ -f "$ompi_supp" ] && vg+=(--suppressions="$ompi_supp")
small=(--steps 3 --tokens 48 --d-model 16 --d-ffn 24 --experts 4 --top-k 2 --layers 2
       --flush-interval 2 --capacity-factor 1.0 --workload zipf:1.2 --quiet)
fail=0

check_logs() { # check_logs WHAT EXPECTED_COUNT PATTERN
    local what=$1 want=$2 n=0 f
    for f in $3; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        if ! grep -q "ERROR SUMMARY: 0 errors" "$f"; then
            echo "valgrind_mpi: $what: errors in $f:"; sed -n '1,120p' "$f"; fail=1
        fi
    done
    if [ "$n" -lt "$want" ]; then  # more: forked children (the reader's probe)
        echo "valgrind_mpi: $what: $n valgrind logs, want at least $want"; fail=1
    fi
}

for ex in flat hier; do
    env ${KEEPDL:+LD_PRELOAD="$KEEPDL"} "$MPIEXEC" -np 2 "${vg[@]}" --log-file="$work/$ex.%p.log" \
        "$MOERUN" "${small[@]}" --exchange "$ex" --ranks-per-node 1 \
        --telemetry "$work/$ex.h5" >"$work/$ex.out" 2>&1 \
        || { echo "valgrind_mpi: moerun --exchange $ex exited non-zero:"; tail -20 "$work/$ex.out"; fail=1; }
    check_logs "moerun --exchange $ex" 2 "$work/$ex.*.log"
done
"${vg[@]}" --log-file="$work/analyze.%p.log" "$ANALYZE" "$work/hier.h5" >"$work/analyze.out" 2>&1 \
    || { echo "valgrind_mpi: moerun-analyze exited non-zero:"; tail -20 "$work/analyze.out"; fail=1; }
check_logs "moerun-analyze" 1 "$work/analyze.*.log"
grep -q "routed" "$work/analyze.out" || { echo "valgrind_mpi: moerun-analyze printed no routing summary"; fail=1; }
[ "$fail" -eq 0 ] && echo "valgrind_mpi: ok (moerun flat and hier on 2 ranks, moerun-analyze: no errors)"
exit "$fail"
