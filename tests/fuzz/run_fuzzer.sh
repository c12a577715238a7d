#!/usr/bin/env bash
# Builds one libFuzzer target (libFuzzer + ASan + UBSan, clang) in its own
# build tree and runs it for SECONDS seconds on a fresh corpus directory,
# seeded from SEEDS (a directory, may be empty) and guided by DICT (a
# libFuzzer dictionary, may be empty). Exit status: the fuzzer's, so a
# finding (crash, sanitizer report, timeout, aborted invariant) fails.
#   run_fuzzer.sh SOURCE_DIR BUILD_DIR CLANGXX SECONDS TARGET [SEEDS [DICT]]
set -euo pipefail
src=$1 build=$2 cxx=$3 seconds=$4 target=$5 seeds=${6:-} dict=${7:-}
cc=${cxx/clang++/clang}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_COMPILER="$cxx" -DUB_FUZZ=ON -DUB_BUILD_BENCH=OFF >/dev/null
nice -n 10 cmake --build "$build" -j2 --target "$target" >/dev/null
binary=$(find "$build/tests" -type f -name "$target" -perm -u+x | head -n 1)
# A fresh corpus per run: what an earlier run found must not hide what this
# run would (or would not) reach from the committed seeds.
# Everything the run writes (corpus, the harness's ledger) lives in one
# directory, on tmpfs when there is one, removed at exit.
work=$(mktemp -d /dev/shm/ub-fuzz-run-XXXXXX 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/ub-fuzz-run-XXXXXX")
trap 'rm -rf "$work"' EXIT
export UB_FUZZ_DIR=$work
corpus=$work/corpus
mkdir "$corpus"
if [[ -n "$seeds" ]]; then cp "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
# A finding's input is kept under BUILD_DIR/findings/ to reproduce it with
# "$binary" <file>.
mkdir -p "$build/findings"
args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1
      -artifact_prefix="$build/findings/$target-")
if [[ -n "$dict" ]]; then args+=(-dict="$dict"); fi
echo "fuzzing $target for ${seconds}s from $(ls "$corpus" | wc -l) seeds"
"$binary" "${args[@]}" "$corpus" 2>&1 | tail -n 14
exit "${PIPESTATUS[0]}"
