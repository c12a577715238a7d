# A throwaway PostgreSQL for local runs and benchmarks (sourced, not run):
# initdb on first use, Unix socket only (no TCP), as the `postgres` user
# when run as root (PostgreSQL refuses root). fsync and synchronous_commit
# keep their defaults (on), and so does max_connections (100): a broker
# opens at most ledger.postgres.max_read_connections (8) + 2 connections
# (docs/cluster.md, "Connections"), so run_cluster.sh's three brokers need
# 3 x 10 = 30 and bench/ledger_bench.sh (at most three brokers at once) as many,
# well inside it.
# Tests use tests/testing/postgres_server.h.
#
#   pg_local_start DIR   starts it (data in DIR/data, socket in DIR) and
#                        writes DIR/dsn, a connection string for it
#   pg_local_stop DIR    stops it (fast shutdown)
pg_local_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
pg_local_as=()
[[ $(id -u) != 0 ]] || pg_local_as=(runuser -u postgres --)

pg_local_start() {
  local dir; dir=$(realpath "$1")
  [[ -n $pg_local_bin ]] || { echo "PostgreSQL is not installed (scripts/install-deps.sh)" >&2; return 1; }
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    mkdir -p "$dir"
    [[ ${#pg_local_as[@]} == 0 ]] || chown postgres: "$dir"
    "${pg_local_as[@]}" "$pg_local_bin/initdb" -D "$dir/data" -U ub -A trust -E UTF8 >"$dir/initdb.log"
  fi
  "${pg_local_as[@]}" "$pg_local_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir'" \
      start >/dev/null
  echo "host=$dir user=ub dbname=postgres" > "$dir/dsn"
}

pg_local_stop() {
  local dir; dir=$(realpath "$1")
  "${pg_local_as[@]}" "$pg_local_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
}
