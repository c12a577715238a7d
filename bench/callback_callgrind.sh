#!/usr/bin/env bash
# Instructions the broker executes per OSS callback, under valgrind's
# callgrind: repeatable even when other work shares the machine, so it shows
# per-callback savings that wall-clock runs are too noisy to resolve.
#
#   bench/callback_callgrind.sh [CALLBACKS] [CONCURRENCY]    (default 1000 16)
#
# Runs the broker (from build/) under callgrind with instrumentation off,
# creates the intents over gRPC (not counted), switches instrumentation on
# when the load generator starts sending, off when it is done, and prints
# instructions per callback plus the top functions by inclusive cost. New
# connection per callback. Valgrind serializes the broker's threads and slows
# it ~50x, so batches are larger than in a real run: compare runs of this
# script with each other, not with the wall-clock benchmark.
#
# Environment: CG_OUT (default /tmp/callback_callgrind.out), CB_KEY_BITS=1024.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
n=${1:-1000}
conc=${2:-16}
bits=${CB_KEY_BITS:-1024}
out=${CG_OUT:-/tmp/callback_callgrind.out}
cmake --build "$build_dir" -j2 --target upload-broker callback_load >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/callback_callgrind.XXXXXX")
cleanup() {
  kill $(jobs -p) 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

callback_bench_config "$work" "$bits"
key_url=$callback_key_url

callgrind_broker "$out" "$work"
http=127.0.0.1:$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$work/ready")
grpc=127.0.0.1:$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")

"$build_dir/bench/callback_load" --key "$work/key.pem" --key-url "$key_url" --path /oss/callback \
  --http "$http" --grpc "$grpc" --api-key-file "$work/api_key" --label cg \
  --count "$n" --concurrency "$conc" --timeout 600 >"$work/load.out" 2>"$work/load.log" &
load_pid=$!
while ! grep -q 'cg\]: created' "$work/load.log" 2>/dev/null; do
  kill -0 "$load_pid" 2>/dev/null || break
  sleep 0.02
done
callgrind_control -i on "$vg_pid" >/dev/null
wait "$load_pid" || echo "load generator failed: $(tail -3 "$work/load.log")" >&2
callgrind_control -i off "$vg_pid" >/dev/null
kill -TERM "$vg_pid"
wait "$vg_pid" 2>/dev/null || true
cat "$work/load.out"
callgrind_report "$out" "$n" "callback ($n callbacks, $conc connections)"
