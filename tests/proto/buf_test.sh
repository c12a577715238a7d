#!/usr/bin/env bash
# The API's conventions, checked with buf against proto/buf.yaml:
#   buf_test.sh BUF PROTO_DIR lint      the lint rules pass
#   buf_test.sh BUF PROTO_DIR breaking  nothing breaks clients of the API
#                                       recorded in PROTO_DIR/api-lock.txtpb
#   buf_test.sh BUF PROTO_DIR renumber  that check fails for a renumbered
#                                       field (so it is not passing vacuously)
# Exits 77, which ctest reports as a skip, when buf is not installed.
set -euo pipefail
buf=$1 proto=$2 mode=$3
if [[ ! -x $buf ]]; then
  echo "SKIP: buf not found at $buf (run 'npm ci' in tests/interop)"
  exit 77
fi
lock=$proto/api-lock.txtpb

case $mode in
  lint)
    "$buf" lint "$proto"
    ;;
  breaking)
    "$buf" breaking "$proto" --against "$lock" || {
      echo "FAIL: this change to proto/ breaks existing clients; proto/buf.yaml says how to change the API"
      exit 1
    }
    ;;
  renumber)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cp -r "$proto/." "$work"
    file=$work/uploadbroker/v1/upload_broker.proto
    # CreatePostPolicyRequest.min_size, 4 -> 40, as a careless edit would.
    grep -q '^  int64 min_size = 4;$' "$file" || { echo "FAIL: test is stale: no 'int64 min_size = 4;' in $file"; exit 1; }
    sed -i 's/^  int64 min_size = 4;$/  int64 min_size = 40;/' "$file"
    if out=$("$buf" breaking "$work" --against "$lock" 2>&1); then
      echo "FAIL: buf breaking accepted a renumbered field"
      exit 1
    fi
    echo "$out"
    grep -q 'field "4" with name "min_size" on message "CreatePostPolicyRequest"' <<<"$out" ||
      { echo "FAIL: buf breaking did not name the renumbered field"; exit 1; }
    ;;
  *)
    echo "usage: $0 BUF PROTO_DIR lint|breaking|renumber" >&2
    exit 2
    ;;
esac
