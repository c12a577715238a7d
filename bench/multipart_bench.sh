#!/usr/bin/env bash
# A large file through `ubctl upload --multipart` (PARALLEL parts in flight)
# against oss-sim, side by side with one `curl -T` PUT of the same file to
# oss-sim (presigned by the broker), in one run; then SignUploadParts for a
# 10,000-part plan (bench/sign_parts_bench) and the broker's CPU per signed
# part (from /proc/PID/stat, 10 ms ticks, so only the 50,000-part figure is
# precise).
#
#   bench/multipart_bench.sh [SIZE_MIB] [PART_MIB] [PARALLEL]    (default 1024 64 4)
#
# Everything runs on loopback on this machine, so the figures compare the
# two paths through the same simulator; they say nothing about OSS itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_mib=${1:-1024}
part_mib=${2:-64}
parallel=${3:-4}
cmake --build "$build_dir" -j2 --target upload-broker oss-sim ubctl sign_parts_bench >/dev/null

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
echo -n bench-key > "$work/api_key"
echo LTAI5tBenchAccessKeyId > "$work/ak"
echo bench-secret > "$work/sk"
"$build_dir/service/main/oss-sim" --listen 127.0.0.1:0 --data-dir "$work/sim" \
  --access-key-id-file "$work/ak" --access-key-secret-file "$work/sk" \
  --max-body-bytes $(((size_mib + 1) << 20)) --ready-file "$work/sim.ready" 2>"$work/sim.log" &
wait_ready "$work/sim.ready"
sim_port=$(sed 's/.*"port":\([0-9]*\).*/\1/' "$work/sim.ready")
cb_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/broker.yaml" <<YAML
development: true  # http:// endpoint and callback key on loopback
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:$cb_port"}
callback:
  url: "http://127.0.0.1:$cb_port/oss/callback"
  trusted_key_url: "http://127.0.0.1:$sim_port/sim_pub_key.pem"
ledger: {path: $work/ledger.db}
credentials: {access_key_id_file: $work/ak, access_key_secret_file: $work/sk}
buckets:
  - {name: bench, region: cn-hangzhou, endpoint: "http://127.0.0.1:$sim_port", path_style: true}
callers:
  - {name: bench, api_key_sha256: $(sha256sum < "$work/api_key" | cut -d' ' -f1), buckets: [bench], key_prefixes: [bench/]}
YAML
"$build_dir/service/main/upload-broker" --config "$work/broker.yaml" --ready-file "$work/ready" 2>"$work/broker.log" &
broker_pid=$!
wait_ready "$work/ready"
broker_port=$(sed 's/.*"grpc_port":\([0-9]*\).*/\1/' "$work/ready")
export UB_BROKER=127.0.0.1:$broker_port UB_API_KEY=bench-key

echo "making a ${size_mib} MiB file"
head -c $((size_mib << 20)) /dev/urandom > "$work/big.bin"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$broker_pid/stat"; }
hz=$(getconf CLK_TCK)

# Multipart through ubctl.
ticks0=$(cpu_ticks)
t0=$(date +%s.%N)
"$build_dir/client/ubctl" upload "$work/big.bin" --bucket bench --key bench/multipart.bin \
  --multipart --part-size $((part_mib << 20)) --parallel "$parallel" > "$work/mp.out" 2>"$work/mp.err"
t1=$(date +%s.%N)
ticks1=$(cpu_ticks)
parts=$(((size_mib + part_mib - 1) / part_mib))
grep -q '"upload_id"' "$work/mp.out" || { echo "multipart upload failed:"; cat "$work/mp.err"; exit 1; }

# One presigned PUT of the same file with curl -T.
"$build_dir/client/ubctl" presign --bucket bench --key bench/single.bin \
  --content-type application/octet-stream > "$work/presign.out"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/presign.out")
mapfile -t hdrs < <(python3 -c 'import json,sys
for h in json.load(open(sys.argv[1]))["headers"]: print("-H"); print(h["name"] + ": " + h["value"])' "$work/presign.out")
t2=$(date +%s.%N)
status=$(curl -s -o "$work/put.out" -w '%{http_code}' -T "$work/big.bin" "${hdrs[@]}" -H 'Expect:' "$url")
t3=$(date +%s.%N)
[[ $status == 200 ]] || { echo "curl -T failed: HTTP $status"; cat "$work/put.out"; exit 1; }

python3 - "$t0" "$t1" "$t2" "$t3" "$size_mib" "$parts" "$((ticks1 - ticks0))" "$hz" "$parallel" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5]); size, parts, ticks, hz, par = map(int, sys.argv[5:10])
mp, put = t1 - t0, t3 - t2
print(f"ubctl upload --multipart ({parts} parts, {par} in flight): {mp:.2f} s, {size / mp:.0f} MiB/s")
print(f"curl -T (one presigned PUT):                        {put:.2f} s, {size / put:.0f} MiB/s")
print(f"broker CPU during the multipart upload: {ticks / hz * 1000:.0f} ms, "
      f"{ticks / hz * 1e6 / parts:.0f} us per part (each part signed once, plus create/complete/callback)")
PY
ticks2=$(cpu_ticks)
"$build_dir/bench/sign_parts_bench" --broker "127.0.0.1:$broker_port" --api-key bench-key \
  --bucket bench --key bench/10k-parts.bin --runs 5
ticks3=$(cpu_ticks)
# 5 rounds of 10,000 signed parts (plus one create and one abort).
echo "broker CPU while signing 50,000 parts: $(((ticks3 - ticks2) * 1000 / hz)) ms," \
  "$(((ticks3 - ticks2) * 1000000 / hz / 50000)) us per signed part"
