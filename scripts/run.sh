#!/usr/bin/env bash
# Installs what is missing, builds, and runs upload-broker on its embedded
# store with a development config (state in .dev/). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
UB_RUNTIME_ONLY=${UB_RUNTIME_ONLY:-0} scripts/install-deps.sh
scripts/build.sh
build_dir=$(realpath "${UB_BUILD_DIR:-build}")

mkdir -p .dev
cp deploy/dev/broker.yaml .dev/broker.yaml
# Development-only signing credential (matches the local OSS simulator).
[[ -f .dev/access_key_id ]] || echo "LTAI5tDevAccessKeyId" > .dev/access_key_id
[[ -f .dev/access_key_secret ]] || echo "dev-access-key-secret" > .dev/access_key_secret

cat <<MSG
upload-broker is starting (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080, ledger .dev/ledger.db).
Try it from another terminal:
  export UB_BROKER=localhost:50051 UB_API_KEY=dev-api-key
  $build_dir/client/ubctl policy --bucket devbucket --key uploads/hello.txt
  $build_dir/client/ubctl presign --bucket devbucket --key uploads/hello.txt --content_type text/plain
  $build_dir/client/ubctl list
  grpcurl -plaintext localhost:50051 list        # if grpcurl is installed
  tests/interop/node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge \\
      -H 'authorization: Bearer dev-api-key' --data '{"bucket":"devbucket","key":"uploads/a.txt"}' \\
      http://localhost:50051/uploadbroker.v1.UploadBroker/CreatePostPolicy
MSG
cd .dev
exec "$build_dir/service/main/upload-broker" --config broker.yaml
