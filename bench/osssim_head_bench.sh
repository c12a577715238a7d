#!/usr/bin/env bash
# oss-sim with a large object: how long the PUT of SIZE_GIB takes (streamed
# to disk), the simulator's peak resident memory meanwhile, and HEAD
# latency for that object next to a 1 KiB one (curl, 20 HEADs each, V1
# presigned). HEAD reads only the object's metadata, so both should be
# equal; the broker's confirmation budget is about 1.5 s.
#
#   flock /tmp/ub-bench.lock bench/osssim_head_bench.sh [SIZE_GIB]    (default 5)
#
# UB_SIM_BIN=PATH runs another oss-sim build instead (e.g. main's, for a
# before/after figure; one without --max-object-bytes gets --max-body-bytes
# raised so the PUT fits in memory).
# Needs SIZE_GIB + 1 GiB free in ${TMPDIR:-/tmp}; everything is deleted at
# the end. Loopback on this machine: the figures describe the simulator,
# not OSS.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_gib=${1:-5}
sim_bin=${UB_SIM_BIN:-$build_dir/service/main/oss-sim}
[[ -n ${UB_SIM_BIN:-} ]] || cmake --build "$build_dir" -j2 --target oss-sim >/dev/null
if "$sim_bin" --help 2>&1 | grep -q max_object_bytes; then
  limit=(--max-object-bytes $((size_gib << 30)))
else
  limit=(--max-body-bytes $(((size_gib << 30) + (1 << 20))))
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
free_kib=$(df -Pk "$work" | awk 'NR==2 {print $4}')
if ((free_kib < (size_gib + 1) * 1024 * 1024)); then
  echo "need $((size_gib + 1)) GiB free in $work, have $((free_kib / 1024 / 1024)) GiB" >&2; exit 1
fi
ak=LTAI5tBenchAccessKeyId sk=bench-secret
"$sim_bin" --listen 127.0.0.1:0 --data-dir "$work/sim" \
  --access-key-id "$ak" --access-key-secret "$sk" \
  "${limit[@]}" --ready-file "$work/sim.ready" >"$work/sim.log" 2>&1 &
sim_pid=$!
wait_ready "$work/sim.ready"
port=$(sed 's/.*"port":\([0-9]*\).*/\1/' "$work/sim.ready")

# url METHOD KEY: a V1 presigned URL (no Content-Type, no Content-MD5).
url() {
  local expires=$(($(date +%s) + 600))
  local sig
  sig=$(printf '%s\n\n\n%s\n/devbucket/%s' "$1" "$expires" "$2" |
    openssl dgst -sha1 -hmac "$sk" -binary | base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
  echo "http://127.0.0.1:$port/devbucket/$2?OSSAccessKeyId=$ak&Expires=$expires&Signature=$sig"
}

# put KEY BYTES: streams BYTES zero bytes (chunked), prints seconds.
put() {
  head -c "$2" /dev/zero |
    curl -sS -f -o /dev/null -w '%{time_total}' -H 'Expect:' -T - "$(url PUT "$1")"
}

# heads KEY: 20 HEADs, prints min median max in ms.
heads() {
  for _ in $(seq 20); do
    curl -sS -f -o /dev/null -I -w '%{time_total}\n' "$(url HEAD "$1")"
  done | sort -n | awk '{t[NR]=$1*1000} END {printf "min %.2f ms, median %.2f ms, max %.2f ms", t[1], t[int((NR+1)/2)], t[NR]}'
}

echo "$sim_bin (tree at $(git -C "$bench_root" rev-parse --short HEAD)), $(nproc) cores, $(uname -r)"
echo "PUT 1 KiB:        $(put small.bin 1024) s"
echo "PUT $size_gib GiB:        $(put big.bin $((size_gib << 30))) s"
echo "sim VmHWM:        $(awk '/VmHWM/ {print $2, $3}' /proc/$sim_pid/status)"
echo "HEAD 1 KiB:       $(heads small.bin)"
echo "HEAD $size_gib GiB:       $(heads big.bin)"
curl -sS -I "$(url HEAD big.bin)" | grep -i -E '^(content-length|etag):' | tr -d '\r'
