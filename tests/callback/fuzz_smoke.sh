#!/usr/bin/env bash
# Builds callback_body_fuzzer (libFuzzer + ASan + UBSan, clang) in its own
# build tree and runs it for SECONDS seconds. Exit status: the fuzzer's.
#   fuzz_smoke.sh SOURCE_DIR BUILD_DIR CLANGXX SECONDS
set -euo pipefail
src=$1 build=$2 cxx=$3 seconds=$4
cc=${cxx/clang++/clang}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_COMPILER="$cxx" -DUB_FUZZ=ON -DUB_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target callback_body_fuzzer >/dev/null
mkdir -p "$build/corpus"
"$build/tests/callback/callback_body_fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
  -print_final_stats=1 "$build/corpus" 2>&1 | tail -n 12
