#!/usr/bin/env bash
# Installs Debian's docker-registry (the CNCF distribution registry, binary `docker-registry`)
# for the image-pull tests: they start their own registry on 127.0.0.1, push images they build,
# and pull them through clnrm (no public registry is reachable here). Only installs; the tests
# start and stop the registry themselves. Safe to run again.
set -euo pipefail

log() { printf '[setup-registry] %s\n' "$*" >&2; }

if command -v docker-registry >/dev/null 2>&1; then
  log "docker-registry present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "docker-registry is missing and we cannot apt-get install it: install Debian's docker-registry package (the image-pull tests need it)"
  exit 1
fi
log "installing docker-registry"
export DEBIAN_FRONTEND=noninteractive
# The package's service is not wanted (the tests start their own): keep its postinst from starting it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq docker-registry >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq docker-registry >/dev/null; }
command -v docker-registry >/dev/null
log "docker-registry installed"
