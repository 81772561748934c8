#!/usr/bin/env bash
# faults.sh — real signals, a killed rank, a full disk and a vanishing telemetry path, sent
# to real `mpirun` runs of moerun; checks exit codes, the summary, and the telemetry file
# (readable, closed or not, consistent: check_telemetry.py) after each.
#
# Usage: faults.sh CASE   (usr1-mpirun | usr2-mpirun | term-mpirun | int-mpirun | term-ranks |
#                          int-ranks | term-one-rank | usr1-one-rank | kill-rank | disk-full |
#                          vanish | umask | lock | full-stdout | stop-in-create)
# One case per row of docs/signals.md's signal tables.
# Env: MOERUN, ANALYZE, MPIEXEC, PYTHON, CHECK_TELEMETRY. disk-full needs root (tmpfs).
# What Open MPI 4.1 does with signals (measured; docs/signals.md):
#   SIGUSR1/SIGUSR2 to mpirun: forwarded to every rank at once; mpirun exits with the
#     ranks' code (128+10);
#   SIGTERM/SIGINT to mpirun: mpirun sends SIGCONT, waits odls_base_sigkill_timeout
#     (default 1 s), sends SIGTERM, waits again, then SIGKILL; mpirun itself exits 1. With
#     the default 1 s, ranks whose step takes longer are killed before they can flush.
#   SIGTERM to the ranks themselves (scancel, Slurm's time limit): each rank stops after its
#     current step; mpirun exits with their code (128+15).
set -uo pipefail
case=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-faults.XXXXXX")
mnt=""
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "faults[$case]: FAIL: $*"; [ -f "$work/err" ] && sed 's/^/    stderr: /' "$work/err" | grep -v alert | tail -8; exit 1; }
# Small fast steps; long enough that the run is still going when the fault comes.
small=(--tokens 64 --d-model 16 --d-ffn 24 --experts 8 --top-k 2 --layers 2
       --capacity-factor 1.0 --workload zipf:1.2 --progress-interval 0)

start() { # start TELEMETRY [extra moerun args]: mpirun in the background, PID in $pid
    local tel=$1; shift
    "$MPIEXEC" -np 2 "$MOERUN" "${small[@]}" --telemetry "$tel" --flush-interval 20 \
        --summary-json "$work/sum.json" "$@" </dev/null >"$work/out" 2>"$work/err" &
    pid=$!
}
wait_steps() { # wait until rank 0 reported step N (bounded)
    local n=$1
    for _ in $(seq 1 300); do
        grep -q "step $n/" "$work/err" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || fail "run ended before step $n"
        sleep 0.1
    done
    fail "run did not reach step $n in 30 s"
}
finish() { # wait for mpirun (bounded), its exit code in $rc
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "mpirun still runs 60 s after the fault"
    wait "$pid"; rc=$?; pid=""
}
check_file() { # check_file FILE WANT_STATUS: readable, consistent, status as expected
    local f=$1 want=$2 status
    "$PYTHON" "$CHECK_TELEMETRY" "$f" || fail "check_telemetry failed on $f"
    status=$("$ANALYZE" "$f" --json - | sed -n 's/.*"status":[[:space:]]*"\([a-z]*\)".*/\1/p' | head -n1)
    [ "$status" = "$want" ] || fail "telemetry status '$status', want '$want'"
}
check_cut_short() { # check_cut_short SIGNUM
    grep -q "run cut short by signal $1 after" "$work/out" || fail "summary lacks 'run cut short by signal $1'"
    grep -q "^== moerun summary (interrupted)" "$work/out" || fail "no interrupted summary printed"
    check_file "$work/t.h5" interrupted
    # the file holds exactly the steps the summary reports
    local done_steps
    done_steps=$(sed -n "s/.*run cut short by signal $1 after \([0-9]*\) of.*/\1/p" "$work/out")
    "$PYTHON" - "$work/t.h5" "$done_steps" <<'EOF' || fail "steps in the file differ from the summary"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
n, want = f["steps/step"].shape[0], int(sys.argv[2])
ok = n == want == int(f.attrs["steps_completed"]) and "end_time" in f.attrs
print(f"faults: file has {n} steps, summary says {want}, closed: {'end_time' in f.attrs}")
sys.exit(0 if ok else 1)
EOF
}

case "$case" in
usr1-mpirun | usr2-mpirun)
    sig=USR1; num=10
    [ "$case" = usr2-mpirun ] && sig=USR2 && num=12
    start "$work/t.h5" --steps 1000000
    wait_steps 50
    kill -"$sig" "$pid"
    finish
    [ "$rc" -eq $((128 + num)) ] || fail "mpirun exit $rc, want $((128 + num)) (128 + SIG$sig)"
    check_cut_short "$num" ;;
term-one-rank | usr1-one-rank)
    # one rank alone gets the signal (an OOM-killer warning, a user's kill): the ranks agree
    # on it at the next step, all stop after the same step, and rank 0, which got nothing,
    # reports that signal's number and exits with it
    sig=TERM; num=15
    [ "$case" = usr1-one-rank ] && sig=USR1 && num=10
    start "$work/t.h5" --steps 1000000
    wait_steps 50
    r1=$(pgrep -P "$pid" | tail -n 1)
    kill -"$sig" "$r1"
    finish
    [ "$rc" -eq $((128 + num)) ] || fail "mpirun exit $rc, want $((128 + num)) (128 + SIG$sig, sent to rank 1 only)"
    check_cut_short "$num" ;;
int-mpirun)
    # as term-mpirun: mpirun relays SIGINT (Ctrl-C) as SIGTERM to the ranks, 5 s after it
    # (then 5 s more before SIGKILL: enough for these millisecond steps to finish and flush)
    export OMPI_MCA_odls_base_sigkill_timeout=5
    start "$work/t.h5" --steps 1000000
    wait_steps 50
    kill -INT "$pid"
    finish
    [ "$rc" -eq 1 ] || fail "mpirun exit $rc after SIGINT, want 1 (docs/signals.md)"
    check_cut_short 15 ;;
term-mpirun)
    # mpirun sends SIGTERM to the ranks one odls_base_sigkill_timeout after it got its own,
    # and SIGKILL one more timeout later: the default 1 s leaves a loaded machine too little
    # time to flush and print (docs/signals.md), so this test gives the ranks 10 s
    export OMPI_MCA_odls_base_sigkill_timeout=10
    start "$work/t.h5" --steps 1000000
    wait_steps 50
    kill -TERM "$pid"
    finish
    [ "$rc" -eq 1 ] || fail "mpirun exit $rc after SIGTERM, want 1 (docs/signals.md)"
    check_cut_short 15 ;;
term-ranks | int-ranks)
    sig=TERM; num=15
    [ "$case" = int-ranks ] && sig=INT && num=2
    start "$work/t.h5" --steps 1000000
    wait_steps 50
    ranks=$(pgrep -P "$pid")
    [ "$(echo "$ranks" | wc -w)" -eq 2 ] || fail "expected 2 rank processes under mpirun, found: $ranks"
    # shellcheck disable=SC2086
    kill -"$sig" $ranks
    finish
    [ "$rc" -eq $((128 + num)) ] || fail "mpirun exit $rc, want $((128 + num))"
    check_cut_short "$num" ;;
stop-in-create)
    # a rank stopped before its first step (SIGSTOP while it draws its expert weights, which
    # the watchdog does not time): the other rank waits in creation's next collective, and
    # its watchdog (--step-timeout 3) ends it with exit 3 and one line naming engine
    # creation; mpirun then ends the job (the stopped rank too)
    "$MPIEXEC" -np 2 "$MOERUN" --experts 8 --d-model 1024 --d-ffn 16384 --tokens 16 --steps 2 \
        --telemetry none --step-timeout 3 --progress-interval 0 </dev/null >"$work/out" 2>"$work/err" &
    pid=$!
    r1=""
    for _ in $(seq 1 1500); do # until a rank is resident above 128 MB (of 512 MB of weights)
        for r in $(pgrep -P "$pid"); do
            kb=$(awk '/^VmRSS/ {print $2}' "/proc/$r/status" 2>/dev/null)
            [ "${kb:-0}" -gt 131072 ] && r1=$r && break
        done
        [ -n "$r1" ] && break
        kill -0 "$pid" 2>/dev/null || fail "run ended before a rank drew its weights"
        sleep 0.02
    done
    [ -n "$r1" ] || fail "no rank drew its weights in 30 s"
    kill -STOP "$r1"
    t0=$(date +%s)
    finish
    t1=$(date +%s)
    [ "$rc" -ne 0 ] || fail "mpirun exit 0 with a rank stopped in creation"
    line=$(grep -E "^moerun\[rank [01] on [^]]+\]: error: engine creation \(topology, placement, exchange setup, telemetry file\) has not finished after [0-9.]+ s \(--step-timeout 3\)" "$work/err" | head -n 1)
    [ -n "$line" ] || fail "no watchdog line naming engine creation"
    [ "$(grep -c "has not finished" "$work/err")" -eq 1 ] || fail "more than one watchdog line"
    [ $((t1 - t0)) -le 60 ] || fail "the job ended $((t1 - t0)) s after the stop, want <= 60"
    grep -q "step 1/\|summary" "$work/out" "$work/err" && fail "a step ran with a rank stopped"
    echo "faults[$case]: mpirun exit $rc $((t1 - t0)) s after the stop; $line" ;;
kill-rank)
    start "$work/t.h5" --steps 1000000
    wait_steps 100
    r1=$(pgrep -P "$pid" | tail -n 1)
    kill -KILL "$r1"
    finish
    [ "$rc" -ne 0 ] || fail "mpirun exit 0 after a rank was killed"
    # the killed rank is reported with its signal's number
    grep -q "rank 1 with PID .* exited on signal 9" "$work/err" \
        || fail "mpirun did not report rank 1 'exited on signal 9'"
    check_file "$work/t.h5" running
    n=$("$ANALYZE" "$work/t.h5" --json - | sed -n 's/.*"steps_in_file":[[:space:]]*\([0-9]*\).*/\1/p' | head -n1)
    [ -n "$n" ] && [ "$n" -ge 20 ] || fail "analyser reports '$n' steps, want >= 20 (flushed before the kill)"
    echo "faults[$case]: mpirun exit $rc; the analyser reads $n steps" ;;
disk-full)
    [ "$(id -u)" -eq 0 ] || fail "needs root to mount a tmpfs"
    mnt="$work/mnt"; mkdir -p "$mnt"
    mount -t tmpfs -o size=2m tmpfs "$mnt" || { mnt=""; fail "cannot mount a tmpfs"; }
    start "$mnt/t.h5" --steps 1000000
    finish
    [ "$rc" -eq 1 ] || fail "mpirun exit $rc, want 1"
    grep -q "free on its file system" "$work/err" || fail "no clear disk-full message"
    check_file "$mnt/t.h5" error ;;
vanish)
    mkdir -p "$work/dir"
    start "$work/dir/t.h5" --steps 1000000
    wait_steps 50
    rm -rf "$work/dir"
    finish
    [ "$rc" -eq 1 ] || fail "mpirun exit $rc, want 1"
    grep -q "was removed during the run" "$work/err" || fail "no clear message for the removed file" ;;
umask)
    for m in 000 002 022 077; do
        rm -f "$work/t.h5" "$work/sum.json"
        (umask "$m"; "$MPIEXEC" -np 2 "$MOERUN" "${small[@]}" --quiet --steps 2 \
            --telemetry "$work/t.h5" --summary-json "$work/sum.json" </dev/null >/dev/null 2>&1) \
            || fail "run with umask $m failed"
        for f in "$work/t.h5" "$work/sum.json"; do
            mode=$(stat -c %a "$f")
            want=$(printf '%o' $(( 0666 & ~0$m & ~02 )))
            [ "$mode" = "$want" ] || fail "umask $m: $f has mode $mode, want $want"
        done
        echo "faults[$case]: umask $m -> mode $mode"
    done ;;
lock)
    # a second run on the telemetry path of a running one fails at once naming it, and
    # the first run's file is complete; the lock file goes away with the first run
    start "$work/t.h5" --steps 1000000
    wait_steps 20
    [ -s "$work/t.h5.lock" ] || fail "no lock file next to the telemetry of a running run"
    holder=$(cat "$work/t.h5.lock")
    t0=$(date +%s)
    for extra in "" "--overwrite"; do
        # shellcheck disable=SC2086 # $extra is one optional flag
        "$MPIEXEC" -np 2 "$MOERUN" "${small[@]}" --quiet --steps 2 --telemetry "$work/t.h5" \
            $extra </dev/null >/dev/null 2>"$work/err2"; rc2=$?
        [ "$rc2" -ne 0 ] || fail "a second run on a telemetry file in use exited 0 ($extra)"
        grep -q "is in use by another run ($holder)" "$work/err2" \
            || fail "second run ($extra) did not name the first ($holder): $(head -n1 "$work/err2")"
    done
    [ $(( $(date +%s) - t0 )) -le 30 ] || fail "the second runs took over 30 s to fail"
    kill -USR1 "$pid"
    finish
    [ "$rc" -eq 138 ] || fail "first run: mpirun exit $rc, want 138"
    check_file "$work/t.h5" interrupted
    [ ! -e "$work/t.h5.lock" ] || fail "lock file left after the run closed"
    echo "faults[$case]: second runs refused: $(head -n1 "$work/err2")" ;;
full-stdout)
    # a full standard output is an error, not a silent loss: every tool exits non-zero.
    # moerun as a singleton (under mpirun the ranks write to a pipe to mpirun, and Open MPI
    # 4.1.4 drops what it cannot write: docs/signals.md)
    "$MOERUN" "${small[@]}" --steps 2 --telemetry "$work/t.h5" \
        </dev/null >/dev/full 2>"$work/err"; rc=$?
    [ "$rc" -ne 0 ] || fail "moerun with stdout on /dev/full exited 0"
    grep -q "cannot write to standard output" "$work/err" || fail "moerun: no message for the full stdout"
    check_file "$work/t.h5" complete
    "$ANALYZE" "$work/t.h5" >/dev/full 2>"$work/err"; rc=$?
    [ "$rc" -eq 1 ] && grep -q "cannot write to standard output" "$work/err" \
        || fail "moerun-analyze with stdout on /dev/full: exit $rc, $(cat "$work/err")"
    "$ANALYZE" "$work/t.h5" --json - >/dev/full 2>"$work/err"; rc=$?
    [ "$rc" -eq 1 ] || fail "moerun-analyze --json - on /dev/full: exit $rc"
    "$MOERUN" --print-config >/dev/full 2>"$work/err"; rc=$?
    [ "$rc" -ne 0 ] || fail "moerun --print-config on /dev/full exited 0"
    echo "faults[$case]: ok for moerun, moerun-analyze (text and --json -), --print-config" ;;
*) echo "faults: unknown case '$case'"; exit 2 ;;
esac
echo "faults[$case]: ok"
