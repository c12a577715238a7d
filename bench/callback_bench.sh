#!/usr/bin/env bash
# OSS callback ingestion: durable callbacks/s (verified + committed + answered)
# and latency at 1, 16 and 64 concurrent connections, first with a NEW TCP
# connection per callback (`Connection: close`, as OSS sends them), then with
# keep-alive, side by side in one run with the same requests sent to nginx
# answering a fixed 200 (a static responder, no work at all) and to a second
# broker that confirms every completion with a signed HeadObject against
# oss-sim (the first one has confirmation turned off; the objects are stored
# in oss-sim's data directory during the untimed setup).
#
#   bench/callback_bench.sh [CALLBACKS] [CALLBACKS_AT_CONCURRENCY_1]
#
# Each broker cell sends distinct callbacks for fresh intents (created first
# over gRPC, not timed). Checks that every broker callback got 200 and that
# the ledger gained exactly one event per callback; exits 1 otherwise.
# Besides rates and latency it prints, per cell, the CPU time per callback of
# each server and of the client, and the share of the machine other processes
# used meanwhile (the machine is shared: read ratios, not absolute rates).
#
# Environment:
#   CB_PERF=1             also `perf record --call-graph dwarf` the broker during
#                         the new-connection, 64-connection cell and print its CPU
#                         by component (data kept in
#                         ${CB_PERF_OUT:-/tmp/callback_bench.perf.data})
#   CB_KEY_BITS=1024      test RSA key size (OSS's own key is 512 bits)
#   CB_CLIENT_THREADS=2   load generator I/O threads
#   CB_MODES="newconn keepalive"  CB_CONNS="1 16 64"
#                         run only these cells (quick iterations)
#   CB_BASELINE_BIN=PATH  another upload-broker binary (e.g. main's, built in
#                         another tree) run as a second confirming broker with
#                         the same config against the same oss-sim (its own
#                         ledger); each cell then also sends the confirm load to
#                         it, the two alternating which goes first, and prints
#                         baseline/s and confirm/baseline
#   CB_CONFIRM_ONLY=1     skip the nginx and unconfirmed-broker cells (only the
#                         confirming broker, and the baseline if given)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
n=${1:-20000}
n1=${2:-2000}
bits=${CB_KEY_BITS:-1024}
bench_install nginx-light sqlite3 openssl
[[ -z ${CB_PERF:-} ]] || command -v perf >/dev/null || bench_install linux-perf
cmake --build "$build_dir" -j2 --target upload-broker oss-sim callback_load >/dev/null
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/callback_bench.XXXXXX")
cleanup() {
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  kill $(jobs -p) 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# free_port: a loopback port nothing listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

callback_bench_config "$work" "$bits"
key_url=$callback_key_url

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    default_type application/json;
    location / { return 200 '{"ok":true}'; }
  }
}
NGINX
"$build_dir/service/main/upload-broker" --config "$work/broker.yaml" --ready-file "$work/ready" >"$work/broker.log" 2>&1 &
broker_pid=$!
# The confirming broker: same key and callers, its bucket in oss-sim.
mkdir -p "$work/confirm" "$work/sim"
"$build_dir/service/main/oss-sim" --listen 127.0.0.1:0 --data-dir "$work/sim" \
  --access-key-id-file "$work/ak" --access-key-secret-file "$work/sk" \
  --ready-file "$work/sim.ready" >"$work/sim.log" 2>&1 &
sim_pid=$!
wait_ready "$work/sim.ready"
sim_port=$(sed 's/.*"port":\([0-9]*\).*/\1/' "$work/sim.ready")
sed -e '/confirm_completions: false/d' -e "s|ledger: {path: .*}|ledger: {path: $work/confirm/ledger.db}|" \
    -e "s|endpoint: \"https://oss-cn-hangzhou.aliyuncs.com\"}|endpoint: \"http://127.0.0.1:$sim_port\", path_style: true}|" \
    "$work/broker.yaml" > "$work/confirm/broker.yaml"
"$build_dir/service/main/upload-broker" --config "$work/confirm/broker.yaml" --ready-file "$work/confirm/ready" >"$work/confirm/broker.log" 2>&1 &
confirm_pid=$!
base_pid=
if [[ -n ${CB_BASELINE_BIN:-} ]]; then
  mkdir -p "$work/base"
  sed -e "s|ledger: {path: .*}|ledger: {path: $work/base/ledger.db}|" "$work/confirm/broker.yaml" > "$work/base/broker.yaml"
  "$CB_BASELINE_BIN" --config "$work/base/broker.yaml" --ready-file "$work/base/ready" >"$work/base/broker.log" 2>&1 &
  base_pid=$!
fi
"$nginx_bin" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx.conf" >>"$work/nginx/error.log" 2>&1 &
nginx_pid=$!
wait_ready "$work/ready"
wait_ready "$work/confirm/ready"
[[ -z $base_pid ]] || wait_ready "$work/base/ready"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break; sleep 0.05; done
broker_http=127.0.0.1:$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$work/ready")
broker_grpc=127.0.0.1:$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")
confirm_http=127.0.0.1:$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$work/confirm/ready")
confirm_grpc=127.0.0.1:$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/confirm/ready")
if [[ -n $base_pid ]]; then
  base_http=127.0.0.1:$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$work/base/ready")
  base_grpc=127.0.0.1:$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/base/ready")
fi

# Two client I/O threads: one thread cannot open connections as fast as nginx
# accepts them on this machine. The client shares the cores with the server.
load=("$build_dir/bench/callback_load" --key "$work/key.pem" --key-url "$key_url" --path /oss/callback
      --threads "${CB_CLIENT_THREADS:-2}")
events() { sqlite3 "$work/ledger.db" 'SELECT COUNT(*) FROM events'; }
confirm_events() { sqlite3 "$work/confirm/ledger.db" 'SELECT COUNT(*) FROM events'; }
base_events() { sqlite3 "$work/base/ledger.db" 'SELECT COUNT(*) FROM events'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
failed=0
tails=()
bases=()
cell=0

# Other load on the machine skews everything: measure it. cpu_now stores, in
# clock ticks: wall time x cores, all busy time, and the busy time of the
# broker, the nginx workers and this script's finished children (the load
# generator, sqlite3), into $cpu; other_load turns two such snapshots into the
# share of the machine other processes used in between. Not run in a subshell:
# `times` must see this shell's children.
cpu_now() {
  local s=($(head -1 /proc/stat)) all=0 i w
  for i in 1 2 3 4 5 6 7 8; do all=$((all + s[i])); done
  local ours=$(cat "/proc/$broker_pid/stat" "/proc/$confirm_pid/stat" "/proc/$sim_pid/stat" ${base_pid:+"/proc/$base_pid/stat"} | awk '{s += $14 + $15} END {print s}')
  for w in $(pgrep -P "$nginx_pid"); do ours=$((ours + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done
  times > "$work/times"
  ours=$((ours + $(tail -1 "$work/times" | tr 'ms' '  ' | awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($1 * 60 + $2 + $3 * 60 + $4) * hz}')))
  cpu="$all $((all - s[4] - s[5])) $ours"
}
other_load() {  # other_load "SNAPSHOT_BEFORE" "SNAPSHOT_AFTER"
  local a=($1) b=($2)
  awk -v all=$((b[0] - a[0])) -v busy=$((b[1] - a[1])) -v ours=$((b[2] - a[2])) \
    'BEGIN { o = (busy - ours) / all * 100; printf "%d%%", o < 0 ? 0 : o }'
}
echo "callback ingestion, $(nproc) cores, RSA-$bits test key, synchronous=FULL ledger in $work"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %5s %6s | %9s %9s %9s %6s | %-17s %-17s %-17s | %-6s | %s\n' mode conns calls \
  broker/s confirm/s nginx/s ratio 'broker p50/p99 ms' 'confirm p50/p99 ms' 'nginx p50/p99 ms' others 'broker check'
for mode in ${CB_MODES:-newconn keepalive}; do
  extra=(); [[ $mode == keepalive ]] && extra=(--keep-alive)
  for c in ${CB_CONNS:-1 16 64}; do
    count=$n; ((c == 1)) && count=$n1
    cpu_now; snap=$cpu
    nginx_out=; broker_out=; check="ok"
    if [[ -z ${CB_CONFIRM_ONLY:-} ]]; then
    nginx_out=$("${load[@]}" "${extra[@]}" --no-setup --label nginx --http "127.0.0.1:$nginx_port" \
                  --server-pids "$(pgrep -P "$nginx_pid" | paste -sd,)" \
                  --count "$count" --concurrency "$c" 2>>"$work/load.log") || true
    before=$(events)
    perf_pid=
    if [[ -n ${CB_PERF:-} && $mode == newconn && $c == 64 ]]; then
      # Start recording once the (untimed) intent setup is over: poll for the
      # signing message the load generator prints just before sending.
      ( while ! grep -q 'broker-perf\]: created' "$work/load.log" 2>/dev/null; do sleep 0.05; done
        exec perf record --call-graph dwarf,16384 -F 499 -p "$broker_pid" -o "${CB_PERF_OUT:-/tmp/callback_bench.perf.data}" 2>>"$work/perf.log" ) &
      perf_pid=$!
      label=broker-perf
    else
      label=broker
    fi
    broker_out=$("${load[@]}" "${extra[@]}" --label "$label" --http "$broker_http" --grpc "$broker_grpc" \
                   --server-pids "$broker_pid" \
                   --api-key-file "$work/api_key" --count "$count" --concurrency "$c" 2>>"$work/load.log") || true
    if [[ -n $perf_pid ]]; then
      kill -INT "$perf_pid" 2>/dev/null || true
      wait "$perf_pid" 2>/dev/null || true
    fi
    added=$(($(events) - before))
    ok=$(field ok "$broker_out")
    check="ok"
    if [[ $ok != "$count" || $added != "$count" ]]; then
      check="FAIL: $ok/$count answered 200 ($(field statuses "$broker_out")), $added events"
      failed=1
    fi
    fi  # CB_CONFIRM_ONLY
    # The same load against the broker that confirms each object with HeadObject
    # (and the baseline broker, the two alternating which goes first).
    run_confirm() {
      before=$(confirm_events)
      confirm_out=$("${load[@]}" "${extra[@]}" --label confirm --http "$confirm_http" --grpc "$confirm_grpc" \
                      --server-pids "$confirm_pid,$sim_pid" --sim-data "$work/sim" \
                      --api-key-file "$work/api_key" --count "$count" --concurrency "$c" 2>>"$work/load.log") || true
      added=$(($(confirm_events) - before))
      ok=$(field ok "$confirm_out")
      if [[ $ok != "$count" || $added != "$count" ]]; then
        check="$check; confirm FAIL: $ok/$count answered 200 ($(field statuses "$confirm_out")), $added events"
        failed=1
      fi
    }
    run_base() {
      before=$(base_events)
      base_out=$("${load[@]}" "${extra[@]}" --label base --http "$base_http" --grpc "$base_grpc" \
                   --server-pids "$base_pid,$sim_pid" --sim-data "$work/sim" \
                   --api-key-file "$work/api_key" --count "$count" --concurrency "$c" 2>>"$work/load.log") || true
      added=$(($(base_events) - before))
      ok=$(field ok "$base_out")
      if [[ $ok != "$count" || $added != "$count" ]]; then
        check="$check; baseline FAIL: $ok/$count answered 200 ($(field statuses "$base_out")), $added events"
        failed=1
      fi
    }
    base_out=
    if [[ -z $base_pid ]]; then
      run_confirm
    elif ((cell % 2 == 0)); then
      run_base; run_confirm
    else
      run_confirm; run_base
    fi
    cell=$((cell + 1))
    if [[ -n $base_pid ]]; then
      bases+=("$(printf '  %-9s %2d conns | baseline %9s/s p50/p99 %s / %s ms | confirm %9s/s p50/p99 %s / %s ms | confirm/baseline %s' "$mode" "$c" \
        "$(field rps "$base_out")" "$(field p50_ms "$base_out")" "$(field p99_ms "$base_out")" \
        "$(field rps "$confirm_out")" "$(field p50_ms "$confirm_out")" "$(field p99_ms "$confirm_out")" \
        "$(awk -v a="$(field rps "$confirm_out")" -v b="$(field rps "$base_out")" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')")")
    fi
    b=$(field rps "$broker_out"); g=$(field rps "$nginx_out"); cf=$(field rps "$confirm_out")
    cpu_now; others=$(other_load "$snap" "$cpu")
    printf '%-9s %5d %6d | %9s %9s %9s %6s | %-17s %-17s %-17s | %-6s | %s\n' "$mode" "$c" "$count" "$b" "$cf" "$g" \
      "$(awk -v b="$b" -v g="$g" 'BEGIN { if (g > 0) printf "%.2f", b / g; else print "-" }')" \
      "$(field p50_ms "$broker_out") / $(field p99_ms "$broker_out")" \
      "$(field p50_ms "$confirm_out") / $(field p99_ms "$confirm_out")" \
      "$(field p50_ms "$nginx_out") / $(field p99_ms "$nginx_out")" "$others" "$check"
    tails+=("$(printf '  %-9s %2d conns | %8s / %-8s / %-8s | %6s / %-6s / %-6s | %6s / %-6s' "$mode" "$c" \
      "$(field p999_ms "$broker_out")" "$(field p999_ms "$confirm_out")" "$(field p999_ms "$nginx_out")" \
      "$(field server_cpu_us "$broker_out")" "$(field server_cpu_us "$confirm_out")" "$(field server_cpu_us "$nginx_out")" \
      "$(field client_cpu_us "$broker_out")" "$(field client_cpu_us "$nginx_out")")")
  done
done
if ((${#bases[@]})); then
  echo "confirming broker against the baseline binary ($CB_BASELINE_BIN), same oss-sim, same load:"
  printf '%s\n' "${bases[@]}"
fi
echo "broker / confirm / nginx:  p99.9 ms                   | server CPU us/call      | client CPU us/call"
echo "(confirm's server CPU counts the broker and oss-sim, which answers its HEADs)"
printf '%s\n' "${tails[@]}"
total=$(events); distinct=$(sqlite3 "$work/ledger.db" 'SELECT COUNT(DISTINCT upload_id) FROM events')
echo "ledger: $total events for $distinct distinct uploads"
[[ $total == "$distinct" ]] || failed=1
if grep -q 'callback_load\[.*#' "$work/load.log"; then
  echo "first failures:"; grep 'callback_load\[.*#' "$work/load.log" | head -10
fi
echo "others: share of the machine (all cores) used by other processes during the cell;"
echo "CPU us/call: CPU time per callback while sending (server: all its threads and"
echo "processes; clock-tick resolution), which moves far less than the rates when"
echo "other processes share the machine."
if [[ -n ${CB_PERF:-} ]]; then
  # Buckets each sample by the first rule whose text occurs anywhere in its
  # call stack (rules in order), so each sample is counted once.
  echo "perf (broker, new connection per callback, 64 connections): share of the broker's CPU"
  perf script -i "${CB_PERF_OUT:-/tmp/callback_bench.perf.data}" -F tid,ip,sym,dso 2>/dev/null | awk '
    BEGIN {
      r = 0
      rule[++r] = "committer: fdatasync of the WAL|fdatasync"
      rule[++r] = "committer: WAL frame writes|sqlite3WalFrames"
      rule[++r] = "committer: checkpoint|sqlite3WalCheckpoint|walCheckpoint|sqlite3WalDefaultHook"
      rule[++r] = "committer: CompleteUpload SQL (load intent, store intent, append event)|SqliteWriter::CompleteUpload"
      rule[++r] = "committer: batch bookkeeping, done callbacks|SqliteLedger::RunBatch|SqliteLedger::CommitLoop"
      rule[++r] = "handler: RSA verify (EVP)|VerifyMd5"
      rule[++r] = "handler: rest of verification|Verifier::"
      rule[++r] = "handler: GetUpload (read-pool lookup of the intent)|SqliteLedger::GetUpload|SqliteReaders::GetUpload"
      rule[++r] = "handler: body parse|ParseCallbackBody|nlohmann"
      rule[++r] = "handler: metrics|metrics::"
      rule[++r] = "handler: other|CallbackHandler::"
      rule[++r] = "http: accept and connection setup|Server::Accept"
      rule[++r] = "http: response write (incl. kernel TCP send)|Connection::Write|Connection::Send|write_op"
      rule[++r] = "http: close, shutdown|shutdown|Connection::Close|~Connection"
      rule[++r] = "http: request read and parse|read_some_op|read_op|basic_parser"
      rule[++r] = "asio: epoll, scheduler, wake-ups|epoll_wait|scheduler::run|do_run_one|epoll_reactor"
      rule[++r] = "gRPC|grpc"
    }
    function flush(   i, j, n, p) {
      if (stack == "") return
      total++
      for (i = 1; i <= r; i++) {
        n = split(rule[i], p, "|")
        for (j = 2; j <= n; j++) if (index(stack, p[j])) { hits[p[1]]++; stack = ""; return }
      }
      hits["other"]++; stack = ""
    }
    /^[^ \t]/ { flush(); next }
    { stack = stack "\n" $0 }
    END { flush(); for (k in hits) printf "  %5.1f%%  %s\n", 100 * hits[k] / total, k; printf "  (%d samples)\n", total }
  ' | sort -t% -k1 -rn || true
fi
exit "$failed"
