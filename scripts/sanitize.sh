#!/usr/bin/env bash
# The whole test suite under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer: builds everything with -DUB_ASAN=ON -DUB_UBSAN=ON
# (g++) into build-asan/ (override with UB_BUILD_DIR) and runs ctest there.
# Extra arguments go to ctest, e.g. scripts/sanitize.sh -R '^ledger'.
#
# Every process the suite starts (test binaries, and the upload-broker,
# oss-sim and ubctl binaries the tests spawn) writes its sanitizer reports to
# files under <build>/sanitizer-reports/ instead of stderr, so a report from a
# broker that a test merely stops still counts. The run fails when a test
# fails or when any report was written; the reports are printed at the end.
# Depends on what scripts/test.sh installs (run that once first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build_dir=${UB_BUILD_DIR:-build-asan}
reports=$root/$build_dir/sanitizer-reports

# Set for the build too: gtest_discover_tests runs each test binary.
# detect_leaks: LeakSanitizer at every exit; suppressions only for leaks
# inside Debian's (uninstrumented) libraries, each explained in the file.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$reports/asan:log_exe_name=1
export LSAN_OPTIONS=suppressions=$root/scripts/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan:log_exe_name=1

mkdir -p "$reports"
rm -f "$reports"/*
start=$(date +%s)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUB_ASAN=ON -DUB_UBSAN=ON \
  -DUB_BUILD_BENCH=OFF ${UB_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
built=$(date +%s)
echo "sanitized build: $((built - start)) s"

status=0
(cd "$build_dir" && ctest --output-on-failure -j 2 --timeout 900 "$@") || status=$?
echo "sanitized suite: $(($(date +%s) - built)) s"

shopt -s nullglob
found=("$reports"/*)
if ((${#found[@]} > 0)); then
  echo "sanitizer reports (${#found[@]} processes):"
  for f in "${found[@]}"; do
    echo "=== $f"
    cat "$f"
  done
  status=1
fi
exit "$status"
