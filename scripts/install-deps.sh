#!/usr/bin/env bash
# Installs what building, running and testing upload-broker needs on Debian 12:
# Debian packages (only the missing ones) and the npm packages used by the
# interop tests (tests/interop/package.json). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git ca-certificates curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libboost-dev
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libgmime-3.0-dev liblzma-dev libexpat1-dev
  libpq-dev postgresql libnats-dev nats-server
  libgtest-dev libgmock-dev
  nodejs npm clang-14 libclang-rt-14-dev
)
if [[ ${UB_RUNTIME_ONLY:-0} == 1 ]]; then
  packages=(build-essential cmake pkg-config ca-certificates libgrpc++-dev protobuf-compiler-grpc
            libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev libcurl4-openssl-dev
            libsqlite3-dev libboost-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
            libgmime-3.0-dev liblzma-dev libexpat1-dev libpq-dev libnats-dev)
fi

missing=()
for p in "${packages[@]}"; do
  # node/npm may come from outside Debian (e.g. a preinstalled Node.js).
  if [[ $p == nodejs && -x "$(command -v node)" ]] || [[ $p == npm && -x "$(command -v npm)" ]]; then
    continue
  fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ${UB_RUNTIME_ONLY:-0} != 1 ]]; then
  if [[ ! -d tests/interop/node_modules ]] ||
     [[ tests/interop/package-lock.json -nt tests/interop/node_modules ]]; then
    echo "installing npm packages for the interop tests"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
    touch tests/interop/node_modules
  fi
fi
