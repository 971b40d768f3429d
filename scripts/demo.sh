#!/usr/bin/env bash
# Installs what is missing, builds difflab, and runs the demo experiment (DDPM on 8 Gaussians).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
./build/difflab run configs/demo.yaml "$@"
