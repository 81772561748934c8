#!/usr/bin/env bash
# mpirun-launch.sh — run moerun with Open MPI's mpirun on a cluster without Slurm.
#
# Usage: jobs/mpirun-launch.sh --np N [--hostfile FILE] [--ppn K] [--out DIR] [--name NAME]
#                              [--] [moerun options...]
#   --np N        ranks (required)
#   --hostfile F  Open MPI hostfile ("node01 slots=8" per line); default: this host only
#   --ppn K       ranks per node (--map-by ppr:K:node); default: fill each host's slots
#   --out DIR     telemetry directory [./moerun-out]; files DIR/NAME.h5 and DIR/NAME.json
#   --name NAME   run name [moerun-<date>-<pid>]
# Ranks are mapped by core and bound to cores (--map-by core --bind-to core) unless --ppn
# is given; OPENBLAS_NUM_THREADS=1 is exported to every rank. To stop a run early and keep
# its telemetry, send SIGUSR1 to this script (forwarded to mpirun, which forwards it to the
# ranks); see docs/signals.md for SIGTERM and Open MPI's kill timeout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
np="" hostfile="" ppn="" out="$PWD/moerun-out" name="moerun-$(date +%Y%m%d-%H%M%S)-$$"
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --np) np=${2:-}; shift 2 ;;
    --hostfile) hostfile=${2:-}; shift 2 ;;
    --ppn) ppn=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    --name) name=${2:-}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
    esac
done
[[ "$np" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun-launch: --np must be a positive integer, got '$np'" >&2; exit 2; }
[ -z "$ppn" ] || [[ "$ppn" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun-launch: --ppn must be a positive integer, got '$ppn'" >&2; exit 2; }
[ -z "$hostfile" ] || [ -r "$hostfile" ] || { echo "mpirun-launch: --hostfile '$hostfile' is not readable" >&2; exit 2; }
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "mpirun-launch: --name may hold letters, digits, '.', '_', '-' only" >&2; exit 2; }
moerun=${MOERUN:-$root/build/moerun}
[ -x "$moerun" ] || { echo "mpirun-launch: $moerun not built (jobs/build.sh)" >&2; exit 2; }
mkdir -p -- "$out"
cmd=(mpirun -np "$np" -x OPENBLAS_NUM_THREADS=1)
[ -n "$hostfile" ] && cmd+=(--hostfile "$hostfile")
if [ -n "$ppn" ]; then cmd+=(--map-by "ppr:$ppn:node"); else cmd+=(--map-by core --bind-to core); fi
[ "$(id -u)" -eq 0 ] && cmd+=(--allow-run-as-root)
cmd+=("$moerun" --telemetry "$out/$name.h5" --summary-json "$out/$name.json" "$@")
echo "mpirun-launch: ${cmd[*]}"
"${cmd[@]}" &
child=$!
trap 'kill -USR1 "$child" 2>/dev/null || true' USR1
trap 'kill -TERM "$child" 2>/dev/null || true' TERM INT
rc=0
while :; do
    wait "$child" && rc=0 || rc=$?
    kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
