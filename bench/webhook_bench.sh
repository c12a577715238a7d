#!/usr/bin/env bash
# Webhook push target benchmark (docs/benchmarks.md, "Webhooks"):
#   bench/webhook_bench.sh [EVENTS] [ROUNDS]
# Runs bench/webhook_bench.cc: throughput vs a plain libcurl client on the
# same receiver (alternating rounds), commit -> receiver latency at 1,000
# events/s, and the idle cost of 1,000 targets. Hold /tmp/ub-bench.lock.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmake --build "$build_dir" -j2 --target webhook_bench >/dev/null
"$build_dir/bench/webhook_bench" --events="${1:-5000}" --rounds="${2:-3}" "${@:3}"
