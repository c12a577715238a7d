#!/usr/bin/env bash
# Configures and builds everything into build/ (override with UB_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UB_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${UB_BUILD_TYPE:-RelWithDebInfo} ${UB_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
