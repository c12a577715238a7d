#!/usr/bin/env bash
# ubctl verify-callback on the signed sample from OSS's Callback API
# reference: valid as captured, and each tampering names the failing check.
set -u
ubctl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
auth='kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=='
keyurl='aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=='
printf 'bucket=yonghu-test' > "$work/body"
failures=0
check() {  # check NAME EXPECTED_RC EXPECTED_TEXT -- ARGS...
  local name=$1 want_rc=$2 want_text=$3; shift 4
  local out rc
  out=$("$ubctl" verify-callback "$@" 2>&1); rc=$?
  if [[ $rc != "$want_rc" || $out != *"$want_text"* ]]; then
    echo "FAIL $name: rc=$rc output: $out"; failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check valid-sample 0 valid -- --path_and_query '/index.php?id=1&index=2' --authorization "$auth" \
  --pub_key_url "$keyurl" --body_file "$work/body"
check plain-key-url 0 valid -- --path_and_query '/index.php?id=1&index=2' --authorization "$auth" \
  --pub_key_url 'https://gosspublic.alicdn.com/callback_pub_key_v1.pem' --body_file "$work/body"
printf 'bucket=yonghu-test\n' > "$work/body2"
check trailing-newline 1 'string verified: "/index.php?id=1&index=2\nbucket=yonghu-test\n"' -- \
  --path_and_query '/index.php?id=1&index=2' --authorization "$auth" --pub_key_url "$keyurl" --body_file "$work/body2"
check changed-query 1 'signature' -- --path_and_query '/index.php?id=2&index=2' --authorization "$auth" \
  --pub_key_url "$keyurl" --body_file "$work/body"
check evil-key-url 1 'x-oss-pub-key-url not allowed: https://gosspublic.alicdn.com.evil.example/k.pem' -- \
  --path_and_query '/index.php?id=1&index=2' --authorization "$auth" \
  --pub_key_url 'https://gosspublic.alicdn.com.evil.example/k.pem' --body_file "$work/body"
printf 'POST /index.php?id=1&index=2 HTTP/1.1\r\nHost: example.com\r\nAuthorization: %s\r\nx-oss-pub-key-url: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 18\r\n\r\nbucket=yonghu-test' \
  "$auth" "$keyurl" > "$work/request"
check request-file 0 valid -- --request_file "$work/request"
check rewritten-path 0 valid -- --request_file "$work/request" --callback_path /index.php
check usage 2 'must start with' -- --path_and_query 'index.php'
echo "$((8 - failures)) passed, $failures failed"
[[ $failures == 0 ]]
