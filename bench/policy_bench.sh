#!/usr/bin/env bash
# CreatePostPolicy throughput and latency under h2load, side by side with a
# bare gRPC echo server serving the same method, in one run; then the same
# bare server answering only after a shared fdatasync, from its commit thread,
# with an answer the size of the broker's (what durability alone costs).
#
#   bench/policy_bench.sh [REQUESTS] [CONNECTIONS] [STREAMS_PER_CONNECTION]
#
# The three servers take turns, POLICY_BENCH_ROUNDS times (default 3), so
# drift on a shared machine hits them alike; the ratios are of the medians.
# Prints each run's req/s, the medians and ratios, checks separately that
# every broker call succeeded (each success leaves one intent), then the
# broker's p50/p99 at half its median rate.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
requests=${1:-100000}
conns=${2:-16}
streams=${3:-16}
rounds=${POLICY_BENCH_ROUNDS:-3}
bench_install nghttp2-client sqlite3
cmake --build "$build_dir" -j2 --target upload-broker bare_echo_server >/dev/null

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
policy_bench_config "$work"

"$build_dir/service/main/upload-broker" --config "$work/broker.yaml" --ready-file "$work/ready" 2>"$work/broker.log" &
"$build_dir/bench/bare_echo_server" > "$work/echo.port" &
wait_ready "$work/ready"; wait_ready "$work/echo.port"
broker_port=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")
echo_port=$(cat "$work/echo.port")
# The durable bare server answers with as many bytes as the broker does.
h2load_policy "$work/body" "$broker_port" -n 1 -c 1 -m 1 > "$work/probe.out"
answer_bytes=$(grep -oP '^traffic: .*\(\K[0-9]+(?=\) data)' "$work/probe.out")
"$build_dir/bench/bare_echo_server" --commit-file "$work/bare.commits" \
  --response-bytes $((answer_bytes - 40)) > "$work/durable.port" &
wait_ready "$work/durable.port"
durable_port=$(cat "$work/durable.port")

run() {  # run NAME PORT: one h2load run, appends its req/s to NAME.rps
  local name=$1 port=$2
  h2load_policy "$work/body" "$port" -n "$requests" -c "$conns" -m "$streams" > "$work/$name.out"
  local rps; rps=$(grep -oP 'finished in .*?, \K[0-9.]+(?= req/s)' "$work/$name.out")
  local mean; mean=$(grep -P '^time for request:' "$work/$name.out" | awk '{print $6}')
  local ok; ok=$(grep -oP '[0-9]+(?= succeeded)' "$work/$name.out")
  printf '  %-20s %10s req/s   %s succeeded   mean request time %s\n' "$name" "$rps" "$ok" "$mean"
  echo "$rps" >> "$work/$name.rps"
}
median() { sort -n "$work/$1.rps" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk "BEGIN{printf \"%.2f\", $(median "$1") / $(median "$2")}"; }

echo "h2load: $requests requests per run, $conns connections x $streams streams, $rounds rounds"
for round in $(seq 1 "$rounds"); do
  echo "round $round:"
  run bare-echo "$echo_port"
  run create-post-policy "$broker_port"
  run bare-group-commit "$durable_port"
done
echo "medians: bare-echo $(median bare-echo)  create-post-policy $(median create-post-policy)  bare-group-commit $(median bare-group-commit) req/s"
echo "ratio broker/bare: $(ratio create-post-policy bare-echo)   (target >= 0.5)"
echo "ratio bare-group-commit/bare: $(ratio bare-group-commit bare-echo)   broker/bare-group-commit: $(ratio create-post-policy bare-group-commit)"

expected=$((rounds * requests + 1))
intents=$(sqlite3 "$work/ledger.db" 'SELECT count(*) FROM intents')
echo "intents stored: $intents (expected $expected: every call succeeded and was durable)"
[[ $intents == "$expected" ]] || { echo "MISMATCH: some calls failed"; exit 1; }

# Latency percentiles at half the broker's maximum rate, one connection per
# stream so h2load's per-request timing is not queueing behind other streams.
half=$(awk "BEGIN{printf \"%d\", $(median create-post-policy) / 2}")
echo "at half the maximum rate ($half req/s):"
h2load_policy "$work/body" "$broker_port" -n $((half * 10)) -c 32 -m 1 --rps=$((half / 32 + 1)) \
  --log-file="$work/lat.log" > "$work/half.out"
sort -n -k3 "$work/lat.log" | awk '{a[NR]=$3} END {printf "  p50 %.2f ms  p99 %.2f ms  (n=%d)\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, NR}'
