#!/usr/bin/env bash
# CreatePostPolicy throughput and latency under h2load, side by side with a
# bare gRPC echo server serving the same method, in one run.
#
#   bench/policy_bench.sh [REQUESTS] [CONNECTIONS] [STREAMS_PER_CONNECTION]
#
# Prints both servers' req/s and latency, their ratio, and checks separately
# that every broker call succeeded (each success leaves one intent).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
requests=${1:-100000}
conns=${2:-16}
streams=${3:-16}
bench_install nghttp2-client sqlite3
cmake --build "$build_dir" -j2 --target upload-broker bare_echo_server >/dev/null

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
echo -n bench-key > "$work/key"
echo LTAI5tBenchAccessKeyId > "$work/ak"
echo bench-secret > "$work/sk"
cat > "$work/broker.yaml" <<YAML
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: $work/ledger.db}
credentials: {access_key_id_file: $work/ak, access_key_secret_file: $work/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$work/key" | cut -d' ' -f1), buckets: [bench]}
YAML
grpc_frame uploadbroker.v1.CreatePostPolicyRequest \
  'bucket: "bench" key: "uploads/bench/object.bin" max_size: 1048576 metadata { key: "user" value: "42" }' \
  "$work/body"

"$build_dir/service/main/upload-broker" --config "$work/broker.yaml" --ready_file "$work/ready" 2>"$work/broker.log" &
"$build_dir/bench/bare_echo_server" > "$work/echo.port" &
wait_ready "$work/ready"; wait_ready "$work/echo.port"
broker_port=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")
echo_port=$(cat "$work/echo.port")

run() {  # run NAME PORT [-r RATE]
  local name=$1 port=$2; shift 2
  h2load -n "$requests" -c "$conns" -m "$streams" "$@" \
    -H 'content-type: application/grpc' -H 'te: trailers' -H 'authorization: Bearer bench-key' \
    -d "$work/body" "http://127.0.0.1:$port/uploadbroker.v1.UploadBroker/CreatePostPolicy" > "$work/$name.out"
  local rps; rps=$(grep -oP 'finished in .*?, \K[0-9.]+(?= req/s)' "$work/$name.out")
  local lat; lat=$(grep -P '^time for request:' "$work/$name.out" | awk '{print "min " $4 " max " $5 " mean " $6 " sd " $7}')
  local ok; ok=$(grep -oP '[0-9]+(?= succeeded)' "$work/$name.out")
  printf '%-22s %10s req/s   %s succeeded   request time: %s\n' "$name" "$rps" "$ok" "$lat"
  echo "$rps" > "$work/$name.rps"
}

echo "h2load: $requests requests, $conns connections x $streams streams"
run bare-echo "$echo_port"
run create-post-policy "$broker_port"
echo "ratio broker/bare: $(echo "scale=2; $(cat "$work/create-post-policy.rps") / $(cat "$work/bare-echo.rps")" | bc -l 2>/dev/null || awk "BEGIN{print $(cat "$work/create-post-policy.rps")/$(cat "$work/bare-echo.rps")}")"

intents=$(sqlite3 "$work/ledger.db" 'SELECT count(*) FROM intents')
echo "intents stored: $intents (expected $requests: every call succeeded and was durable)"
[[ $intents == "$requests" ]] || { echo "MISMATCH: some calls failed"; exit 1; }

# Latency percentiles at half the broker's maximum rate, one connection per
# stream so h2load's per-request timing is not queueing behind other streams.
half=$(awk "BEGIN{printf \"%d\", $(cat "$work/create-post-policy.rps") / 2}")
echo "at half the maximum rate ($half req/s):"
h2load -n $((half * 10)) -c 32 -m 1 --rps=$((half / 32 + 1)) \
  -H 'content-type: application/grpc' -H 'te: trailers' -H 'authorization: Bearer bench-key' \
  -d "$work/body" "http://127.0.0.1:$broker_port/uploadbroker.v1.UploadBroker/CreatePostPolicy" \
  --log-file="$work/lat.log" > "$work/half.out"
sort -n -k3 "$work/lat.log" | awk '{a[NR]=$3} END {printf "  p50 %.2f ms  p99 %.2f ms  (n=%d)\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, NR}'
