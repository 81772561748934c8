#!/usr/bin/env bash
# emulate.sh — N emulated hosts on one machine, for system tests and studies (docs/testbed.md).
#
# Each host is a network namespace moe-TAG-hI with its own UTS (hostname hI), IPC and mount
# namespace (private tmpfs /dev/shm, its own /etc/hosts), kept alive by one "holder" process
# (a bounded `sleep`). Host I has eth0 = 10.251.0.(10+I)/24, a veth pair whose other end is a
# port of bridge br0 in a namespace of its own, moe-TAG-br. No default route, no NAT; the
# root namespace's interfaces and routes are never touched. Optional tc tbf shaping (--rate)
# on both directions of every host link. Open MPI reaches the hosts through a launch agent
# (STATE/agent = `emulate.sh rsh`) that enters a host as ssh would: `sh -c "<joined words>"`
# with a clean environment.
#
# What always holds:
#  1. Every process this script starts is recorded in STATE (holder.hI, procs/PID, each with
#     its start time) and is ended by that PID (or the process group it leads) alone, after
#     checking the start time; nothing is ended by name or found by scanning /proc.
#  2. Everything is bounded in time: holders sleep --lifetime seconds, commands run under
#     timeout(1) with at most the remaining lifetime.
#  3. `down` ends recorded processes, then holders (their mount namespaces and mounts go with
#     them), then deletes the recorded namespaces and the state dir; it is idempotent and also
#     cleans up after a partial `up`. A failing `up` tears down what it made.
#
# Exit codes: 0 success; 1 runtime error; 2 usage error (one message naming the flag).
set -Eeuo pipefail

PROG=emulate.sh
SELF=$(readlink -f "${BASH_SOURCE[0]}")
SUBNET=10.251.0.0/24
NET_PREFIX=10.251.0
ADDR_BASE=10
MAX_HOSTS=16
FORWARD_ENV="OPENBLAS_NUM_THREADS UCX_NET_DEVICES UCX_TCP_TX_SEG_SIZE UCX_TCP_RX_SEG_SIZE"
FORWARD_IF_SET="LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS OPENBLAS_CORETYPE OPENBLAS_L2_SIZE"
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() {
    cat <<'EOF'
Usage: emulate.sh [--state DIR] COMMAND [options]

Stands up N emulated hosts (network + UTS + IPC + mount namespaces) on this machine,
joined by a bridge in its own namespace on 10.251.0.0/24, for MPI system tests and
studies. Needs root. See docs/testbed.md.

Commands:
  up --hosts N [--rate RATE] [--slots S] [--lifetime SEC] [--shm-size SIZE]
        create hosts h0..h(N-1) (N in 1..16) with addresses 10.251.0.(10+i)/24;
        --rate shapes every host link in both directions with tc tbf (e.g. 100mbit,
        1gbit; units bit, kbit, mbit, gbit); --slots is the Open MPI slots per host in
        the generated hostfile [2]; --lifetime bounds the test bed [3600 s];
        --shm-size is each host's /dev/shm tmpfs size [1g]
  run [--timeout SEC] [--] CMD ARGS...
        run CMD inside h0 (cwd and environment kept) with the test-bed defaults for Open
        MPI and UCX set unless already set (hostfile, launch agent, TCP on 10.251.0.0/24,
        no binding, yield when idle; see docs/testbed.md); e.g. run -- mpirun -np 8 prog
  exec HOST [--timeout SEC] [--] CMD ARGS...
        run CMD inside HOST (hI, its address, or I), cwd and environment kept
  rsh HOST WORDS...
        the Open MPI launch agent (STATE/agent): like `ssh HOST WORDS...`, runs
        sh -c "WORDS" inside HOST with a clean environment (PATH, HOME, USER, LOGNAME)
  status
        print the hosts, their holders, addresses and shaping
  down
        end every recorded process, remove namespaces, mounts and the state dir
        (idempotent; also after a partial up)

Global options:
  --state DIR   state directory of this test bed [$MOE_TESTBED or /tmp/moe-testbed];
                use one per test bed: two test beds never share names (a random tag)
  -h, --help    print this help

Exit codes: 0 success; 1 runtime error; 2 usage error.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }
log() { [ -n "${STATE:-}" ] && [ -d "$STATE" ] && echo "$(date +%T) $*" >>"$STATE/log"; return 0; }

# start_time PID -> field 22 of /proc/PID/stat (clock ticks since boot); "" if gone or a
# zombie (ended, not yet reaped by its parent)
start_time() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    s=${s##*) }
    set -- $s
    [ "$1" = Z ] || echo "${20}"
}

# alive PID START -> true if PID is the same process that was recorded
alive() { [ -n "$1" ] && [ -n "$2" ] && [ "$(start_time "$1")" = "$2" ]; }

# end_recorded PID START GROUP: TERM then KILL the recorded process (its group if GROUP=1
# and it still leads it), only if it is still the process that was recorded.
end_recorded() {
    local pid=$1 start=$2 group=$3 target i
    alive "$pid" "$start" || return 0
    target=$pid
    if [ "$group" = 1 ] && [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
        target=-$pid
    fi
    kill -TERM -- "$target" 2>/dev/null || true
    for i in $(seq 50); do alive "$pid" "$start" || return 0; sleep 0.1; done
    kill -KILL -- "$target" 2>/dev/null || true
    for i in $(seq 50); do alive "$pid" "$start" || return 0; sleep 0.1; done
    echo "$PROG: process $pid did not end" >&2
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, veth, mounts); try sudo"
}

need_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (Debian: iproute2, util-linux, coreutils)"
}

load_state() {
    [ -f "$STATE/tag" ] || die "no test bed at $STATE (run '$PROG --state $STATE up --hosts N' first)"
    TAG=$(cat "$STATE/tag")
    NHOSTS=$(cat "$STATE/nhosts" 2>/dev/null || echo 0)
    DEADLINE=$(cat "$STATE/deadline" 2>/dev/null || echo 0)
}

# prune_procs: forget recorded commands that have ended
prune_procs() {
    local f start
    for f in "$STATE"/procs/*; do
        [ -f "$f" ] || continue
        read -r start _ <"$f" 2>/dev/null || start=""
        alive "${f##*/}" "$start" || rm -f "$f"
    done
}

# remaining -> seconds left before the holders end
remaining() { local r=$((DEADLINE - $(date +%s))); [ $r -gt 0 ] && echo $r || echo 0; }

# host_index NAME -> I for hI, I, or 10.251.0.(10+I); exits 2 when not a host of this bed
host_index() {
    local h=$1 i=""
    case $h in
    h[0-9] | h[0-9][0-9]) i=${h#h} ;;
    [0-9] | [0-9][0-9]) i=$h ;;
    "$NET_PREFIX".*) i=$((${h##*.} - ADDR_BASE)) ;;
    esac
    if [ -z "$i" ] || [ "$i" -lt 0 ] || [ "$i" -ge "$NHOSTS" ]; then
        usage_error "unknown host '$h': this test bed has h0..h$((NHOSTS - 1)) (10.251.0.$ADDR_BASE..10.251.0.$((ADDR_BASE + NHOSTS - 1)))"
    fi
    echo "$i"
}

# holder_pid I -> PID of host I's holder, checked alive; dies otherwise
holder_pid() {
    local pid start
    read -r pid start <"$STATE/holder.h$1" 2>/dev/null || die "host h$1 has no holder (partial up?)"
    alive "$pid" "$start" || die "host h$1's holder (pid $pid) has ended: lifetime over? run '$PROG --state $STATE down' and up again"
    echo "$pid"
}

# rate_bytes RATE -> bytes per second (tc units: bit kbit mbit gbit tbit, SI)
rate_bytes() {
    local r=$1 n u
    [[ $r =~ ^([0-9]+)(bit|kbit|mbit|gbit|tbit)$ ]] \
        || usage_error "--rate '$r': expected a whole number with a unit bit, kbit, mbit, gbit or tbit (e.g. 100mbit, 1gbit)"
    n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]}
    case $u in
    bit) ;; kbit) n=$((n * 1000)) ;; mbit) n=$((n * 1000000)) ;;
    gbit) n=$((n * 1000000000)) ;; tbit) n=$((n * 1000000000000)) ;;
    esac
    [ "$n" -ge 100000 ] || usage_error "--rate '$r': at least 100kbit"
    echo $((n / 8))
}

# ---------------------------------------------------------------- up
cmd_up() {
    local n="" rate="" slots=2 lifetime=3600 shm=1g i ns br bytes burst pid start
    while [ $# -gt 0 ]; do
        case $1 in
        --hosts) n=${2:-}; shift 2 || usage_error "--hosts needs a value" ;;
        --hosts=*) n=${1#*=}; shift ;;
        --rate) rate=${2:-}; shift 2 || usage_error "--rate needs a value" ;;
        --rate=*) rate=${1#*=}; shift ;;
        --slots) slots=${2:-}; shift 2 || usage_error "--slots needs a value" ;;
        --slots=*) slots=${1#*=}; shift ;;
        --lifetime) lifetime=${2:-}; shift 2 || usage_error "--lifetime needs a value" ;;
        --lifetime=*) lifetime=${1#*=}; shift ;;
        --shm-size) shm=${2:-}; shift 2 || usage_error "--shm-size needs a value" ;;
        --shm-size=*) shm=${1#*=}; shift ;;
        *) usage_error "up: unknown option '$1'" ;;
        esac
    done
    [ -n "$n" ] || usage_error "up: --hosts N is required (1..$MAX_HOSTS)"
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le $MAX_HOSTS ] \
        || usage_error "--hosts '$n': expected a number of hosts 1..$MAX_HOSTS"
    [[ $slots =~ ^[0-9]+$ ]] && [ "$slots" -ge 1 ] && [ "$slots" -le 256 ] \
        || usage_error "--slots '$slots': expected 1..256 Open MPI slots per host"
    [[ $lifetime =~ ^[0-9]+$ ]] && [ "$lifetime" -ge 10 ] && [ "$lifetime" -le 604800 ] \
        || usage_error "--lifetime '$lifetime': expected 10..604800 seconds"
    [[ $shm =~ ^[0-9]+[kmg]?$ ]] || usage_error "--shm-size '$shm': expected a size such as 512m or 1g"
    bytes=""
    [ -z "$rate" ] || bytes=$(rate_bytes "$rate")
    need_root
    need_tools ip unshare nsenter timeout setsid mount sleep ps
    [ -z "$rate" ] || need_tools tc
    [[ $STATE != *[[:space:]]* ]] || usage_error "--state '$STATE': no spaces allowed"
    if [ -e "$STATE/tag" ]; then
        die "a test bed (or a leftover) is at $STATE: run '$PROG --state $STATE down' first, or pick another --state"
    fi
    if [ -n "$(ip -4 route show table all root "$SUBNET" 2>/dev/null)" ] \
        || [ -n "$(ip -4 -o addr show to "$SUBNET" 2>/dev/null)" ]; then
        die "$SUBNET is in use in the root namespace (a leftover?): $(ip -4 -o addr show to "$SUBNET"; ip -4 route show table all root "$SUBNET")"
    fi

    mkdir -p "$STATE/procs" "$STATE/tmp"
    STATE=$(cd "$STATE" && pwd)
    for i in 1 2 3 4 5 6 7 8; do
        TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
        [ -e "/run/netns/moe-$TAG-br" ] || break
    done
    echo "$TAG" >"$STATE/tag"
    NHOSTS=$n
    DEADLINE=$(($(date +%s) + lifetime))
    echo "$n" >"$STATE/nhosts"
    echo "$DEADLINE" >"$STATE/deadline"
    echo "${rate:-none}" >"$STATE/rate"
    : >"$STATE/netns"
    trap 'echo "$PROG: up failed; tearing down what was made" >&2; cmd_down >/dev/null 2>&1 || true; exit 1' ERR INT TERM
    log "up: tag $TAG, $n hosts, rate ${rate:-none}, lifetime $lifetime s"

    # /etc/hosts of every host, and the Open MPI hostfile
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        for i in $(seq 0 $((n - 1))); do echo "$NET_PREFIX.$((ADDR_BASE + i)) h$i"; done
    } >"$STATE/etc-hosts"
    for i in $(seq 0 $((n - 1))); do echo "h$i slots=$slots"; done >"$STATE/hostfile"
    printf '#!/bin/sh\n# Open MPI launch agent of test bed %s (plm_rsh_agent)\nexec %s --state %s rsh "$@"\n' \
        "$TAG" "$SELF" "$STATE" >"$STATE/agent"
    chmod +x "$STATE/agent"

    # the bridge, in a namespace of its own
    br=moe-$TAG-br
    echo "$br" >>"$STATE/netns"
    ip netns add "$br"
    ip -n "$br" link set lo up
    ip -n "$br" link add br0 type bridge
    ip -n "$br" link set br0 up
    if [ -n "$bytes" ]; then
        burst=$((bytes / 250)) # 4 ms at the rate, at least 64 KiB (a GSO packet)
        [ $burst -ge 65536 ] || burst=65536
        echo "$burst" >"$STATE/burst"
    fi

    for i in $(seq 0 $((n - 1))); do
        ns=moe-$TAG-h$i
        echo "$ns" >>"$STATE/netns"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$br" link add "v$i" type veth peer name eth0 netns "$ns"
        ip -n "$br" link set "v$i" master br0
        ip -n "$br" link set "v$i" up
        ip -n "$ns" addr add "$NET_PREFIX.$((ADDR_BASE + i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        if [ -n "$bytes" ]; then
            tc -n "$ns" qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 100ms
            tc -n "$br" qdisc add dev "v$i" root tbf rate "$rate" burst "$burst" latency 100ms
        fi
        # the holder: hostname, private /dev/shm and /etc/hosts, then a bounded sleep.
        # Propagation slave: our mounts stay in, but unmounts of /run/netns/* (ip netns del)
        # still reach this mount namespace, so it never pins another namespace.
        ip netns exec "$ns" unshare --uts --ipc --mount --propagation slave -- \
            sh -c 'hostname "$1" && mount -t tmpfs -o "size=$2,mode=1777" "$6-shm-$1" /dev/shm &&
                   mount --bind "$3" /etc/hosts && : >"$4" && exec sleep "$5"' \
            holder "h$i" "$shm" "$STATE/etc-hosts" "$STATE/ready.h$i" "$lifetime" "moe-$TAG" \
            </dev/null >>"$STATE/log" 2>&1 &
        pid=$!
        start=""
        for _ in $(seq 100); do start=$(start_time "$pid"); [ -z "$start" ] || break; sleep 0.01; done
        echo "$pid $start" >"$STATE/holder.h$i"
    done
    for i in $(seq 0 $((n - 1))); do
        for _ in $(seq 200); do [ -e "$STATE/ready.h$i" ] && break; sleep 0.05; done
        read -r pid start <"$STATE/holder.h$i"
        [ -e "$STATE/ready.h$i" ] && alive "$pid" "$start" \
            || { echo "$PROG: host h$i did not come up:" >&2; tail -n 5 "$STATE/log" >&2; false; }
    done
    trap - ERR INT TERM
    log "up: done"
    echo "$PROG: test bed $TAG up: $n hosts h0..h$((n - 1)) on $SUBNET, rate ${rate:-unshaped}, state $STATE, lifetime $lifetime s"
}

# ---------------------------------------------------------------- down
cmd_down() {
    local f pid start group ns
    if [ ! -d "$STATE" ]; then
        echo "$PROG: nothing at $STATE (already down)"
        return 0
    fi
    need_root
    TAG=$(cat "$STATE/tag" 2>/dev/null || true)
    log "down: tag ${TAG:-?}"
    # 1. commands started by run/exec (process-group leaders) and by the agent (rsh)
    for f in "$STATE"/procs/*; do
        [ -f "$f" ] || continue
        pid=${f##*/}
        read -r start group <"$f" || true
        end_recorded "$pid" "$start" "${group:-0}"
        rm -f "$f"
    done
    # 2. holders: their UTS, IPC and mount namespaces (tmpfs, /etc/hosts bind) end with them
    for f in "$STATE"/holder.h*; do
        [ -f "$f" ] || continue
        read -r pid start <"$f" || true
        end_recorded "${pid:-}" "${start:-}" 0
        rm -f "$f"
    done
    # 3. network namespaces: the recorded ones, and any moe-TAG-* left by a broken up
    if [ -f "$STATE/netns" ]; then
        while read -r ns; do
            [ -z "$ns" ] || [ ! -e "/run/netns/$ns" ] || ip netns del "$ns" || true
        done <"$STATE/netns"
    fi
    if [ -n "$TAG" ]; then
        for f in /run/netns/moe-"$TAG"-*; do
            [ -e "$f" ] && { ip netns del "${f##*/}" || true; }
        done
    fi
    rm -rf "$STATE"
    echo "$PROG: test bed ${TAG:-?} down"
}

# ---------------------------------------------------------------- status
cmd_status() {
    local i pid start state
    load_state
    prune_procs
    echo "test bed $TAG: $NHOSTS hosts, rate $(cat "$STATE/rate"), state $STATE, $(remaining) s of lifetime left"
    for i in $(seq 0 $((NHOSTS - 1))); do
        read -r pid start <"$STATE/holder.h$i" 2>/dev/null || pid=""
        if alive "$pid" "$start"; then state="holder $pid"; else state="holder ENDED"; fi
        printf '  h%-2s %-13s netns moe-%s-h%s  %s\n' "$i" "$NET_PREFIX.$((ADDR_BASE + i))" "$TAG" "$i" "$state"
        if [ "$(cat "$STATE/rate")" != none ]; then
            printf '      %s\n' "$(tc -n "moe-$TAG-h$i" qdisc show dev eth0 2>/dev/null | head -n 1)"
        fi
    done
    echo "  running: $(ls "$STATE/procs" | wc -l) recorded command(s); hostfile $STATE/hostfile; agent $STATE/agent"
}

# ---------------------------------------------------------------- run / exec
# enter I TIMEOUT CMD...: run CMD in host I's namespaces as a process-group leader, recorded
# in STATE/procs while it runs; SIGINT/SIGTERM to this script reach the whole group.
enter() {
    local i=$1 t=$2 hp pid rc start
    shift 2
    hp=$(holder_pid "$i")
    prune_procs
    [ "$(remaining)" -gt 0 ] || die "test bed lifetime is over; down and up again"
    [ -n "$t" ] || t=$(remaining)
    [ "$t" -le "$(remaining)" ] || t=$(remaining)
    setsid nsenter -t "$hp" --net --uts --ipc --mount --wd="$PWD" -- \
        timeout -k 10 "$t" "$@" &
    pid=$!
    start=$(start_time "$pid")
    [ -z "$start" ] || echo "$start 1" >"$STATE/procs/$pid"
    trap 'kill -TERM -- -'"$pid"' 2>/dev/null || true' INT TERM HUP
    rc=0
    wait "$pid" || rc=$?
    # a signal interrupts wait: wait again for the group leader's exit status
    while [ -n "$start" ] && alive "$pid" "$start"; do wait "$pid" || rc=$?; done
    trap - INT TERM HUP
    rm -f "$STATE/procs/$pid"
    [ "$rc" -ne 124 ] || echo "$PROG: command in h$i timed out after $t s" >&2
    return "$rc"
}

parse_timeout() { # sets T and SHIFTN from "--timeout SEC" / "--"
    T=""; SHIFTN=0
    while [ $# -gt 0 ]; do
        case $1 in
        --timeout) T=${2:-}; SHIFTN=$((SHIFTN + 2)); shift 2 || usage_error "--timeout needs a value" ;;
        --timeout=*) T=${1#*=}; SHIFTN=$((SHIFTN + 1)); shift ;;
        --) SHIFTN=$((SHIFTN + 1)); break ;;
        *) break ;;
        esac
    done
    [ -z "$T" ] || { [[ $T =~ ^[0-9]+$ ]] && [ "$T" -ge 1 ]; } \
        || usage_error "--timeout '$T': expected a number of seconds >= 1"
}

# set VAR=VALUE unless the caller already set VAR
default_env() { [ -n "${!1+x}" ] || export "$1=$2"; }

cmd_run() {
    parse_timeout "$@"; shift "$SHIFTN"
    [ $# -gt 0 ] || usage_error "run: a command is required (e.g. run -- mpirun -np 4 prog)"
    load_state
    need_root
    # Open MPI: defaults as OMPI_MCA_* variables, so that a --mca flag given on the command
    # line overrides them instead of being passed twice (which is fatal).
    default_env OMPI_MCA_plm_rsh_agent "$STATE/agent"
    default_env OMPI_MCA_plm_rsh_no_tree_spawn 1
    default_env OMPI_MCA_orte_default_hostfile "$STATE/hostfile"
    default_env OMPI_MCA_orte_tmpdir_base "$STATE/tmp"
    # (an *_if_exclude of the caller's stands: Open MPI refuses both include and exclude)
    [ -n "${OMPI_MCA_btl_tcp_if_exclude:-}" ] || default_env OMPI_MCA_btl_tcp_if_include "$SUBNET"
    [ -n "${OMPI_MCA_oob_tcp_if_exclude:-}" ] || default_env OMPI_MCA_oob_tcp_if_include "$SUBNET"
    default_env OMPI_MCA_hwloc_base_binding_policy none
    default_env OMPI_MCA_mpi_yield_when_idle 1
    default_env OMPI_MCA_rmaps_base_oversubscribe 1
    # Open MPI's TCP transport: messages up to 1 MiB go eagerly (default 64 KiB), so the
    # pieces of the pipelined exchanges and the Alltoallv baseline alike need no rendezvous
    # round trip through both ranks' progress calls (docs/testbed.md, "TCP tuning")
    default_env OMPI_MCA_btl_tcp_eager_limit 1048576
    default_env OMPI_MCA_btl_tcp_max_send_size 1048576
    if [ "$(id -u)" -eq 0 ]; then
        default_env OMPI_ALLOW_RUN_AS_ROOT 1
        default_env OMPI_ALLOW_RUN_AS_ROOT_CONFIRM 1
    fi
    # UCX: the hosts' network device; tcp segments as docs/exchange.md recommends
    default_env UCX_NET_DEVICES eth0
    default_env UCX_TCP_TX_SEG_SIZE 256K
    default_env UCX_TCP_RX_SEG_SIZE 256K
    default_env OPENBLAS_NUM_THREADS 1
    export MOE_TESTBED=$STATE
    # Open MPI forwards only OMPI_* variables to ranks on other hosts (as on a real cluster):
    # give mpirun -x for the others, unless the caller uses mca_base_env_list (mixing the two
    # is fatal). A user's own -x comes later on the line and wins.
    local xs=() v
    case ${1##*/} in
    mpirun | mpiexec | orterun | mpirun.openmpi | mpiexec.openmpi)
        if [ -z "${OMPI_MCA_mca_base_env_list:-}" ]; then
            for v in $FORWARD_ENV; do xs+=(-x "$v"); done
            # sanitizer runs (jobs/test-sanitize.sh): their settings, where set; OpenBLAS's
            # kernel choice, where set (else h0's ranks run other kernels than the rest)
            for v in $FORWARD_IF_SET; do [ -n "${!v:-}" ] && xs+=(-x "$v"); done
        fi ;;
    esac
    enter 0 "$T" "$1" "${xs[@]}" "${@:2}"
}

cmd_exec() {
    local i
    [ $# -gt 0 ] || usage_error "exec: a host is required (exec hI [--timeout SEC] -- CMD...)"
    load_state
    need_root
    i=$(host_index "$1"); shift
    parse_timeout "$@"; shift "$SHIFTN"
    [ $# -gt 0 ] || usage_error "exec: a command is required"
    export MOE_TESTBED=$STATE
    enter "$i" "$T" "$@"
}

# ---------------------------------------------------------------- rsh (launch agent)
# Like ssh: options before the host are ignored, the words after it are joined with spaces
# and run by sh -c in the host with a clean environment. Records itself, then becomes the
# command (nsenter and timeout exec, the PID stays).
cmd_rsh() {
    local i hp t
    while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
    [ $# -ge 2 ] || usage_error "rsh: usage: rsh HOST WORDS..."
    load_state
    i=$(host_index "$1"); shift
    hp=$(holder_pid "$i")
    t=$(remaining)
    [ "$t" -gt 0 ] || die "test bed lifetime is over"
    prune_procs
    echo "$(start_time $$) 0" >"$STATE/procs/$$"
    exec nsenter -t "$hp" --net --uts --ipc --mount --wd="${HOME:-/}" -- \
        timeout -k 10 "$t" env -i PATH="$SAFE_PATH" HOME="${HOME:-/}" USER="$(id -un)" \
        LOGNAME="$(id -un)" SHELL=/bin/sh sh -c "$*"
}

# ---------------------------------------------------------------- main
STATE=${MOE_TESTBED:-/tmp/moe-testbed}
while [ $# -gt 0 ]; do
    case $1 in
    --state) STATE=${2:-}; shift 2 || usage_error "--state needs a directory"; [ -n "$STATE" ] || usage_error "--state needs a directory" ;;
    --state=*) STATE=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { usage >&2; exit 2; }
command=$1; shift
case $command in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
run) cmd_run "$@" ;;
exec) cmd_exec "$@" ;;
rsh) cmd_rsh "$@" ;;
help) usage ;;
*) usage_error "unknown command '$command' (up, run, exec, rsh, status, down)" ;;
esac
