#!/usr/bin/env bash
# binding.sh — --bind decisions on topologies other than this machine's, and the report.
#
# Env: MOERUN, MPIEXEC, PYTHON, TOPOLOGIES (tests/mpi/topologies).
# Each case runs moerun with --report-bindings and checks the one line per rank (cpuset, NUMA
# node, nearest NIC, action) against values worked out by hand from the topology, and the
# telemetry's topology/cpuset, numa_node, nic and bind_action against the same values.
#  1. synthetic "pack:2 numa:2 l3:1(size=8388608) l2:2(size=1048576) core:2 l1d:1(size=49152)
#     pu:2" (4 NUMA nodes of 4 cores of 2 PUs; per NUMA node an 8 MiB L3, an L2 of 1 MiB per
#     2 cores, an L1d of 48 KiB per core), --bind core, 4 ranks: local rank i -> NUMA node i,
#     its first core: PUs 0-1, 8-9, 16-17, 24-25; caches L1d 48KiB/2 PUs, L2 1MiB/4, L3 8MiB/8;
#  2. "pack:2 numa:2 core:4 pu:2" (no caches declared), --bind numa, 3 ranks: whole NUMA
#     nodes 0-7, 8-15, 16-23; caches none (-, 0 in the telemetry);
#  3. XML: 2 packages x (1 NUMA node, 2 cores), OpenFabrics ib0 under package 0 and Net eth9
#     under package 1; --bind core, 2 ranks: rank 0 on PU 0 near ib0, rank 1 on PU 2 near eth9;
#     caches as the XML declares them: package 0 an L3 of 16 MiB over both cores, per core an
#     L2 of 512 KiB and an L1d of 32 KiB (rank 0: 32KiB/1, 512KiB/1, 16MiB/2); package 1 no L3,
#     one L2 of 2 MiB for both cores, L1d 48 KiB per core (rank 1: 48KiB/1, 2MiB/2, -);
#  4. this machine, --bind none: nothing changed (action none), one line per rank.
# Topologies that are not this system are planned, never applied (action "planned").
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-bind.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "binding: FAIL: $*"; exit 1; }

run() { # run TAG NP [env VAR=VALUE ...] -- [moerun options]
    local tag=$1 np=$2 envs=() xs=(); shift 2
    while [ "$1" != "--" ]; do envs+=("$1"); xs+=(-x "${1%%=*}"); shift; done; shift
    env "${envs[@]+"${envs[@]}"}" "$MPIEXEC" "${xs[@]+"${xs[@]}"}" -np "$np" "$MOERUN" --steps 1 \
        --tokens 16 --d-model 8 --d-ffn 8 --quiet --report-bindings --telemetry "$work/$tag.h5" \
        "$@" >"$work/$tag.out" 2>&1 || { cat "$work/$tag.out"; fail "$tag: run failed"; }
}
expect() { # expect TAG "RANK CPUSET NUMA NIC ACTION" ...
    local tag=$1 row line f; shift
    local rows=("$@")
    for row in "${rows[@]}"; do
        read -r -a f <<<"$row"
        line=$(grep "^moerun: binding rank ${f[0]} " "$work/$tag.out") || fail "$tag: no line for rank ${f[0]}"
        case "$line" in *" cpuset ${f[1]} numa ${f[2]} nic ${f[3]} "*"${f[4]};"*) ;;
            *) fail "$tag rank ${f[0]}: '$line', want cpuset ${f[1]} numa ${f[2]} nic ${f[3]} action ${f[4]}" ;; esac
    done
    printf '%s\n' "${rows[@]}" | "$PYTHON" -c '
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for row in sys.stdin:
    r, cpus, numa, nic, act = row.split()
    r = int(r)
    got = (f["topology/cpuset"][r].decode(), int(f["topology/numa_node"][r]),
           f["topology/nic"][r].decode() or "none", f["topology/bind_action"][r].decode())
    if got != (cpus, int(numa), nic, act):
        print(f"rank {r}: telemetry {got} != {(cpus, int(numa), nic, act)}"); sys.exit(1)
' "$work/$tag.h5" || fail "$tag: telemetry topology differs"
}
caches() { # caches TAG "RANK L1D L2 L3" ...: report text SIZE/PUS or -, telemetry bytes and PUs
    local tag=$1 row line f; shift
    local rows=("$@")
    for row in "${rows[@]}"; do
        read -r -a f <<<"$row"
        line=$(grep "^moerun: binding rank ${f[0]} " "$work/$tag.out") || fail "$tag: no line for rank ${f[0]}"
        case "$line" in *" caches L1d ${f[1]} L2 ${f[2]} L3 ${f[3]} (bind "*) ;;
            *) fail "$tag rank ${f[0]}: '$line', want caches L1d ${f[1]} L2 ${f[2]} L3 ${f[3]}" ;; esac
    done
    printf '%s\n' "${rows[@]}" | "$PYTHON" -c '
import sys, h5py
f = h5py.File(sys.argv[1], "r")
unit = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}
for row in sys.stdin:
    r, *want = row.split()
    r = int(r)
    for lv, text in zip(("l1d", "l2", "l3"), want):
        if text == "-":
            size, pus = 0, 0
        else:
            s, p = text.split("/")
            num = s.rstrip("KMiB")
            size, pus = int(num) * unit[s[len(num):]], int(p)
        got = (int(f[f"topology/{lv}_bytes"][r]), int(f[f"topology/{lv}_pus"][r]))
        if got != (size, pus):
            print(f"rank {r} {lv}: telemetry {got} != {(size, pus)}"); sys.exit(1)
' "$work/$tag.h5" || fail "$tag: telemetry caches differ"
}
nlines() { [ "$(grep -c '^moerun: binding rank ' "$work/$1.out")" -eq "$2" ] || fail "$1: want $2 binding lines"; }

run syn_core 4 MOERUN_HWLOC_SYNTHETIC="pack:2 numa:2 l3:1(size=8388608) l2:2(size=1048576) core:2 l1d:1(size=49152) pu:2" \
    -- --bind core
nlines syn_core 4
expect syn_core "0 0-1 0 none planned" "1 8-9 1 none planned" "2 16-17 2 none planned" \
    "3 24-25 3 none planned"
caches syn_core "0 48KiB/2 1MiB/4 8MiB/8" "1 48KiB/2 1MiB/4 8MiB/8" "2 48KiB/2 1MiB/4 8MiB/8" \
    "3 48KiB/2 1MiB/4 8MiB/8"

run syn_numa 3 MOERUN_HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" -- --bind numa
nlines syn_numa 3
expect syn_numa "0 0-7 0 none planned" "1 8-15 1 none planned" "2 16-23 2 none planned"
caches syn_numa "0 - - -" "1 - - -" "2 - - -"

run xml_nic 2 MOERUN_HWLOC_XML="$TOPOLOGIES/two_packages_nics.xml" -- --bind core
nlines xml_nic 2
expect xml_nic "0 0 0 ib0 planned" "1 2 1 eth9 planned"
caches xml_nic "0 32KiB/1 512KiB/1 16MiB/2" "1 48KiB/1 2MiB/2 -"

run none 2 -- --bind none
nlines none 2
grep -q "^moerun: binding rank 1 .*(bind none: none;" "$work/none.out" || fail "--bind none: action is not none"
echo "binding: ok (4 topologies/modes, lines, caches and telemetry as worked out by hand)"
