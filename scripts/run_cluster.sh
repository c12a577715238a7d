#!/usr/bin/env bash
# Called by `scripts/run.sh --cluster` inside .dev/ with oss-sim running:
# starts a throwaway PostgreSQL in .dev/pg and three brokers on it.
# Usage: run_cluster.sh BUILD_DIR SIM_PID
set -euo pipefail
build_dir=$1
sim_pid=$2
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
if [[ $(id -u) == 0 ]]; then as_pg=(runuser -u postgres --); fi

if [[ ! -f pg/data/PG_VERSION ]]; then
  rm -rf pg && mkdir -p pg
  [[ ${#as_pg[@]} == 0 ]] || chown postgres: pg
  "${as_pg[@]}" "$pg_bin/initdb" -D "$PWD/pg/data" -U ub -A trust -E UTF8 >pg/initdb.log
fi
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$PWD/pg/data" -l "$PWD/pg/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$PWD/pg'" start >/dev/null
echo "host=$PWD/pg user=ub dbname=postgres" > pg.dsn

pids=()
stop() {
  kill "${pids[@]}" "$sim_pid" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$PWD/pg/data" -m fast -w stop >/dev/null || true
}
trap stop EXIT INT TERM
for n in 1 2 3; do
  sed -e "s|127.0.0.1:50051|127.0.0.1:5005$n|" -e "s|^  http: \\"127.0.0.1:8080\\"|  http: \\"127.0.0.1:808$((n - 1))\\"|" \
      -e "s|^  path: ledger.db|  postgres: {dsn_file: pg.dsn}|" broker.yaml > "broker$n.yaml"
  "$build_dir/service/main/upload-broker" --config "broker$n.yaml" 2>&1 | sed -u "s/^/[broker$n] /" &
  pids+=($!)
done
cat <<MSG
Three brokers share PostgreSQL (.dev/pg): gRPC 127.0.0.1:50051, :50052, :50053.
oss-sim calls back the first (HTTP 8080); the others answer on 8081 and 8082.
  export UB_API_KEY=dev-api-key
  UB_BROKER=localhost:50052 $build_dir/client/ubctl watch &     # events from every broker
  UB_BROKER=localhost:50053 $build_dir/client/ubctl watch &
  UB_BROKER=localhost:50051 $build_dir/client/ubctl upload hello.txt --bucket devbucket --key uploads/a.txt
  pkill -9 -f 'broker2.yaml'    # the watchers on the others carry on; reconnect one with --after
MSG
wait "${pids[@]}"
