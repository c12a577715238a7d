#!/usr/bin/env bash
# Memory across config reloads (#17): starts upload-broker with 200 callers,
# sends it RELOADS SIGHUPs one at a time (each waits for its "reloaded the
# callers section" log line) and prints the resident set before and after.
# Before the fix every reload kept the replaced caller list forever.
#
#   flock /tmp/ub-bench.lock bench/reload_rss.sh [BROKER_BINARY] [RELOADS]
#
# BROKER_BINARY defaults to build/service/main/upload-broker, RELOADS to 1388
# (the count in the issue). Uses a temporary directory; no network access.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/service/main/upload-broker}
n=${2:-1388}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf LTAI5tTestId >"$dir/ak"
printf secret >"$dir/sk"
{
  echo "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}"
  echo "callback: {url: \"https://broker.example.com/oss/callback\"}"
  echo "credentials: {access_key_id_file: $dir/ak, access_key_secret_file: $dir/sk}"
  echo "ledger: {path: $dir/ledger.db}"
  echo "reconcile: {enabled: false}"
  echo "buckets: [{name: photos, region: cn-hangzhou, endpoint: \"https://oss-cn-hangzhou.aliyuncs.com\"}]"
  echo "callers:"
  for i in $(seq 0 199); do
    hash=$(printf 'key-%s' "$i" | sha256sum | cut -d' ' -f1)
    echo "  - {name: c$i, api_key_sha256: $hash, buckets: [photos], key_prefixes: [uploads/c$i/, other/c$i/], content_types: [image/png, image/jpeg], read_callers: [c$(((i + 1) % 200))]}"
  done
} >"$dir/broker.yaml"
"$bin" --config "$dir/broker.yaml" --ready-file "$dir/ready.json" >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -f $dir/ready.json ]] && break; sleep 0.1; done
[[ -f $dir/ready.json ]] || { cat "$dir/log"; exit 1; }
sleep 0.5
before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
for i in $(seq "$n"); do
  kill -HUP "$pid"
  while (($(grep -c 'reloaded the callers section' "$dir/log") < i)); do sleep 0.002; done
done
after=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
echo "$bin: $n reloads, RSS ${before} kB -> ${after} kB"
