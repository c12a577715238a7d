#!/usr/bin/env bash
# CreatePostPolicy throughput and latency under h2load, side by side with a
# bare gRPC echo server serving the same method, in one run; then the same
# bare server answering only after a shared fdatasync, from its commit thread,
# with an answer the size of the broker's (what durability alone costs).
#
#   bench/policy_bench.sh [REQUESTS] [CONNECTIONS] [STREAMS_PER_CONNECTION]
#
# Prints each server's req/s and latency, the ratios, and checks separately
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
policy_bench_config "$work"

"$build_dir/service/main/upload-broker" --config "$work/broker.yaml" --ready_file "$work/ready" 2>"$work/broker.log" &
"$build_dir/bench/bare_echo_server" > "$work/echo.port" &
wait_ready "$work/ready"; wait_ready "$work/echo.port"
broker_port=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")
echo_port=$(cat "$work/echo.port")

run() {  # run NAME PORT [-r RATE]
  local name=$1 port=$2; shift 2
  h2load_policy "$work/body" "$port" -n "$requests" -c "$conns" -m "$streams" "$@" > "$work/$name.out"
  local rps; rps=$(grep -oP 'finished in .*?, \K[0-9.]+(?= req/s)' "$work/$name.out")
  local lat; lat=$(grep -P '^time for request:' "$work/$name.out" | awk '{print "min " $4 " max " $5 " mean " $6 " sd " $7}')
  local ok; ok=$(grep -oP '[0-9]+(?= succeeded)' "$work/$name.out")
  printf '%-22s %10s req/s   %s succeeded   request time: %s\n' "$name" "$rps" "$ok" "$lat"
  echo "$rps" > "$work/$name.rps"
}

ratio() { awk "BEGIN{printf \"%.2f\", $(cat "$work/$1.rps") / $(cat "$work/$2.rps")}"; }

echo "h2load: $requests requests, $conns connections x $streams streams"
run bare-echo "$echo_port"
run create-post-policy "$broker_port"
# The durable bare server answers with as many bytes as the broker did.
answer_bytes=$(grep -oP '^traffic: .*\(\K[0-9]+(?=\) data)' "$work/create-post-policy.out")
"$build_dir/bench/bare_echo_server" --commit_file "$work/bare.commits" \
  --response_bytes $((answer_bytes / requests - 40)) > "$work/durable.port" &
wait_ready "$work/durable.port"
run bare-group-commit "$(cat "$work/durable.port")"
echo "ratio broker/bare: $(ratio create-post-policy bare-echo)   (target >= 0.5)"
echo "ratio bare-group-commit/bare: $(ratio bare-group-commit bare-echo)   broker/bare-group-commit: $(ratio create-post-policy bare-group-commit)"

intents=$(sqlite3 "$work/ledger.db" 'SELECT count(*) FROM intents')
echo "intents stored: $intents (expected $requests: every call succeeded and was durable)"
[[ $intents == "$requests" ]] || { echo "MISMATCH: some calls failed"; exit 1; }

# Latency percentiles at half the broker's maximum rate, one connection per
# stream so h2load's per-request timing is not queueing behind other streams.
half=$(awk "BEGIN{printf \"%d\", $(cat "$work/create-post-policy.rps") / 2}")
echo "at half the maximum rate ($half req/s):"
h2load_policy "$work/body" "$broker_port" -n $((half * 10)) -c 32 -m 1 --rps=$((half / 32 + 1)) \
  --log-file="$work/lat.log" > "$work/half.out"
sort -n -k3 "$work/lat.log" | awk '{a[NR]=$3} END {printf "  p50 %.2f ms  p99 %.2f ms  (n=%d)\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, NR}'
