#!/usr/bin/env bash
# The ledger engines side by side in one run: one broker on SQLite against
# one broker on PostgreSQL (a throwaway server from scripts/pg_local.sh,
# fsync and synchronous_commit on), then three brokers on one PostgreSQL.
#
#   bench/ledger_bench.sh [POLICY_REQUESTS] [CALLBACKS]   (default 30000 10000)
#
# (1) CreatePostPolicy req/s (h2load, 16 connections x 16 streams) and
# (2) OSS callbacks/s at 64 concurrent new connections (bench/callback_load),
#     each engine in turn for LB_ROUNDS rounds (default 3); medians and the
#     ratio PostgreSQL / SQLite (target >= 0.5).
# (3) Commit-to-subscriber latency with 10 subscribers at 2,000 events/s
#     (bench/fanout_broker_server producing in-process, bench/fanout_bench
#     subscribing): SQLite; PostgreSQL with the subscribers on the producing
#     broker; PostgreSQL with the subscribers on another broker (the event
#     reaches it through LISTEN/NOTIFY).
# (4) Three brokers on one PostgreSQL: callbacks sent to all three at once
#     (3 x 22 connections): total callbacks/s, and CPU per callback of the
#     brokers and of PostgreSQL.
# (5) With LB_BIG=N (e.g. 3000000): issuance and callbacks on a ledger
#     already holding N settled intents against an empty one, both engines,
#     and the disk those intents take.
# LB_ONLY_BIG=1 runs (5) alone. Each callback cell checks that every
# callback was answered 200.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$bench_root/scripts/pg_local.sh"
requests=${1:-30000}
callbacks=${2:-10000}
rounds=${LB_ROUNDS:-3}
big=${LB_BIG:-0}
bench_install nghttp2-client openssl sqlite3
cmake --build "$build_dir" -j2 --target upload-broker callback_load fanout_broker_server \
  fanout_bench >/dev/null

work=$(mktemp -d "${TMPDIR:-/var/tmp}/ledger_bench.XXXXXX")
chmod 755 "$work"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  pg_local_stop "$work/pg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
pg_local_start "$work/pg"
psql=("${pg_local_as[@]}" "$pg_local_bin/psql" -X -q -t -A -h "$work/pg" -U ub)

callback_bench_config "$work" 1024
grpc_frame uploadbroker.v1.CreatePostPolicyRequest \
  'bucket: "bench" key: "bench/object.bin" max_size: 1048576 metadata { key: "user" value: "42" }' \
  "$work/body"
# config NAME LEDGER_LINE: DIR/NAME.yaml, the bench config on that ledger.
# (The caller may use any key: the fan-out producer's keys are not under
# bench/, and a subscriber sees only keys in its caller's scope.)
config() {
  sed -e "s|^ledger: .*|ledger: $2|" -e "s|, key_prefixes: \[bench/\]||" "$work/broker.yaml" > "$work/$1.yaml"
}
new_db() {  # new_db NAME: an empty database, its DSN in DIR/NAME.dsn
  "${psql[@]}" -d postgres -c "CREATE DATABASE $1"
  echo "host=$work/pg user=ub dbname=$1" > "$work/$1.dsn"
}
declare -A pid grpc http
start() {  # start NAME: a broker on DIR/NAME.yaml
  rm -f "$work/$1.ready"
  "$build_dir/service/main/upload-broker" --config "$work/$1.yaml" --ready-file "$work/$1.ready" \
    >"$work/$1.log" 2>&1 &
  pid[$1]=$!
  wait_ready "$work/$1.ready"
  grpc[$1]=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/$1.ready")
  http[$1]=$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$work/$1.ready")
}
stop() { kill "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }
cpu_ticks() {  # cpu_ticks PID,PID,...: user+system clock ticks of those processes
  local t=0 p
  for p in ${1//,/ }; do [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
postgres_pids() {  # this cluster's postmaster and its backends
  local pm; pm=$(head -1 "$work/pg/data/postmaster.pid")
  echo "$pm,$(pgrep -d, -P "$pm")"
}

policy() {  # policy NAME: one h2load run; appends req/s to DIR/NAME.policy
  h2load_policy "$work/body" "${grpc[$1]}" -n "$requests" -c 16 -m 16 > "$work/h2.out"
  local rps ok
  rps=$(grep -oP 'finished in .*?, \K[0-9.]+(?= req/s)' "$work/h2.out")
  ok=$(grep -oP '[0-9]+(?= succeeded)' "$work/h2.out")
  printf '  %-16s CreatePostPolicy %9s req/s  (%s of %s succeeded)\n' "$1" "$rps" "$ok" "$requests"
  [[ $ok == "$requests" ]] || { echo "FAIL: not every call succeeded" >&2; exit 1; }
  echo "$rps" >> "$work/$1.policy"
}
load=("$build_dir/bench/callback_load" --key "$work/key.pem" --key-url "$callback_key_url"
      --path /oss/callback --threads 2 --api-key-file "$work/api_key")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
callback() {  # callback NAME [CONC]: one callback_load run; appends callbacks/s to DIR/NAME.cb
  local out
  out=$("${load[@]}" --label "$1" --http "127.0.0.1:${http[$1]}" --grpc "127.0.0.1:${grpc[$1]}" \
        --server-pids "${pid[$1]}" --count "$callbacks" --concurrency "${2:-64}" 2>>"$work/load.log")
  printf '  %-16s callbacks %9s /s  p50 %s ms  p99 %s ms  broker CPU %s us/callback\n' "$1" \
    "$(field rps "$out")" "$(field p50_ms "$out")" "$(field p99_ms "$out")" "$(field server_cpu_us "$out")"
  [[ $(field ok "$out") == "$callbacks" ]] || { echo "FAIL: $(field ok "$out") of $callbacks answered 200" >&2; exit 1; }
  field rps "$out" >> "$work/$1.cb"
}
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk "BEGIN{printf \"%.2f\", $(median "$1") / $(median "$2")}"; }

echo "ledger engines, $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -z ${LB_ONLY_BIG:-} ]]; then
config sqlite "{path: $work/sqlite.db}"
new_db one; config postgres "{postgres: {dsn_file: $work/one.dsn}}"
start sqlite; start postgres
echo "== (1) issuance and (2) callbacks, $rounds rounds, engines in turn"
for round in $(seq 1 "$rounds"); do
  echo "round $round:"
  policy sqlite; policy postgres
  callback sqlite; callback postgres
done
echo "medians: CreatePostPolicy sqlite $(median sqlite.policy) postgres $(median postgres.policy) req/s;" \
     "ratio postgres/sqlite $(ratio postgres.policy sqlite.policy) (target >= 0.5)"
echo "medians: callbacks sqlite $(median sqlite.cb) postgres $(median postgres.cb) /s;" \
     "ratio postgres/sqlite $(ratio postgres.cb sqlite.cb) (target >= 0.5)"
stop sqlite; stop postgres

echo "== (3) commit-to-subscriber, 10 subscribers, 2000 events/s (5 s after 2 s warm-up)"
fanout() {  # fanout LABEL PRODUCER_CONFIG [SUBSCRIBER_CONFIG]
  local label=$1 producer=$2 subscriber=${3:-} port
  "$build_dir/bench/fanout_broker_server" --config "$work/$producer.yaml" --produce-rate 2000 \
    --intents 40000 > "$work/fp.ready" 2>>"$work/fanout.log" &
  local fp=$!
  for _ in $(seq 1 6000); do [[ -s $work/fp.ready ]] && break; sleep 0.05; done
  port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$work/fp.ready")
  local fs=
  if [[ -n $subscriber ]]; then
    "$build_dir/bench/fanout_broker_server" --config "$work/$subscriber.yaml" > "$work/fs.ready" \
      2>>"$work/fanout.log" &
    fs=$!
    for _ in $(seq 1 600); do [[ -s $work/fs.ready ]] && break; sleep 0.05; done
    port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$work/fs.ready")
  fi
  "$build_dir/bench/fanout_bench" --target "127.0.0.1:$port" --label "$label" --subscribers 10 \
    --warmup-s 2 --duration-s 5
  kill $fp $fs 2>/dev/null; wait $fp $fs 2>/dev/null || true
  rm -f "$work/fp.ready" "$work/fs.ready"
}
config fsqlite "{path: $work/fanout.db}"
new_db fan; config fpg "{postgres: {dsn_file: $work/fan.dsn}}"
fanout sqlite fsqlite
fanout pg-same fpg
new_db fan2; config fpg2 "{postgres: {dsn_file: $work/fan2.dsn}}"
fanout pg-other fpg2 fpg2

echo "== (4) three brokers on one PostgreSQL, callbacks to all three at once"
new_db three; for b in b1 b2 b3; do config $b "{postgres: {dsn_file: $work/three.dsn}}"; start $b; done
pg0=$(cpu_ticks "$(postgres_pids)"); br0=$(cpu_ticks "${pid[b1]},${pid[b2]},${pid[b3]}")
loads=()
for b in b1 b2 b3; do
  "${load[@]}" --label "$b" --http "127.0.0.1:${http[$b]}" --grpc "127.0.0.1:${grpc[$b]}" \
    --count "$callbacks" --concurrency 22 > "$work/$b.out" 2>>"$work/load.log" &
  loads+=($!)
done
wait "${loads[@]}"
total=0
for b in b1 b2 b3; do
  out=$(cat "$work/$b.out")
  [[ $(field ok "$out") == "$callbacks" ]] || { echo "FAIL: $b: $(field ok "$out") answered 200" >&2; exit 1; }
  total=$(awk -v a="$total" -v b="$(field rps "$out")" 'BEGIN{print a + b}')
  echo "  $b: $(field rps "$out") callbacks/s  p99 $(field p99_ms "$out") ms"
done
pg1=$(cpu_ticks "$(postgres_pids)"); br1=$(cpu_ticks "${pid[b1]},${pid[b2]},${pid[b3]}")
hz=$(getconf CLK_TCK); n=$((3 * callbacks))
echo "  total: $total callbacks/s (sum of the three); CPU per callback over the whole run" \
     "(intent setup included): brokers $(awk "BEGIN{printf \"%.0f\", ($br1 - $br0) / $hz * 1e6 / $n}") us," \
     "PostgreSQL $(awk "BEGIN{printf \"%.0f\", ($pg1 - $pg0) / $hz * 1e6 / $n}") us"
events=$("${psql[@]}" -d three -c 'SELECT count(*), count(DISTINCT upload_id), max(cursor) FROM ub_events')
echo "  ledger: events, distinct uploads, newest cursor = $events"
for b in b1 b2 b3; do stop $b; done
fi

if ((big > 0)); then
  echo "== (5) a ledger holding $big settled intents against an empty one"
  config sqlite_empty "{path: $work/empty.db, retain_settled: 720h}"
  config sqlite_big "{path: $work/big.db, retain_settled: 720h}"
  new_db empty; config pg_empty "{postgres: {dsn_file: $work/empty.dsn}, retain_settled: 720h}"
  new_db big; config pg_big "{postgres: {dsn_file: $work/big.dsn}, retain_settled: 720h}"
  for b in sqlite_big pg_big; do start $b; stop $b; done  # creates the schemas
  t=$(date +%s)
  sqlite3 "$work/big.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $big)
    INSERT INTO intents(upload_id, caller, bucket, key, state, expires_at, settled_at, record)
    SELECT printf('up_%012x%020d', (strftime('%s','now') - 86400) * 1000, i), 'bench', 'bench',
           'bench/prefill/' || i, 2, 0, strftime('%s','now') * 1000000000, randomblob(300) FROM n;"
  echo "  sqlite: filled in $(($(date +%s) - t)) s; file $(du -m "$work/big.db" | cut -f1) MB" \
       "= $(awk "BEGIN{printf \"%.0f\", $(stat -c %s "$work/big.db") / $big * 1e6 / 1048576}") MB per million intents"
  t=$(date +%s)
  "${psql[@]}" -d big -c "INSERT INTO ub_intents(upload_id, caller, bucket, key, state, expires_at, settled_at, record)
    SELECT 'up_' || lpad(to_hex((extract(epoch FROM now())::bigint - 86400) * 1000), 12, '0') || lpad(i::text, 20, '0'),
           'bench', 'bench', 'bench/prefill/' || i, 2, 0, extract(epoch FROM now())::bigint * 1000000000,
           convert_to(repeat(md5(i::text), 10), 'UTF8') FROM generate_series(1, $big) i"
  "${psql[@]}" -d big -c "VACUUM ANALYZE ub_intents"
  bytes=$("${psql[@]}" -d big -c "SELECT pg_total_relation_size('ub_intents')")
  echo "  postgres: filled in $(($(date +%s) - t)) s; ub_intents with indexes $((bytes / 1048576)) MB" \
       "= $(awk "BEGIN{printf \"%.0f\", $bytes / $big * 1e6 / 1048576}") MB per million intents"
  for b in sqlite_empty sqlite_big pg_empty pg_big; do start $b; done
  for round in 1 2; do
    echo "round $round:"
    for b in sqlite_empty sqlite_big pg_empty pg_big; do policy $b; done
    for b in sqlite_empty sqlite_big pg_empty pg_big; do callback $b; done
  done
  for e in sqlite pg; do
    echo "  $e: issuance big/empty $(ratio ${e}_big.policy ${e}_empty.policy)," \
         "callbacks big/empty $(ratio ${e}_big.cb ${e}_empty.cb)"
  done
  for b in sqlite_empty sqlite_big pg_empty pg_big; do stop $b; done
fi
