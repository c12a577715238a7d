#!/usr/bin/env bash
# Consume vs Subscribe on the same log, in one run (bench/consume_bench.cc):
# deliveries/s with acks for 4 competing consumers next to plain Subscribe
# (1 stream, and 4 streams each reading everything), then commit -> consumer
# latency at 2,000 events/s with 4 consumers acking.
#
#   flock /tmp/ub-bench.lock bench/consume_bench.sh [EVENTS] [RATE] [SECONDS]
#   (defaults 20000 2000 10; LEDGER=postgres with PG_DSN_FILE for PostgreSQL)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
events=${1:-20000} rate=${2:-2000} seconds=${3:-10}
cmake --build "$build_dir" -j2 --target consume_bench >/dev/null
work=$(mktemp -d "${TMPDIR:-/var/tmp}/consume.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo -n bench-key > "$work/key"
echo LTAI5tBenchAccessKeyId > "$work/ak"
echo bench-secret > "$work/sk"
if [[ ${LEDGER:-sqlite} == postgres ]]; then
  ledger="ledger: {postgres: {dsn_file: ${PG_DSN_FILE:?set PG_DSN_FILE}}}"
else
  ledger="ledger: {path: $work/ledger.db}"
fi
cat > "$work/broker.yaml" <<YAML
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
$ledger
credentials: {access_key_id_file: $work/ak, access_key_secret_file: $work/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$work/key" | cut -d' ' -f1), buckets: [bench]}
YAML
"$build_dir/bench/consume_bench" --config "$work/broker.yaml" --events "$events" --rate "$rate" \
  --seconds "$seconds" --consumers 4 --max_in_flight "${MAX_IN_FLIGHT:-256}"
