#!/usr/bin/env bash
# Installs the Debian packages difflab needs to build and test; does nothing when all are present.
# Usage: scripts/install-deps.sh [--bench] [--slurm] [--browser] [--fuzz]
#   --bench  also python3-torch, the speed peer
#   --slurm  also a single-node Slurm for tests/cli/slurm.sh (scripts/test.sh, CI): the test starts
#            and stops its own daemons; nothing is configured or started here
#   --browser also Chromium and python3, for the report's browser test (tests/browser/report.sh:
#            tests/browser/check_page.py drives headless Chromium over the DevTools protocol)
#   --fuzz   also clang 14 with libFuzzer and its OpenMP, for the fuzz build (scripts/fuzz.sh,
#            docs/fuzz.md); the test suite itself needs no clang (it replays the corpora with gcc)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libhdf5-dev hdf5-tools      # run files (C API, serial) and h5dump
  libyaml-dev                 # specs
  libgsl-dev                  # RNG streams, statistics, ODE integration
  libsqlite3-dev sqlite3      # the run index
  libcmocka-dev               # unit tests
  libopenblas-openmp-dev      # cblas_sgemm on OpenMP threads (shares the pool with our OpenMP code)
  libdnnl-dev                 # oneDNN: the convolution kernels of nn/conv (docs/conv.md)
  libssl-dev                  # SHA-256 (libcrypto)
  libpng-dev                  # scatter pictures and image grids of samples
  zlib1g-dev                  # gzip-compressed IDX files of image data sets
  dataset-fashion-mnist       # data.type fashion_mnist (/usr/share/datasets/fashion-mnist)
)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(python3-torch python3-numpy) ;;
    --slurm) pkgs+=(munge slurmctld slurmd slurm-client) ;;   # munged; controller; node daemon; sbatch, squeue, sinfo
    --browser) pkgs+=(chromium python3) ;;
    --fuzz) pkgs+=(clang-14 libclang-rt-14-dev libomp-14-dev) ;;   # clang; libFuzzer + sanitizer runtimes; OpenMP
    *) echo "usage: $0 [--bench] [--slurm] [--browser] [--fuzz]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
