#!/usr/bin/env bash
# Subscribe fan-out: the broker (bench/fanout_broker_server: the broker's gRPC
# API over SqliteLedger + EventStreamer, events produced in-process through
# CompleteUpload) side by side with a bare in-memory gRPC fan-out server
# (bench/fanout_bare_server), both driven by bench/fanout_bench, in one run.
#
#   bench/fanout_bench.sh [REPLAY_EVENTS]     (default 1000000; 0 skips replay)
#
# Scenarios: (a) 10 subscribers at 2,000 events/s; (b) 1,000 subscribers at
# 200 events/s (offered 200k deliveries/s: the maximum) and at 20 events/s
# (latency); (c) RSS per idle subscriber (VmRSS with 0 vs 1,000 idle
# streams); (d) replay from EARLIEST over REPLAY_EVENTS stored events, and
# the bare server's single-stream ceiling for comparison.
#
# Live scenarios (a)-(c) ask for one event per message (the format of
# clients that predate max_events_per_message; EVENTS_PER_MESSAGE overrides).
# Replay runs once with one event per message and twice with
# REPLAY_PER_MESSAGE (default 256, what client::Subscriber asks for).
# BARE_FLAGS passes extra flags to the bare server (e.g.
# --serialize-per-write).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
replay=${1:-1000000}
warmup=${WARMUP_S:-2}
duration=${DURATION_S:-5}
channels=${CHANNELS:-4}
per_message=${EVENTS_PER_MESSAGE:-1}
replay_per_message=${REPLAY_PER_MESSAGE:-256}
bare_flags=${BARE_FLAGS:-}
cmake --build "$build_dir" -j2 --target fanout_broker_server fanout_bare_server fanout_bench >/dev/null
bin=$build_dir/bench

work=$(mktemp -d "${TMPDIR:-/var/tmp}/fanout.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
echo -n bench-key > "$work/key"
echo LTAI5tBenchAccessKeyId > "$work/ak"
echo bench-secret > "$work/sk"
config() {  # config DB
  cat > "$work/broker.yaml" <<YAML
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: $1}
credentials: {access_key_id_file: $work/ak, access_key_secret_file: $work/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$work/key" | cut -d' ' -f1), buckets: [bench]}
YAML
}

server_pid=''
start_server() {  # start_server broker|bare RATE [broker flags...]; sets port, server_pid, last
  local kind=$1 rate=$2; shift 2
  rm -f "$work/ready"
  if [[ $kind == broker ]]; then
    rm -f "$work"/live.db*; config "$work/live.db"
    "$bin/fanout_broker_server" --config "$work/broker.yaml" --produce-rate "$rate" "$@" \
      > "$work/ready" 2>>"$work/server.log" &
  else
    # shellcheck disable=SC2086
    "$bin/fanout_bare_server" --produce-rate "$rate" $bare_flags > "$work/ready" 2>>"$work/server.log" &
  fi
  server_pid=$!
  for _ in $(seq 1 3000); do [[ -s $work/ready ]] && break; sleep 0.05; done
  port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$work/ready")
  last=$(sed -n 's/.*last_cursor=\([0-9]*\).*/\1/p' "$work/ready")
  [[ -n $port ]] || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Other load on the machine skews everything: cpu_now stores, in clock ticks,
# wall time x cores, all busy time, and the busy time of the server and of
# this script's finished children (the driver) into $cpu; other_load turns
# two snapshots into the share of the machine other processes used between
# them. Not run in a subshell: `times` must see this shell's children.
cpu_now() {
  local s all=0 i ours
  read -ra s < /proc/stat
  for i in 1 2 3 4 5 6 7 8; do all=$((all + s[i])); done
  ours=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  times > "$work/times"
  ours=$((ours + $(tail -1 "$work/times" | tr 'ms' '  ' |
    awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($1 * 60 + $2 + $3 * 60 + $4) * hz}')))
  cpu="$all $((all - s[4] - s[5])) $ours"
}
other_load() {  # other_load "SNAPSHOT_BEFORE" "SNAPSHOT_AFTER"
  local a=($1) b=($2)
  awk -v all=$((b[0] - a[0])) -v busy=$((b[1] - a[1])) -v ours=$((b[2] - a[2])) \
    'BEGIN { o = (busy - ours) / all * 100; printf "%d%%", o < 0 ? 0 : o }'
}

live() {  # live KIND RATE SUBSCRIBERS: one measured window, prints the driver's line
  local kind=$1 rate=$2 subs=$3 before out
  # Enough intents for connecting, warm-up, the window and slack.
  start_server "$kind" "$rate" --intents "$(awk "BEGIN{printf \"%d\", $rate * ($warmup + $duration + 20)}")"
  cpu_now; before=$cpu
  local s0; s0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  out=$("$bin/fanout_bench" --target "127.0.0.1:$port" --label "$kind" --subscribers "$subs" \
    --channels "$channels" --warmup-s "$warmup" --duration-s "$duration" \
    --events-per-message "$per_message")
  cpu_now
  # Server CPU (all threads) per event received by the driver, warm-up included.
  local us; us=$(awk -v a="$s0" -v b="$(awk '{print $14 + $15}' "/proc/$server_pid/stat")" \
    -v n="$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$out")" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (n > 0 ? (b - a) / hz * 1e6 / n : 0) }')
  echo "$out server_us/delivery=$us others=$(other_load "$before" "$cpu")"
  stop_server
}

idle() {  # idle KIND: prints KIND rss0 rss1000 per-stream
  local kind=$1
  start_server "$kind" 0
  sleep 0.5; local r0; r0=$(rss_kib "$server_pid")
  "$bin/fanout_bench" --target "127.0.0.1:$port" --label "$kind" --subscribers 1000 \
    --channels "$channels" --hold-s 4 > "$work/idle.out" &
  local driver=$!
  for _ in $(seq 1 600); do grep -q connected "$work/idle.out" 2>/dev/null && break; sleep 0.05; done
  sleep 2; local r1; r1=$(rss_kib "$server_pid")
  wait "$driver"
  stop_server
  printf '%-8s idle RSS: %d KiB with 0 streams, %d KiB with 1000: %.1f KiB per stream\n' \
    "$kind" "$r0" "$r1" "$(awk "BEGIN{print ($r1 - $r0) / 1000}")"
}

echo "== (a) 10 subscribers, 2000 events/s (window ${duration}s after ${warmup}s warm-up, $channels channels)"
live bare 2000 10; live broker 2000 10
echo "== (b) 1000 subscribers, 200 events/s offered (200k deliveries/s): maximum deliveries/s"
live bare 200 1000; live broker 200 1000
echo "== (b) 1000 subscribers, 20 events/s (20k deliveries/s): latency"
live bare 20 1000; live broker 20 1000
echo "== (c) RSS per idle subscriber"
idle bare; idle broker
if ((replay > 0)); then
  echo "== (d) replay from EARLIEST over $replay stored events"
  rm -f "$work"/replay.db*; config "$work/replay.db"
  t0=$(date +%s.%N)
  "$bin/fanout_broker_server" --config "$work/broker.yaml" --prefill "$replay" > "$work/ready" 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 12000); do [[ -s $work/ready ]] && break; sleep 0.05; done
  echo "prefill: $(grep 'setup: prefilled' "$work/server.log" | tail -1 | sed 's/setup: //'), $(du -h "$work/replay.db" | cut -f1) on disk"
  port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$work/ready")
  last=$(sed -n 's/.*last_cursor=\([0-9]*\).*/\1/p' "$work/ready")
  replay_run() {  # replay_run EVENTS_PER_MESSAGE
    "$bin/fanout_bench" --target "127.0.0.1:$port" --label broker --subscribers 1 --start earliest \
      --until-cursor "$last" --events-per-message "$1" | sed "s/^/per_message=$1 /"
  }
  replay_run 1
  replay_run "$replay_per_message"
  replay_run "$replay_per_message"
  stop_server
  # Control: the bare server's ceiling for one stream (one write in flight),
  # offered 150k events/s with one event per message and 400k events/s
  # (more than its generator thread makes) with several.
  ceiling() {  # ceiling RATE EVENTS_PER_MESSAGE
    start_server bare "$1"
    "$bin/fanout_bench" --target "127.0.0.1:$port" --label bare --subscribers 1 --channels 1 \
      --warmup-s 1 --duration-s 3 --events-per-message "$2" |
      sed "s/^/single-stream ceiling, offered $1\/s, per_message=$2: /"
    stop_server
  }
  ceiling 150000 1
  ceiling 400000 "$replay_per_message"
fi
