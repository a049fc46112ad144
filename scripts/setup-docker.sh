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

# A live, non-zombie process named in a pid file.
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"
}

# A dockerd or containerd killed earlier (a session ending) leaves pid files behind, and a
# containerd whose dockerd is gone; either makes the next dockerd wait for a dead containerd.
clean_stale() {
  local cpid=/var/run/docker/containerd/containerd.pid
  if alive "$cpid"; then kill -9 "$(cat "$cpid")" 2>/dev/null || true; fi
  rm -f /var/run/docker.pid "$cpid"
}

start() {
  if alive /var/run/docker.pid; then
    log "dockerd is starting"
  else
    clean_stale
    log "starting dockerd"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      log "engine ready"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

start && exit 0
log "dockerd did not answer in 30s; cleaning up and trying once more"
pkill -9 -x dockerd 2>/dev/null || true
sleep 1
start && exit 0
log "dockerd did not become ready; see /var/log/dockerd.log"
tail -20 /var/log/dockerd.log >&2 || true
exit 1
