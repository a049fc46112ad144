#!/usr/bin/env bash
# Builds the images the tests and examples use, locally and deterministically: no registry is
# needed. A busybox rootfs (from Debian's busybox-static) is imported as an image and tagged
# under every name we use, so no test ever pulls.
set -euo pipefail

TAGS=("clnrm-examples/busybox:1" "busybox:1.36")
# An image without a shell (FROM scratch plus a static busybox that answers only to a few
# non-shell applet names): no sh, kill, rm or mkdir, like distroless and scratch images.
NOSH_TAG="clnrm-examples/nosh:1"
NOSH_APPLETS="cat echo env false ls pwd sleep true"
# The busybox image with Debian's dash as /bin/sh (dynamically linked, its libc beside it), as in
# Debian and Ubuntu images: a shell whose `read` has no -d or -n, so the step runner sends output
# back with `cat` there, where busybox's shell sends it with builtins.
DASH_TAG="clnrm-examples/dash:1"
log() { printf '[build-images] %s\n' "$*" >&2; }

# Each image is built only when one of its tags is missing (or with --force): a rebuild makes a
# new image id, and a new id means new containers for every running clnrm.
force=0
[ "${1:-}" = "--force" ] && force=1
# The OpenTelemetry-instrumented Node service: its own script, rebuilt when its inputs change.
bash "$(dirname "$0")/build-otel-image.sh" "$@"
build_busybox=$force
for tag in "${TAGS[@]}"; do docker image inspect "$tag" >/dev/null 2>&1 || build_busybox=1; done
build_nosh=$force
docker image inspect "$NOSH_TAG" >/dev/null 2>&1 || build_nosh=1
build_dash=$force
docker image inspect "$DASH_TAG" >/dev/null 2>&1 || build_dash=1
if [ "$build_busybox" = 0 ] && [ "$build_nosh" = 0 ] && [ "$build_dash" = 0 ]; then
  log "images present (--force rebuilds)"
  exit 0
fi

busybox_bin=$(command -v busybox || true)
if [ -z "$busybox_bin" ] || ! file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked'; then
  for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ]; then busybox_bin=$candidate; break; fi
  done
fi
[ -n "$busybox_bin" ] || { log "busybox not found: apt-get install busybox-static"; exit 1; }

root=$(mktemp -d)
nosh=$(mktemp -d)
trap 'rm -rf "$root" "$root.tar" "$nosh" "$nosh.tar"' EXIT

if [ "$build_busybox" = 1 ] || [ "$build_dash" = 1 ]; then
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,www,proc,sys,dev,var/www}
  chmod 1777 "$root/tmp"
  cp "$busybox_bin" "$root/bin/busybox"
  # One link per applet, as the busybox image does.
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"

  # Fixed timestamps and owners make the tarball, and so the image id, repeatable.
  tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -C "$root" -cf "$root.tar" .
  if [ "$build_busybox" = 1 ]; then
    id=$(docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' "$root.tar")
    for tag in "${TAGS[@]}"; do
      docker tag "$id" "$tag"
      log "tagged $tag"
    done
  fi
  rm -f "$root.tar"
fi

if [ "$build_dash" = 1 ]; then
  dash_bin=$(command -v dash || true)
  [ -n "$dash_bin" ] || { log "dash not found: apt-get install dash"; exit 1; }
  rm "$root/bin/sh"
  cp "$dash_bin" "$root/bin/sh"
  # The shared libraries dash needs, at the paths its loader looks for them.
  for lib in $(ldd "$dash_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -C "$root" -cf "$root.tar" .
  id=$(docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' "$root.tar")
  rm -f "$root.tar"
  docker tag "$id" "$DASH_TAG"
  log "tagged $DASH_TAG"
fi

# The shell-less image: only the applets above, each a link to the static busybox.
[ "$build_nosh" = 1 ] || exit 0
mkdir -p "$nosh"/{bin,etc,tmp,proc,sys,dev}
chmod 1777 "$nosh/tmp"
cp "$busybox_bin" "$nosh/bin/busybox"
available=" $("$nosh/bin/busybox" --list | tr '\n' ' ') "
for applet in $NOSH_APPLETS; do
  case "$available" in *" $applet "*) ln -s busybox "$nosh/bin/$applet" ;; esac
done
printf 'root:x:0:0:root:/:/bin/false\n' > "$nosh/etc/passwd"
tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -C "$nosh" -cf "$nosh.tar" .
id=$(docker import --change 'CMD ["sleep", "2147483647"]' --change 'ENV PATH=/bin' "$nosh.tar")
docker tag "$id" "$NOSH_TAG"
log "tagged $NOSH_TAG"

