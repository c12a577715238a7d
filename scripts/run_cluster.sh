#!/usr/bin/env bash
# Called by `scripts/run.sh --cluster` inside .dev/ with oss-sim running:
# starts a throwaway PostgreSQL in .dev/pg, three brokers on it, and nginx in
# front of their callback ports, so oss-sim's callbacks reach whichever
# brokers are up (docs/cluster.md, "Running it locally").
# Usage: run_cluster.sh BUILD_DIR SIM_PID
set -euo pipefail
build_dir=$1
sim_pid=$2
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/install-deps.sh with UB_CLUSTER=1)" >&2; exit 1; }
source "$(dirname "$0")/pg_local.sh"
pg_local_start pg
cp pg/dsn pg.dsn

pids=()
nginx_pid=
stop() {
  kill "${pids[@]}" $nginx_pid "$sim_pid" 2>/dev/null || true
  wait "${pids[@]}" $nginx_pid 2>/dev/null || true
  pg_local_stop pg
}
trap stop EXIT INT TERM

# Every broker has the same callback.url (the balancer's, 8080): OSS signs
# the URL's path and query, and every broker must accept what OSS sends.
# Each listens on its own ports: gRPC 5005n, callbacks 808n, admin 909n.
for n in 1 2 3; do
  sed -e "s|127.0.0.1:50051|127.0.0.1:5005$n|" -e "s|^  http: .127.0.0.1:8080.|  http: \"127.0.0.1:808$n\"|" \
      -e "s|127.0.0.1:9090|127.0.0.1:909$n|" \
      -e "s|^  path: ledger.db|  postgres: {dsn_file: pg.dsn}|" broker.yaml > "broker$n.yaml"
  "$build_dir/service/main/upload-broker" --config "broker$n.yaml" > >(sed -u "s/^/[broker$n] /") 2>&1 &
  pids+=($!)
done

# The balancer on 8080: each callback goes to one broker; a broker that
# refuses the connection, times out or answers 503 is skipped for the next.
# Callbacks may be retried (non_idempotent): a repeat gets the first answer.
mkdir -p nginx
cat > nginx/nginx.conf <<CONF
daemon off;
worker_processes 1;
pid nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path body;
  proxy_temp_path proxy;
  fastcgi_temp_path fastcgi;
  uwsgi_temp_path uwsgi;
  scgi_temp_path scgi;
  upstream brokers {
    server 127.0.0.1:8081 max_fails=1 fail_timeout=5s;
    server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;
    server 127.0.0.1:8083 max_fails=1 fail_timeout=5s;
  }
  server {
    listen 127.0.0.1:8080;
    location / {
      proxy_pass http://brokers;
      proxy_set_header Host \$http_host;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
    }
  }
}
CONF
nginx -p "$PWD/nginx/" -c nginx.conf -e stderr > >(sed -u "s/^/[nginx] /") 2>&1 &
nginx_pid=$!

cat <<MSG
Three brokers share PostgreSQL (.dev/pg): gRPC 127.0.0.1:50051, :50052, :50053.
oss-sim calls back http://127.0.0.1:8080 (nginx), which passes each callback to a broker
that is up (HTTP 8081, 8082, 8083).
Try it from another terminal (in the repository):
  export UB_API_KEY=dev-api-key
  UB_BROKER=localhost:50052 $build_dir/client/ubctl watch --cursor-file /tmp/w2 &   # every broker's events
  UB_BROKER=localhost:50053 $build_dir/client/ubctl watch --cursor-file /tmp/w3 &
  UB_BROKER=localhost:50051 $build_dir/client/ubctl upload .dev/hello.txt --bucket devbucket \\
      --key uploads/a.txt --content-type text/plain
  kill -9 ${pids[0]}   # broker 1; broker 2 is ${pids[1]}, broker 3 is ${pids[2]}
Uploads through the others still complete (nginx passes callbacks to the brokers that are up),
and a watcher pointed at another broker with the same --cursor-file resumes with no gap.
MSG
wait "${pids[@]}"
