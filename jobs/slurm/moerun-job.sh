#!/usr/bin/env bash
# moerun-job.sh — the body every moerun batch script runs inside a Slurm allocation
# (sourced by one-node.sbatch, multi-node.sbatch and sweep.sbatch; not submitted itself).
#
# Launches moerun on the allocation with srun (MOEJOB_LAUNCHER=srun, the default: PMIx) or
# with Open MPI's mpirun (MOEJOB_LAUNCHER=mpirun), writes telemetry to
#   $MOEJOB_OUT/moerun-<job id>[_<array index>].h5   (and .json for the summary),
# and forwards SIGUSR1/SIGTERM that Slurm sends to the batch shell (#SBATCH
# --signal=B:USR1@SECONDS) to the launcher, so every rank stops after its current step and
# the file is closed before the time limit (docs/signals.md, docs/slurm.md).
#
# Variables (all optional; MOEJOB_*, because moerun rejects MOERUN_* variables that are not
# its options): MOEJOB_HOME (checkout with build/; default $SLURM_SUBMIT_DIR),
# MOEJOB_BIN (the moerun binary; default $MOEJOB_HOME/build/moerun), MOEJOB_OUT (default
# $SLURM_SUBMIT_DIR/moerun-out), MOEJOB_LAUNCHER (srun|mpirun), MOEJOB_ARGS (extra moerun
# arguments, word-split on purpose: e.g. "--experts 64 --top-k 8"), and any MOERUN_* option
# variable (docs/config.md), which moerun reads itself.
set -euo pipefail

: "${SLURM_JOB_ID:?moerun-job.sh runs inside a Slurm job (sbatch)}"
home=${MOEJOB_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
moerun=${MOEJOB_BIN:-$home/build/moerun}
out=${MOEJOB_OUT:-${SLURM_SUBMIT_DIR:-$PWD}/moerun-out}
launcher=${MOEJOB_LAUNCHER:-srun}
tag="moerun-$SLURM_JOB_ID"
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
    tag="moerun-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
[ -x "$moerun" ] || { echo "moerun-job: $moerun is not an executable (set MOEJOB_BIN or MOEJOB_HOME)" >&2; exit 2; }
mkdir -p -- "$out"

extra=()
if [ -n "${MOEJOB_ARGS:-}" ]; then
    read -r -a extra <<<"$MOEJOB_ARGS"
fi
args=(--telemetry "$out/$tag.h5" --summary-json "$out/$tag.json" "${extra[@]}")

export OPENBLAS_NUM_THREADS=1
case "$launcher" in
srun)
    # one task per rank, bound to cores where the node allows it
    cmd=(srun --mpi=pmix --kill-on-bad-exit=1 "$moerun" "${args[@]}") ;;
mpirun)
    # Open MPI reads the allocation from Slurm (hosts and slots); -x forwards what moerun
    # needs; mapping by core, no oversubscription unless the user asks for it
    cmd=(mpirun -x OPENBLAS_NUM_THREADS "$moerun" "${args[@]}") ;;
*)
    echo "moerun-job: MOEJOB_LAUNCHER must be srun or mpirun, not '$launcher'" >&2; exit 2 ;;
esac

echo "moerun-job: job $SLURM_JOB_ID${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)} on ${SLURM_JOB_NODELIST:-?}: ${cmd[*]}"
"${cmd[@]}" &
child=$!
forward() { kill -"$1" "$child" 2>/dev/null || true; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM
trap 'forward INT' INT
rc=0
while :; do
    wait "$child" && rc=0 || rc=$?
    # wait returns early (>128) when a trapped signal arrives: keep waiting for the launcher
    kill -0 "$child" 2>/dev/null || break
done
echo "moerun-job: launcher exited $rc; telemetry $out/$tag.h5"
exit "$rc"
