#!/usr/bin/env bash
# Makes a Docker engine available on Debian: installs docker.io and busybox-static when
# `docker info` fails and we are root, starts dockerd in the background, and waits for it.
# Safe to run again: it does nothing when the engine already answers.
set -euo pipefail

log() { printf '[setup-docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "engine already running"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "no engine answers and we are not root: start Docker yourself (or set DOCKER_HOST)"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v busybox >/dev/null 2>&1; then
  log "installing docker.io and busybox-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io busybox-static >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi

for _ in $(seq 1 120); do
  if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then
    log "engine ready"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not become ready in 60s; see /var/log/dockerd.log"
tail -20 /var/log/dockerd.log >&2 || true
exit 1
