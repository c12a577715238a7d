#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing,
# builds, then runs every test (unit, integration, interop, fuzz smoke) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir=${UB_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure -j 2 --timeout 300 "$@"
