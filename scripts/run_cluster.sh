#!/usr/bin/env bash
# Called by `scripts/run.sh --cluster` inside .dev/ with oss-sim running:
# starts a throwaway PostgreSQL in .dev/pg and three brokers on it.
# Usage: run_cluster.sh BUILD_DIR SIM_PID
set -euo pipefail
build_dir=$1
sim_pid=$2
source "$(dirname "$0")/pg_local.sh"
pg_local_start pg
cp pg/dsn pg.dsn

pids=()
stop() {
  kill "${pids[@]}" "$sim_pid" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pg_local_stop pg
}
trap stop EXIT INT TERM
for n in 1 2 3; do
  sed -e "s|127.0.0.1:50051|127.0.0.1:5005$n|" -e "s|^  http: .127.0.0.1:8080.|  http: \"127.0.0.1:808$((n - 1))\"|" \
      -e "s|^  path: ledger.db|  postgres: {dsn_file: pg.dsn}|" broker.yaml > "broker$n.yaml"
  "$build_dir/service/main/upload-broker" --config "broker$n.yaml" > >(sed -u "s/^/[broker$n] /") 2>&1 &
  pids+=($!)
done
cat <<MSG
Three brokers share PostgreSQL (.dev/pg): gRPC 127.0.0.1:50051, :50052, :50053.
oss-sim calls back the first (HTTP 8080); the others answer on 8081 and 8082.
Try it from another terminal (in the repository):
  export UB_API_KEY=dev-api-key
  UB_BROKER=localhost:50052 $build_dir/client/ubctl watch --cursor-file /tmp/w2 &   # every broker's events
  UB_BROKER=localhost:50053 $build_dir/client/ubctl watch --cursor-file /tmp/w3 &
  UB_BROKER=localhost:50051 $build_dir/client/ubctl upload .dev/hello.txt --bucket devbucket \\
      --key uploads/a.txt --content-type text/plain
  pkill -9 -f broker3.yaml     # its watcher retries; point it at another broker with the
                               # same --cursor-file and it resumes with no gap
MSG
wait "${pids[@]}"
