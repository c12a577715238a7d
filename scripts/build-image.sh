#!/usr/bin/env bash
# Builds the container image from deploy/Dockerfile with podman and checks it:
# the broker in it runs as a non-root user and has every library it needs
# (it starts, reads its config, and reaches the point of opening its
# PostgreSQL ledger).
#
#   scripts/build-image.sh [TAG]        (default upload-broker:<project version>)
#
# No image registry is needed: the Debian 12 base image is made here with
# debootstrap from Debian's package mirror and imported into podman. podman
# builds with --isolation chroot, which works without a container runtime
# daemon or user namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^project(upload_broker VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
tag=${1:-upload-broker:${version:-0.1.0}}
base=localhost/upload-broker-base:bookworm
sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
need=()
for p in podman debootstrap; do command -v "$p" >/dev/null || need+=("$p"); done
if ((${#need[@]})); then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
fi
work=$(mktemp -d "${TMPDIR:-/var/tmp}/build-image.XXXXXX")
trap '"${sudo_cmd[@]}" rm -rf "$work"' EXIT

if ! podman image exists "$base"; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  echo "making the base image from ${mirror:=http://deb.debian.org/debian}"
  "${sudo_cmd[@]}" debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log"
  "${sudo_cmd[@]}" tar -C "$work/rootfs" -c . | podman import - "$base" >/dev/null
fi

podman build --isolation chroot --build-arg BASE="$base" -f deploy/Dockerfile -t "$tag" .

# The checks run the image's own files as the image's user, through chroot.
user=$(podman image inspect --format '{{.Config.User}}' "$tag")
[[ -n $user && $user != 0 && $user != root ]] || { echo "FAIL: the image runs as root" >&2; exit 1; }
ctr=$(podman create "$tag")
mnt=$(podman mount "$ctr")
cleanup_ctr() { podman umount "$ctr" >/dev/null; podman rm "$ctr" >/dev/null; }
mkdir -p "$mnt/tmp/check"
printf 'host=/nonexistent user=x dbname=x\n' > "$mnt/tmp/check/dsn"
echo LTAI5tImageCheck > "$mnt/tmp/check/ak"; echo image-check > "$mnt/tmp/check/sk"
cat > "$mnt/tmp/check/broker.yaml" <<YAML
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {postgres: {dsn_file: /tmp/check/dsn}}
credentials: {access_key_id_file: /tmp/check/ak, access_key_secret_file: /tmp/check/sk}
buckets: [{name: imagecheck, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: c, api_key_sha256: "$(printf 'k' | sha256sum | cut -d' ' -f1)", buckets: [imagecheck]}]
YAML
chmod -R a+r "$mnt/tmp/check"
out=$(chroot --userspec="$user:$user" "$mnt" /usr/local/bin/upload-broker --version 2>&1) || true
echo "image $tag, user $user: $out"
set +e
run=$(chroot --userspec="$user:$user" "$mnt" /usr/local/bin/upload-broker --config /tmp/check/broker.yaml 2>&1)
set -e
ids=$(chroot --userspec="$user:$user" "$mnt" /usr/bin/id 2>&1)
cleanup_ctr
echo "$ids"
if grep -q 'error while loading shared libraries' <<<"$run$out" || ! grep -q 'ledger.postgres: PostgreSQL unreachable' <<<"$run"; then
  echo "FAIL: the broker in the image did not start as expected:" >&2; echo "$run" >&2; exit 1
fi
[[ $ids == uid=$user* ]] || { echo "FAIL: not running as $user" >&2; exit 1; }
echo "ok: $tag runs as uid $user and has every library the broker needs"
