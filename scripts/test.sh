#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: every test in the optimized
# build, then every test again under AddressSanitizer + UndefinedBehaviorSanitizer with
# LeakSanitizer on (the CLI tests train their quality runs shorter there: tests/cli/lib.sh). It installs
# Slurm's Debian packages too (tests/cli/slurm.sh starts and stops its own daemons; it needs root), and
# Chromium for the report's browser test (ctest label browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --slurm --browser
# Here a test part that cannot run is a failure, never a skip (so is CI=true; tests/cli/lib.sh's
# need_or_skip): tests/cli/slurm.sh runs a real single-node Slurm, tests/cli/faults_mounts.sh
# makes its faults with mounts; both need root. The Fashion-MNIST tests need Debian's
# dataset-fashion-mnist, which install-deps.sh installs; the browser test needs Chromium.
export DIFFLAB_REQUIRE_SLURM=1 DIFFLAB_REQUIRE_MOUNTS=1 DIFFLAB_REQUIRE_DATA=1 DIFFLAB_REQUIRE_BROWSER=1
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDIFFLAB_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# The browser test once: Chromium renders the same HTML from either build, and cli_report runs the
# report code itself under the sanitizers.
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE browser
