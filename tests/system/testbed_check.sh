#!/usr/bin/env bash
# testbed_check.sh — the emulated test bed (jobs/cluster/emulate.sh) works and cleans up.
#
# Env: EMULATE, PYTHON (python3 for tests/system/xfer.py).
# Checks, with 3 hosts and --rate 100mbit:
#   1. bad input: --hosts 0 / 17 / x, --rate fast, unknown host: exit 2, message names the
#      flag, nothing created; a second up on a live state dir is refused (exit 1);
#   2. per host: hostname hI (root's unchanged), /etc/hosts lists every host, its own tmpfs
#      /dev/shm (a file made in h0's is invisible to h1 and to the root namespace), its own
#      IPC and network namespace;
#   3. addresses: each host has only lo and eth0 = 10.251.0.(10+I)/24, one route (the /24),
#      no default route; hosts reach each other over TCP, and cannot reach an address
#      outside 10.251.0.0/24 (the root namespace's own address); the root namespace has no
#      address or route in 10.251.0.0/24;
#   4. shaping: tbf at 100Mbit on every host eth0 and every bridge port; a 4 MB transfer
#      takes at least (bytes - 2 bursts) / rate and at most 2x bytes / rate (best of 3);
#   5. Open MPI through the launch agent: `run -- mpirun -np 6` places 2 ranks on each host
#      (by hostname), OMPI_MCA_* defaults and OPENBLAS_NUM_THREADS reach remote ranks,
#      and the agent gives a clean environment (a variable of ours does not leak);
#   6. down: no namespace (by name and by inode: no process left in any of them), no mount
#      (no /proc/*/mountinfo mentions the tag), no holder or recorded process, no state dir;
#      down again is a no-op (exit 0); down after a partial up removes what it made.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-/usr/bin/python3}
if [ "$(id -u)" -ne 0 ]; then
    echo "testbed: FAIL: the emulated test bed needs root (network, UTS, IPC and mount namespaces); run the system tests as root (CI does)"
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-testbed.XXXXXX")
bed=$work/bed
cleanup() { "$EMULATE" --state "$bed" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM # so that cleanup (EXIT) runs
fail() { echo "testbed: FAIL: $*"; exit 1; }
ok() { echo "testbed: ok: $*"; }
E() { "$EMULATE" --state "$bed" "$@"; }

# 1. bad input ---------------------------------------------------------------------------
expect_usage() { # expect_usage WORD args...: exit 2, message mentions WORD, nothing made
    local word=$1 rc=0
    shift
    E "$@" >"$work/err" 2>&1 || rc=$?
    [ $rc -eq 2 ] || { cat "$work/err"; fail "'$*' exited $rc, expected 2"; }
    grep -q -- "$word" "$work/err" || { cat "$work/err"; fail "'$*': message does not name $word"; }
    [ ! -e "$bed" ] || fail "'$*' left $bed behind"
}
expect_usage --hosts up --hosts 0
expect_usage --hosts up --hosts 17
expect_usage --hosts up --hosts x
expect_usage --hosts up
expect_usage --rate up --hosts 2 --rate fast
expect_usage --lifetime up --hosts 2 --lifetime 5
ok "bad input: exit 2 naming the flag, nothing created ($(head -n 1 "$work/err"))"

# 2. hosts ---------------------------------------------------------------------------------
n=3
E up --hosts $n --rate 100mbit --slots 2 --lifetime 600
tag=$(cat "$bed/tag")
E status >"$work/status"
[ "$(grep -c ' holder [0-9]' "$work/status")" = $n ] && grep -q "^test bed $tag: $n hosts, rate 100mbit" "$work/status" \
    || { cat "$work/status"; fail "status does not show $n live holders"; }
rc=0; E up --hosts 2 >"$work/err" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "run '.*down' first" "$work/err" || { cat "$work/err"; fail "second up on a live state dir: exit $rc"; }
expect_host() { local rc=0; E exec "$@" >"$work/err" 2>&1 || rc=$?; [ $rc -eq 2 ] || { cat "$work/err"; fail "exec $1: exit $rc, expected 2"; }; }
expect_host h$n true
expect_host h-1 true
ok "a second up on a live bed is refused; unknown hosts h$n, h-1 are refused"

root_host=$(hostname)
root_ipc=$(readlink /proc/self/ns/ipc); root_net=$(readlink /proc/self/ns/net)
marker=moe-testbed-marker-$tag
names=""
for i in $(seq 0 $((n - 1))); do
    out=$(E exec h$i -- sh -c 'hostname; readlink /proc/self/ns/ipc /proc/self/ns/net /proc/self/ns/uts; stat -f -c %T /dev/shm; grep -c "^10\.251\.0\." /etc/hosts')
    set -- $out
    [ "$1" = "h$i" ] || fail "h$i: hostname '$1'"
    [ "$2" != "$root_ipc" ] || fail "h$i shares the root IPC namespace"
    [ "$3" != "$root_net" ] || fail "h$i shares the root network namespace"
    [ "$5" = tmpfs ] || fail "h$i: /dev/shm is '$5', expected its own tmpfs"
    [ "$6" = "$n" ] || fail "h$i: /etc/hosts lists $6 test-bed hosts, expected $n"
    case " $names " in *" $2 "* | *" $3 "* | *" $4 "*) fail "h$i shares a namespace with another host" ;; esac
    names="$names $2 $3 $4"
done
[ "$(hostname)" = "$root_host" ] || fail "the root namespace's hostname changed"
E exec h0 -- sh -c "echo x > /dev/shm/$marker"
E exec h0 -- test -f "/dev/shm/$marker" || fail "h0 does not see its own /dev/shm file"
E exec h1 -- test ! -e "/dev/shm/$marker" || fail "h1 sees h0's /dev/shm"
[ ! -e "/dev/shm/$marker" ] || fail "the root namespace sees h0's /dev/shm"
E exec h1 -- getent hosts h2 | grep -q '^10\.251\.0\.12 ' || fail "h1 cannot resolve h2 to 10.251.0.12"
ok "hostnames h0..h$((n - 1)), own IPC/net/UTS namespaces, own /dev/shm, /etc/hosts with $n hosts"

# 3. addresses and reachability ------------------------------------------------------------
for i in $(seq 0 $((n - 1))); do
    addrs=$(E exec h$i -- ip -4 -o addr show | awk '{print $2 "=" $4}' | sort | tr '\n' ' ')
    [ "$addrs" = "eth0=10.251.0.$((10 + i))/24 lo=127.0.0.1/8 " ] || fail "h$i addresses: $addrs"
    routes=$(E exec h$i -- ip -4 route show table all | grep -v '^local \|^broadcast ' | tr '\n' ';')
    [ "$routes" = "10.251.0.0/24 dev eth0 proto kernel scope link src 10.251.0.$((10 + i)) ;" ] \
        || fail "h$i routes: $routes"
    links=$(E exec h$i -- ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "eth0 lo " ] || fail "h$i links: $links"
done
[ -z "$(ip -4 -o addr show to 10.251.0.0/24)" ] && [ -z "$(ip -4 route show table all root 10.251.0.0/24)" ] \
    || fail "the root namespace has an address or route in 10.251.0.0/24"
outside=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)
if [ -n "$outside" ]; then
    rc=0
    E exec h1 --timeout 10 -- "$py" -c "import socket; socket.create_connection(('$outside', 22), timeout=3)" \
        >"$work/err" 2>&1 || rc=$?
    [ $rc -ne 0 ] && grep -q 'unreachable' "$work/err" || { cat "$work/err"; fail "h1 reached $outside outside 10.251.0.0/24 (exit $rc)"; }
fi
ok "hosts have only lo and eth0 on 10.251.0.0/24, no default route; ${outside:-no root address} unreachable from h1"

# 4. shaping ------------------------------------------------------------------------------
burst=$(cat "$bed/burst")
for i in $(seq 0 $((n - 1))); do
    tc -n "moe-$tag-h$i" qdisc show dev eth0 | grep -q 'tbf .*rate 100Mbit' || fail "h$i eth0: no tbf 100Mbit"
    tc -n "moe-$tag-br" qdisc show dev "v$i" | grep -q 'tbf .*rate 100Mbit' || fail "bridge port v$i: no tbf 100Mbit"
done
bytes=4000000; rate=12500000 # 100 Mbit/s in bytes/s
low=$(awk -v b=$bytes -v u=$burst -v r=$rate 'BEGIN { printf "%.4f", (b - 2 * u) / r }')
high=$(awk -v b=$bytes -v r=$rate 'BEGIN { printf "%.4f", 2 * b / r }')
best=""
for try in 1 2 3; do
    port=$((5200 + try))
    E exec h0 --timeout 40 -- "$py" "$here/xfer.py" serve $port $bytes 30 & sp=$!
    t=$(E exec h2 --timeout 40 -- "$py" "$here/xfer.py" send 10.251.0.10 $port $bytes) || fail "transfer h2 -> h0 failed"
    wait $sp || fail "xfer receiver on h0 failed"
    awk -v t="$t" -v l="$low" 'BEGIN { exit !(t >= l) }' \
        || fail "4 MB h2 -> h0 took $t s, faster than 100mbit allows (>= $low s)"
    echo "testbed: 4 MB h2 -> h0 under 100mbit: $t s (bounds $low .. $high s)"
    if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
    awk -v t="$best" -v h="$high" 'BEGIN { exit !(t <= h) }' && break
done
awk -v t="$best" -v h="$high" 'BEGIN { exit !(t <= h) }' || fail "4 MB under 100mbit: best $best s, more than 2x the bound ($high s)"
ok "tbf 100Mbit on all $n host links both ways; 4 MB in $best s (rate bound $(awk -v b=$bytes -v r=$rate 'BEGIN { printf "%.3f", b / r }') s)"

# 5. Open MPI through the launch agent ------------------------------------------------------
export MOE_TESTBED_LEAK=should-not-reach-remote-hosts
E run --timeout 120 -- mpirun -np 6 sh -c 'echo "$(hostname) ${OMPI_MCA_btl_tcp_if_include:-unset} ${OPENBLAS_NUM_THREADS:-unset} ${MOE_TESTBED_LEAK:-clean}"' \
    >"$work/mpi" 2>&1 || { cat "$work/mpi"; fail "mpirun -np 6 across $n hosts failed"; }
for i in $(seq 0 $((n - 1))); do
    [ "$(grep -c "^h$i " "$work/mpi")" = 2 ] || { cat "$work/mpi"; fail "expected 2 ranks on h$i"; }
done
[ "$(grep -c ' 10\.251\.0\.0/24 1 ' "$work/mpi")" = 6 ] || { cat "$work/mpi"; fail "OMPI_MCA_* or OPENBLAS_NUM_THREADS did not reach every rank"; }
[ "$(grep -c '^h[12] .* clean$' "$work/mpi")" = 4 ] || { cat "$work/mpi"; fail "the caller's environment leaked through the agent"; }
unset MOE_TESTBED_LEAK
ok "mpirun -np 6: 2 ranks per host, defaults reach remote ranks, agent environment clean"

# 6. teardown -------------------------------------------------------------------------------
inodes=""
for f in /run/netns/moe-"$tag"-*; do inodes="$inodes $(stat -L -c %i "$f")"; done
[ "$(echo $inodes | wc -w)" = $((n + 1)) ] || fail "expected $((n + 1)) namespaces, found: $inodes"
holders=""
for i in $(seq 0 $((n - 1))); do read -r p _ <"$bed/holder.h$i"; holders="$holders $p"; done
E down
for p in $holders; do
    [ ! -e /proc/$p ] || [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" = Z ] || fail "holder $p still runs"
done
for f in /run/netns/moe-"$tag"-*; do [ ! -e "$f" ] || fail "namespace left: ${f##*/}"; done
# netns bind mounts and /dev/shm tmpfs are named moe-TAG-..., the /etc/hosts bind comes from $bed
left=$(grep -l -e "moe-$tag-" -e "$bed/" /proc/[0-9]*/mountinfo 2>/dev/null | head -n 3 || true)
[ -z "$left" ] || fail "mounts of test bed $tag remain: $left"
for p in /proc/[0-9]*; do
    ino=$(stat -L -c %i "$p/ns/net" 2>/dev/null) || continue
    case " $inodes " in *" $ino "*) fail "process ${p#/proc/} is still in a namespace of test bed $tag" ;; esac
done
[ ! -e "$bed" ] || fail "state dir $bed remains"
E down >/dev/null || fail "a second down failed"
ok "down: no namespace, mount, process or state left; down again is a no-op"

# partial up: a state dir with a tag and one namespace, as a crash after the first step leaves
ptag=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$bed/procs"; echo "$ptag" >"$bed/tag"; echo "moe-$ptag-br" >"$bed/netns"
ip netns add "moe-$ptag-br"; ip netns add "moe-$ptag-h0" # the second one is not recorded
E down >/dev/null
[ ! -e "/run/netns/moe-$ptag-br" ] && [ ! -e "/run/netns/moe-$ptag-h0" ] && [ ! -e "$bed" ] \
    || fail "down after a partial up left namespaces or state"
ok "down after a partial up removes its namespaces and state"
echo "testbed: ok"
