#!/usr/bin/env bash
# install-deps.sh — install moerun's build and test dependencies from Debian 12 packages.
#
# Idempotent: packages already present are skipped by apt. Needs root (or sudo).
# Usage: jobs/install-deps.sh [--test]   (--test adds what the test suite needs)
# help2man: the man pages of the installed programs, generated from their --help at build time.
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      openmpi-bin libopenmpi-dev libucx-dev libhwloc-dev hwloc
      libhdf5-openmpi-dev hdf5-tools libopenblas-dev
      libinih-dev libcjson-dev help2man)
if [ "${1:-}" = "--test" ]; then
    # python: independent telemetry checks; valgrind: the memcheck test; iproute2 (ip, tc) and procps (ps): the
    # emulated multi-host test bed of the system tests (jobs/cluster/emulate.sh); slurm-wlm
    # and munge: the Slurm tests (tests/slurm); clang and its runtime: libFuzzer targets; shellcheck: tests/lint;
    # chromium: the HTML report check (tests/analyze); libudev-dev: hwloc.pc names -ludev for
    # the pkg-config --static client build of tests/install; libsimgrid-dev (smpicc, smpirun)
    # and libhdf5-dev (serial HDF5 beside the openmpi flavour): the SMPI build (tests/smpi)
    # prometheus-node-exporter: the live-metrics test reads moerun's file through it (tests/tools);
    # python3-pandas, python3-xarray: the moerun Python package's tests (python/, tests/tools);
    # python3-pip, python3-setuptools: its offline `pip install` check
    pkgs+=(python3-h5py python3-numpy valgrind iproute2 procps slurm-wlm munge
           clang libclang-rt-14-dev shellcheck
           chromium libudev-dev libsimgrid-dev libhdf5-dev)
    pkgs+=(prometheus-node-exporter)
    pkgs+=(iputils-ping) # ping: bench/smpi_validate.sh measures the test bed's latency
    pkgs+=(python3-pandas python3-xarray python3-pip python3-setuptools)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
