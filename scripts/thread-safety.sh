#!/usr/bin/env bash
# Clang's lock checking over the service: builds the service's targets (no tests, no benchmarks)
# with clang++-14, -Wthread-safety (cmake/warnings.cmake adds it under clang) and -Werror
# (UB_WERROR) into build-clang/ (override with UB_BUILD_DIR), so an ABSL_GUARDED_BY the code does
# not keep fails the build. Uses ccache when it is installed. Extra arguments go to cmake --build.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${UB_BUILD_DIR:-build-clang}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DUB_WERROR=ON -DUB_BUILD_TESTS=OFF -DUB_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
# Every library and binary defined under service/ (and what they depend on, e.g. ub_proto).
targets=$(cat service/*/CMakeLists.txt |
  sed -n 's/^ub_component(\([a-z_]*\).*/ub_\1/p; s/^add_executable(\([a-z-]*\) .*/\1/p')
cmake --build "$build_dir" -j "$(nproc)" --target $targets "$@"
