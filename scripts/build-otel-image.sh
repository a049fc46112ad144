#!/usr/bin/env bash
# Builds `clnrm-examples/otel-node:1`: a small HTTP service (test/fixtures/otel-app/app.cjs)
# instrumented with the official OpenTelemetry JS SDK and its OTLP/protobuf exporter. No
# registry is needed: the rootfs is assembled from the host's `node` binary and the shared
# libraries it links, a static busybox (for `sh` and `wget`), the app, and only the packages of
# its dependency closure (scripts/otel-app-deps.mjs), then imported as an image.
#
# Built only when its inputs change: their hash is the image's `clnrm.otel-node.hash` label. A
# rebuild gives a new image id, and a new id means new containers for every running clnrm.
set -euo pipefail

TAG="clnrm-examples/otel-node:1"
LABEL="clnrm.otel-node.hash"
repo=$(cd "$(dirname "$0")/.." && pwd)
app="$repo/test/fixtures/otel-app/app.cjs"
log() { printf '[build-otel-image] %s\n' "$*" >&2; }

node_bin=$(readlink -f "$(command -v node)")
busybox_bin=""
for candidate in "$(command -v busybox || true)" /bin/busybox /usr/bin/busybox; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && file -L "$candidate" 2>/dev/null | grep -q 'statically linked'; then
    busybox_bin=$candidate
    break
  fi
done
[ -n "$busybox_bin" ] || { log "a static busybox is needed: apt-get install busybox-static"; exit 1; }

deps=$(node "$repo/scripts/otel-app-deps.mjs") || {
  log "the OpenTelemetry packages of package-lock.json are missing from node_modules: run npm install"
  exit 1
}
hash=$(
  {
    cat "$app" "$0" "$repo/scripts/otel-app-deps.mjs"
    printf '%s\n' "$deps"
    printf 'node %s %s\n' "$("$node_bin" --version)" "$(stat -c %s "$node_bin")"
    printf 'busybox %s\n' "$(stat -c %s "$busybox_bin")"
  } | sha256sum | cut -c1-16
)

if [ "${1:-}" != "--force" ]; then
  current=$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$TAG" 2>/dev/null || true)
  if [ "$current" = "$hash" ]; then
    log "$TAG up to date ($hash)"
    exit 0
  fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root" "$root.tar"' EXIT
mkdir -p "$root"/{bin,usr/bin,etc,tmp,root,proc,sys,dev,app/node_modules}
chmod 1777 "$root/tmp"

cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# node and the libraries it links, each at the path the loader looks for it.
cp "$node_bin" "$root/usr/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cp "$app" "$root/app/app.cjs"
# Only the CommonJS builds are loaded (the app `require`s): leave out the ESM builds, types and
# source maps, which are most of the bytes.
while IFS=$'\t' read -r _ dir; do
  dest="$root/app/${dir}"
  mkdir -p "$dest"
  tar -C "$repo/$dir" --exclude=./node_modules --exclude='./build/esm' --exclude='./build/esnext' \
    --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' -cf - . | tar -C "$dest" -xf -
done <<< "$deps"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"

# Fixed timestamps and owners make the tarball, and so the image id, repeatable.
tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -C "$root" -cf "$root.tar" .
id=$(docker import \
  --change 'ENV PATH=/usr/bin:/bin' \
  --change 'ENV PORT=8080' \
  --change 'WORKDIR /app' \
  --change 'EXPOSE 8080' \
  --change "LABEL $LABEL=$hash" \
  --change 'CMD ["node", "/app/app.cjs"]' \
  "$root.tar")
docker tag "$id" "$TAG"
log "tagged $TAG ($hash, $(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
