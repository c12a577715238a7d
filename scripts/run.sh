#!/usr/bin/env bash
# Installs what is missing, builds, and runs oss-sim (a local OSS on
# 127.0.0.1:9000, objects in .dev/sim, callback key .dev/sim_key.pem) and
# upload-broker on its embedded store, configured for each other (state in
# .dev/). Ctrl-C stops both.
#
# --cluster: a throwaway PostgreSQL (.dev/pg, Unix socket only) and three
# brokers sharing it (gRPC 50051-50053, HTTP 8080-8082; oss-sim calls back
# the first), to watch uploads carry on while one broker is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=0
[[ ${1:-} == --cluster ]] && cluster=1
UB_RUNTIME_ONLY=${UB_RUNTIME_ONLY:-0} scripts/install-deps.sh
scripts/build.sh
build_dir=$(realpath "${UB_BUILD_DIR:-build}")

mkdir -p .dev
cp deploy/dev/broker.yaml .dev/broker.yaml
# Development-only signing credential (matches the local OSS simulator).
[[ -f .dev/access_key_id ]] || echo "LTAI5tDevAccessKeyId" > .dev/access_key_id
[[ -f .dev/access_key_secret ]] || echo "dev-access-key-secret" > .dev/access_key_secret

# oss-sim first: the broker fetches the simulator's public key once at
# startup and trusts it explicitly (callback.trusted_key_url).
rm -f .dev/sim.ready
"$build_dir/service/main/oss-sim" --listen 127.0.0.1:9000 --data-dir .dev/sim \
    --key-file .dev/sim_key.pem --access-key-id-file .dev/access_key_id \
    --access-key-secret-file .dev/access_key_secret --ready-file .dev/sim.ready &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -f .dev/sim.ready ]] && break; sleep 0.1; done
[[ -f .dev/sim.ready ]] || { echo "oss-sim did not start" >&2; exit 1; }
sed -i 's|^  url: "http://127.0.0.1:8080/oss/callback"$|&\n  trusted_key_url: "http://127.0.0.1:9000/sim_pub_key.pem"|' .dev/broker.yaml

echo hello > .dev/hello.txt
cd .dev
if ((cluster)); then
  exec "$OLDPWD/scripts/run_cluster.sh" "$build_dir" "$sim_pid"
fi
# A local webhook receiver: the broker POSTs every finished upload to it as a
# signed CloudEvent (deliveries.targets; docs/deliveries-webhooks.md).
[[ -f whsec ]] || echo "whsec_$(head -c 32 /dev/urandom | base64)" > whsec
cat >> broker.yaml <<YAML
deliveries:
  targets:
    - name: dev-receiver
      caller: dev
      webhook: {url: "http://127.0.0.1:8099/hooks/uploads", secret_files: [whsec], allow_private_addresses: true}
YAML
node "$OLDPWD/scripts/dev_webhook_receiver.js" 8099 whsec &
receiver_pid=$!
trap 'kill $receiver_pid $sim_pid 2>/dev/null || true' EXIT
cat <<MSG
oss-sim is serving on 127.0.0.1:9000 (bucket devbucket, objects in .dev/sim).
upload-broker is starting (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080, ledger .dev/ledger.db).
A webhook receiver on 127.0.0.1:8099 prints each upload the broker delivers to it (signature checked).
Try it from another terminal:
  export UB_BROKER=localhost:50051 UB_API_KEY=dev-api-key
  $build_dir/client/ubctl watch &                # prints each finished upload
  $build_dir/client/ubctl upload .dev/hello.txt --bucket devbucket --key uploads/hello.txt --content-type text/plain
  $build_dir/client/ubctl upload .dev/hello.txt --bucket devbucket --key uploads/put.txt --presigned
  $build_dir/client/ubctl policy --bucket devbucket --key uploads/hello.txt
  $build_dir/client/ubctl list
  grpcurl -plaintext localhost:50051 list        # if grpcurl is installed
  tests/interop/node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge \\
      -H 'authorization: Bearer dev-api-key' --data '{"bucket":"devbucket","key":"uploads/a.txt"}' \\
      http://localhost:50051/uploadbroker.v1.UploadBroker/CreatePostPolicy
MSG
"$build_dir/service/main/upload-broker" --config broker.yaml &
broker_pid=$!
trap 'kill $broker_pid $sim_pid $receiver_pid 2>/dev/null || true' EXIT INT TERM
wait $broker_pid
