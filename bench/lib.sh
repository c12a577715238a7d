# Shared helpers for the benchmark scripts (sourced, not run).
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$(realpath "${UB_BUILD_DIR:-$bench_root/build}")

# bench_install PKG...: installs missing Debian packages the benchmarks use.
bench_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    local sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# wait_ready FILE: waits until the broker's --ready-file exists.
wait_ready() {
  for _ in $(seq 1 200); do [[ -s $1 ]] && return 0; sleep 0.05; done
  echo "not ready: $1" >&2; return 1
}

# grpc_frame MESSAGE_TYPE TEXT OUT: encodes a text-format request with protoc
# and prefixes the 5-byte gRPC frame header (uncompressed, big-endian length).
grpc_frame() {
  local msg; msg=$(mktemp)
  echo "$2" | protoc --encode="$1" -I "$bench_root/proto" "$bench_root/proto/uploadbroker/v1/upload_broker.proto" > "$msg"
  local n; n=$(stat -c %s "$msg")
  printf "\\x00\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))" > "$3"
  cat "$msg" >> "$3"
  rm -f "$msg"
}

# policy_bench_config DIR: credentials, API key "bench-key", DIR/broker.yaml
# for a broker on ephemeral ports, and DIR/body, a gRPC-framed
# CreatePostPolicyRequest for h2load's -d.
policy_bench_config() {
  echo -n bench-key > "$1/key"
  echo LTAI5tBenchAccessKeyId > "$1/ak"
  echo bench-secret > "$1/sk"
  cat > "$1/broker.yaml" <<YAML
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: $1/ledger.db}
credentials: {access_key_id_file: $1/ak, access_key_secret_file: $1/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$1/key" | cut -d' ' -f1), buckets: [bench]}
YAML
  grpc_frame uploadbroker.v1.CreatePostPolicyRequest \
    'bucket: "bench" key: "uploads/bench/object.bin" max_size: 1048576 metadata { key: "user" value: "42" }' \
    "$1/body"
}

# h2load_policy BODY PORT H2LOAD_ARGS...: h2load sending BODY as
# CreatePostPolicy calls to 127.0.0.1:PORT with the bench API key.
h2load_policy() {
  local body=$1 port=$2; shift 2
  h2load "$@" -H 'content-type: application/grpc' -H 'te: trailers' -H 'authorization: Bearer bench-key' \
    -d "$body" "http://127.0.0.1:$port/uploadbroker.v1.UploadBroker/CreatePostPolicy"
}

# callback_bench_config DIR BITS: a test callback key pair of BITS bits (the
# broker trusts its public half through explicit config, as for the OSS
# simulator; the load generator signs with the private half), credentials,
# and DIR/broker.yaml for a broker on ephemeral ports. Its callbacks describe
# objects no bucket holds (the bucket endpoint is never contacted), so
# confirmation is turned off explicitly; callback_bench.sh runs a second
# broker that confirms, against oss-sim.
callback_key_url=http://127.0.0.1:9/bench_pub_key.pem
callback_bench_config() {
  openssl genrsa -out "$1/key.pem" "$2" 2>/dev/null
  openssl rsa -in "$1/key.pem" -pubout -out "$1/pub.pem" 2>/dev/null
  echo -n bench-key > "$1/api_key"
  echo LTAI5tBenchAccessKeyId > "$1/ak"
  echo bench-secret > "$1/sk"
  cat > "$1/broker.yaml" <<YAML
development: true
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback:
  url: "https://broker.example.com/oss/callback"
  trusted_key_url: "$callback_key_url"
  trusted_key_file: $1/pub.pem
  confirm_completions: false
ledger: {path: $1/ledger.db}
credentials: {access_key_id_file: $1/ak, access_key_secret_file: $1/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$1/api_key" | cut -d' ' -f1), buckets: [bench], key_prefixes: [bench/]}
YAML
}

# callgrind_broker OUT DIR: starts the broker on DIR/broker.yaml under
# valgrind's callgrind with instrumentation off (profile to OUT, log to
# DIR/broker.log), sets vg_pid, and waits until it is ready (it starts
# ~50x slower than usual).
callgrind_broker() {
  rm -f "$1"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$1" \
    "$build_dir/service/main/upload-broker" --config "$2/broker.yaml" \
    --ready-file "$2/ready" >"$2/broker.log" 2>&1 &
  vg_pid=$!
  for _ in $(seq 1 1200); do [[ -s $2/ready ]] && break; sleep 0.05; done
  wait_ready "$2/ready"
}

# callgrind_report OUT N WHAT: instructions per WHAT over N of them, and the
# top functions by inclusive cost.
callgrind_report() {
  local total; total=$(callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  echo "instructions: $total total, $((total / $2)) per $3"
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | sed -n '/file:function/,$p' | head -45 | cut -c1-160
}
