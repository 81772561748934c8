#!/usr/bin/env bash
# install_test.sh — moerun as a user gets it, then a client built against it.
#
#   install_test.sh prefix   cmake --install the build tree into a temporary prefix; check the
#                            files; compile every installed header on its own; build
#                            tests/install/client.c with find_package(moerun) (shared and
#                            static) and with pkg-config (shared and --static); run each under
#                            mpirun -np 2 and check its numbers.
#   install_test.sh deb      cpack -G DEB of the build tree; dpkg -i the package; run
#                            /usr/bin/moerun under mpirun -np 2 and build and run the client
#                            against /usr (pkg-config, shared); dpkg -P (remove and purge),
#                            and check that nothing of the package is left. Refuses (exit 77, skipped)
#                            if a moerun package is installed already, so it never removes
#                            one it did not install.
#
# The reference for the client's numbers is the installed moerun program's summary JSON
# for the same configuration and ranks (same seed: identical routed/processed/dropped and
# output checksum), plus the counts the configuration implies: routed = ranks x tokens x
# top_k x layers x steps and routed = processed + dropped, with dropped > 0 (capacity 1.0
# on a skewed workload, so the conservation check is not trivially 0 = 0).
# Env: BUILD (build tree), SRC (source tree), MPIEXEC, VERSION (project version), PYTHON.
set -uo pipefail
mode=${1:?usage: install_test.sh prefix|deb}
work=$(mktemp -d "${TMPDIR:-/tmp}/moerun-install.XXXXXX")
fail=0
installed_deb=0
cleanup() {
    if [ "$installed_deb" = 1 ]; then dpkg_do -P moerun >/dev/null 2>&1; fi
    rm -rf "$work"
}
trap cleanup EXIT

bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# dpkg_do ARGS: dpkg, retried for up to a minute while another dpkg/apt holds its lock
dpkg_do() {
    local i out rc
    for i in $(seq 30); do
        out=$(dpkg "$@" 2>&1); rc=$?
        if [ $rc -eq 0 ] || ! grep -q "lock" <<<"$out"; then printf '%s\n' "$out"; return $rc; fi
        sleep 2
    done
    printf '%s\n' "$out (gave up after $i tries)"; return $rc
}
np=2
keys=(experts=4 top_k=2 d_model=16 d_ffn=32 tokens=48 layers=2 steps=3 capacity_factor=1.0
      workload=zipf:1.5 seed=7 telemetry=none quiet=1)
flags=()
for kv in "${keys[@]}"; do
    k=${kv%%=*}; v=${kv#*=}
    if [ "$k" = quiet ]; then flags+=(--quiet); else flags+=("--${k//_/-}" "$v"); fi
done
want_routed=$((np * 48 * 2 * 2 * 3))

# kv_get FILE KEY: a value of a KEY=VALUE file (client output; ref.kv, the reference's
# summary JSON flattened once by check_reference)
kv_get() { sed -n "s/^$2=//p" "$1"; }

# run_reference PROGRAM: the installed moerun with the client's configuration (exit status
# in ref.rc, so that it can run in the background while the clients build)
run_reference() {
    "$MPIEXEC" -np $np "$1" "${flags[@]}" --summary-json "$work/ref.json" \
        >"$work/ref.out" 2>"$work/ref.err"
    echo $? >"$work/ref.rc"
}
# check_reference PROGRAM: its summary against the counts the configuration implies
check_reference() {
    if [ "$(cat "$work/ref.rc" 2>/dev/null)" != 0 ]; then
        bad "$1 under mpirun -np $np failed: $(head -5 "$work/ref.err")"; return 1
    fi
    local r p d
    "$PYTHON" -c 'import json,sys
j = json.load(open(sys.argv[1]))
for k in ("routed", "processed", "dropped", "moerun_version"): print("%s=%s" % (k, j[k]))
print("out_sum=%r" % j["output_checksum"]["sum"])' "$work/ref.json" >"$work/ref.kv" ||
        { bad "$1: summary JSON unreadable"; return 1; }
    r=$(kv_get "$work/ref.kv" routed); p=$(kv_get "$work/ref.kv" processed); d=$(kv_get "$work/ref.kv" dropped)
    [ "$r" = "$want_routed" ] || bad "$1: routed $r, want $want_routed (ranks x tokens x k x layers x steps)"
    [ $((p + d)) = "$r" ] || bad "$1: processed $p + dropped $d != routed $r"
    [ "$d" -gt 0 ] || bad "$1: dropped $d, want > 0 at capacity factor 1.0 on zipf:1.5"
    [ "$(kv_get "$work/ref.kv" moerun_version)" = "$VERSION" ] ||
        bad "$1: moerun_version $(kv_get "$work/ref.kv" moerun_version), want $VERSION"
    echo "reference $1: routed $r processed $p dropped $d (${SECONDS}s)"
}

# run_client EXE LABEL: one client run under mpirun (status in LABEL.rc); clients run
# at the same time, as the time goes into MPI start-up, not into compute
run_client() {
    "$MPIEXEC" -np $np "$1" "${keys[@]}" >"$work/$2.out" 2>"$work/$2.err"
    echo $? >"$work/$2.rc"
}
# check_client LABEL: a finished client run against the reference
check_client() {
    local label=$1 out="$work/$1.out" k
    if [ "$(cat "$work/$label.rc" 2>/dev/null)" != 0 ]; then
        bad "$label: client failed: $(head -5 "$work/$label.err")"; return
    fi
    for k in header_version library_version; do
        [ "$(kv_get "$out" $k)" = "$VERSION" ] || bad "$label: $k '$(kv_get "$out" $k)', want $VERSION"
    done
    for k in header_numbers library_numbers; do
        [ "$(kv_get "$out" $k)" = "$VERSION" ] || bad "$label: $k '$(kv_get "$out" $k)', want $VERSION"
    done
    [ "$(kv_get "$out" status)" = complete ] || bad "$label: status '$(kv_get "$out" status)'"
    [ "$(kv_get "$out" nranks)" = $np ] || bad "$label: nranks '$(kv_get "$out" nranks)', want $np"
    for k in routed processed dropped; do
        [ "$(kv_get "$out" $k)" = "$(kv_get "$work/ref.kv" $k)" ] ||
            bad "$label: $k $(kv_get "$out" $k), moerun's summary says $(kv_get "$work/ref.kv" $k)"
    done
    # same seed and configuration: the output checksum agrees to float precision
    awk -v a="$(kv_get "$out" out_sum)" -v b="$(kv_get "$work/ref.kv" out_sum)" \
        'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= 1e-6 * (m > 1 ? m : 1)) }' ||
        bad "$label: output checksum $(kv_get "$out" out_sum), moerun's $(kv_get "$work/ref.kv" out_sum)"
    case "$(kv_get "$out" phases)" in
        gate,counts,dispatch,expert,combine,total*) ;;
        *) bad "$label: phase names '$(kv_get "$out" phases)'" ;;
    esac
    echo "client $label: routed $(kv_get "$out" routed) dropped $(kv_get "$out" dropped) ok (${SECONDS}s)"
}

# build_clients PREFIX WHICH REFPROG: builds the clients (WHICH: all, or pkg-config for the
# shared pkg-config build alone), runs them at once, waits for the reference run of REFPROG
# and checks it, then each client against it
build_clients() {
    local prefix=$1 which=$2 refprog=$3 pc="$1/lib/pkgconfig" cflags libs slibs labels=() l
    [ -d "$pc" ] || pc=$(dirname "$(find "$prefix/lib" -name moerun.pc | head -1)")
    if [ "$which" != all ]; then :
    elif cmake -S "$SRC/tests/install/client" -B "$work/cb" -DCMAKE_PREFIX_PATH="$prefix" \
            -DCMAKE_BUILD_TYPE=Release >"$work/cb.log" 2>&1 &&
       cmake --build "$work/cb" >>"$work/cb.log" 2>&1; then
        grep -q "moerun_VERSION=$VERSION" "$work/cb.log" || bad "find_package: moerun_VERSION is not $VERSION"
        cp "$work/cb/client_shared" "$work/find_package-shared" && labels+=(find_package-shared)
        [[ "$(ldd "$work/cb/client_shared")" == *"libmoerun.so"*" => $prefix/"* ]] ||
            bad "find_package-shared: not linked to $prefix's libmoerun.so: $(ldd "$work/cb/client_shared" | grep moerun)"
        if [ -x "$work/cb/client_static" ]; then
            cp "$work/cb/client_static" "$work/find_package-static" && labels+=(find_package-static)
            [[ "$(ldd "$work/cb/client_static")" != *libmoerun* ]] || bad "find_package-static needs libmoerun.so"
        else
            bad "find_package: no moerun::moerun_static target"
        fi
    else
        bad "find_package build failed:"; tail -20 "$work/cb.log"
    fi
    export PKG_CONFIG_PATH="$pc"
    if [ "$(pkg-config --modversion moerun)" != "$VERSION" ]; then
        bad "pkg-config --modversion moerun: '$(pkg-config --modversion moerun 2>&1)'"
    fi
    cflags=$(pkg-config --cflags moerun) && libs=$(pkg-config --libs moerun) &&
        slibs=$(pkg-config --static --libs moerun) || { bad "pkg-config moerun failed"; return; }
    # shellcheck disable=SC2086
    if cc -std=c11 -Wall -Wextra -Werror $cflags "$SRC/tests/install/client.c" -o "$work/pkg-config-shared" \
            $libs "-Wl,-rpath,$(pkg-config --variable=libdir moerun)" 2>"$work/pc.err"; then
        labels+=(pkg-config-shared)
    else
        bad "pkg-config shared build: $(head -5 "$work/pc.err")"
    fi
    # --static: libmoerun.a itself, its Requires.private dependencies from their own .pc files
    # shellcheck disable=SC2086
    if [ "$which" != all ]; then :
    elif cc -std=c11 -Wall -Wextra -Werror $cflags "$SRC/tests/install/client.c" -o "$work/pkg-config-static" \
            ${slibs/-lmoerun/-Wl,-Bstatic -lmoerun -Wl,-Bdynamic} 2>"$work/pcs.err"; then
        labels+=(pkg-config-static)
        [[ "$(ldd "$work/pkg-config-static")" != *libmoerun* ]] || bad "pkg-config --static client needs libmoerun.so"
    else
        bad "pkg-config static build: $(head -5 "$work/pcs.err")"
    fi
    echo "clients built (${SECONDS}s)"
    for l in "${labels[@]}"; do run_client "$work/$l" "$l" & done
    wait
    check_reference "$refprog" || return
    for l in "${labels[@]}"; do check_client "$l"; done
    # every public header compiles on its own with only the installed include directory
    local h
    for h in "$(pkg-config --variable=includedir moerun)"/moerun/*.h; do
        # shellcheck disable=SC2086
        printf '#include <moerun/%s>\n' "$(basename "$h")" |
            cc -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags -x c - 2>"$work/hdr.err" ||
            bad "header moerun/$(basename "$h") is not self-contained: $(head -3 "$work/hdr.err")"
    done
}

case "$mode" in
prefix)
    p="$work/prefix"
    cmake --install "$BUILD" --prefix "$p" >"$work/install.log" 2>&1 || { bad "cmake --install failed"; tail -20 "$work/install.log"; exit 1; }
    echo "installed into $p (${SECONDS}s)"
    for f in bin/moerun bin/moerun-analyze bin/moerun-import bin/moerun-bench bin/a2a-bench \
             lib/libmoerun.so lib/libmoerun.a lib/cmake/moerun/moerunConfig.cmake \
             lib/cmake/moerun/moerunConfigVersion.cmake lib/pkgconfig/moerun.pc \
             include/moerun/moerun.h include/moerun/config.h include/moerun/status.h \
             include/moerun/event.h include/moerun/version.h \
             share/doc/moerun/README.md share/doc/moerun/config.md share/moerun/jobs/run-default.sh \
             share/man/man1/moerun.1 share/man/man1/moerun-analyze.1 share/man/man1/moerun-import.1 \
             share/man/man1/moerun-bench.1 share/man/man1/a2a-bench.1; do
        [ -e "$p/$f" ] || bad "not installed: $f"
    done
    [ -e "$p/include/moerun/base" ] && bad "internal headers (moerun/base) installed"
    grep -qF -- 'capacity\-factor' "$p/share/man/man1/moerun.1" || bad "moerun.1 lacks the options of --help"
    [ "$(grep -c '^#define MOERUN_VERSION_STRING "'"$VERSION"'"' "$p/include/moerun/version.h")" = 1 ] ||
        bad "version.h does not say $VERSION"
    run_reference "$p/bin/moerun" &
    build_clients "$p" all "$p/bin/moerun"
    ;;
deb)
    # One package test on the machine at a time (other build trees, other ctest runs): the
    # package database is the machine's. dpkg itself may be busy (apt): dpkg_do retries.
    exec 9>"${TMPDIR:-/tmp}/moerun-install-deb.lock"
    flock -w 600 9 || { bad "another install.deb held the lock for 10 minutes"; exit 1; }
    if dpkg-query -W -f='${Status}' moerun 2>/dev/null | grep -q "install ok installed"; then
        echo "SKIP: a moerun package is installed already; not touching it"; exit 77
    fi
    [ "$(id -u)" = 0 ] || { echo "SKIP: dpkg -i needs root"; exit 77; }
    (cd "$work" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
        { bad "cpack -G DEB failed"; tail -20 "$work/cpack.log"; exit 1; }
    deb=$(find "$work/pkg" -maxdepth 1 -name 'moerun_*.deb' | head -1)
    echo "cpack -G DEB: $(basename "$deb") (${SECONDS}s)"
    [ -n "$deb" ] || { bad "no .deb in $work/pkg"; exit 1; }
    dpkg-deb -f "$deb" Package Version Depends | sed 's/^/deb: /'
    [ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ] || bad "package version $(dpkg-deb -f "$deb" Version), want $VERSION"
    dpkg-deb -f "$deb" Depends | grep -q libhdf5-openmpi || bad "Depends lacks the HDF5 library"
    installed_deb=1
    dpkg_do -i "$deb" >"$work/dpkg.log" 2>&1 || { bad "dpkg -i failed"; cat "$work/dpkg.log"; exit 1; }
    echo "dpkg -i (${SECONDS}s)"
    for f in /usr/bin/moerun /usr/bin/moerun-analyze /usr/lib/libmoerun.so /usr/include/moerun/moerun.h \
             /usr/lib/pkgconfig/moerun.pc /usr/lib/cmake/moerun/moerunConfig.cmake \
             /usr/share/man/man1/moerun.1.gz /usr/share/doc/moerun/README.md; do
        [ -e "$f" ] || [ -e "${f%.gz}" ] || bad "package did not install $f"
    done
    run_reference /usr/bin/moerun &
    build_clients /usr pkg-config /usr/bin/moerun
    files=$(dpkg -L moerun | grep -v '^/usr$\|^/usr/[a-z]*$\|^/usr/share/[a-z]*$\|^/usr/lib/[a-z]*$' | grep -v '^/\.$')
    # -P (remove and purge): dpkg keeps no record of the package, as before the test
    dpkg_do -P moerun >"$work/dpkg-r.log" 2>&1 || bad "dpkg -P failed: $(cat "$work/dpkg-r.log")"
    installed_deb=0
    st=$(dpkg-query -W -f='${Status}' moerun 2>/dev/null) && [ "$st" != "unknown ok not-installed" ] &&
        bad "dpkg still knows moerun after dpkg -P: '$st'"
    for f in $files; do
        [ -f "$f" ] && bad "left behind after dpkg -P: $f"
    done
    ;;
*) echo "usage: install_test.sh prefix|deb"; exit 2 ;;
esac
if [ "$fail" -ne 0 ]; then echo "$fail failure(s)"; exit 1; fi
echo "install_test $mode: all checks passed"
