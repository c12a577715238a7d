#!/usr/bin/env bash
# Instructions the broker executes per CreatePostPolicy call, under
# valgrind's callgrind: repeatable even when other work shares the machine,
# so it resolves per-call savings that wall-clock runs are too noisy to show.
#
#   bench/policy_callgrind.sh [CALLS] [CONNECTIONS] [STREAMS]   (default 3000 4 16)
#
# Runs the broker (from build/) under callgrind with instrumentation off,
# warms it up, switches instrumentation on for CALLS h2load calls and off
# after, and prints instructions per call plus the top functions by
# inclusive cost. Valgrind serializes the broker's threads and slows it
# ~50x, so commit batches are larger than in a real run: compare runs of this
# script with each other, not with bench/policy_bench.sh.
#
# Environment: CG_OUT (default /tmp/policy_callgrind.out).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
n=${1:-3000}
conns=${2:-4}
streams=${3:-16}
out=${CG_OUT:-/tmp/policy_callgrind.out}
bench_install nghttp2-client valgrind
cmake --build "$build_dir" -j2 --target upload-broker >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/policy_callgrind.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
policy_bench_config "$work"

callgrind_broker "$out" "$work"
port=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")

h2load_policy "$work/body" "$port" -n 500 -c "$conns" -m "$streams" >/dev/null
callgrind_control -i on "$vg_pid" >/dev/null
h2load_policy "$work/body" "$port" -n "$n" -c "$conns" -m "$streams" > "$work/h2load.out"
callgrind_control -i off "$vg_pid" >/dev/null
kill -TERM "$vg_pid"
wait "$vg_pid" 2>/dev/null || true
grep -E '^requests:' "$work/h2load.out"
callgrind_report "$out" "$n" "call ($n calls, $conns connections x $streams streams)"
