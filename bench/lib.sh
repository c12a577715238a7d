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

# wait_ready FILE: waits until the broker's --ready_file exists.
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
