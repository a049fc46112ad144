#!/usr/bin/env bash
# Fault test: the Docker engine going away and coming back under a running `clnrm dev`.
#
# It never touches the main engine (others use it): it starts a SECOND dockerd with its own socket,
# data root, exec root (so its own containerd) and its own bridge interface, loads the test image
# into it, and runs test/*.fault.ts with DOCKER_HOST pointing at it. The tests stop and start that
# daemon mid-session through this script's `stop` and `start`. Everything is removed afterwards.
#
#   bash scripts/engine-restart.sh [run [vitest-json]]   the whole check; prints "engine restart: N passed, N failed"
#   bash scripts/engine-restart.sh start | stop          used by the tests (only ever this second daemon)
#
# Needs root and dockerd (scripts/setup-docker.sh installs it); the image comes from the main engine.
set -uo pipefail
cd "$(dirname "$0")/.."

NAME=clnrm-docker2
SOCK=/var/run/$NAME.sock
PIDFILE=/var/run/$NAME.pid
DATA=/var/lib/$NAME
EXEC=/var/run/$NAME
LOG=/tmp/$NAME.log
# A bridge of its own: with `--bridge none` dockerd deletes the host's docker0, which the main
# engine's containers use; a named bridge that exists is used as is. 10.213.x is outside Docker's
# default address pools, so it cannot collide with the main engine's networks. No
# `--default-address-pool` either: with it, a restarting dockerd deletes docker0 too (moby's
# "clear stale bridge network"). docker0 is still checked around every start and stop.
BRIDGE=clnrm-br2
BRIDGE_CIDR=10.213.0.1/24
IMAGE=clnrm-examples/busybox:1
MAIN_DOCKER_HOST=${DOCKER_HOST:-}
export DOCKER_HOST=unix://$SOCK

log() { printf '[engine-restart] %s\n' "$*" >&2; }
d2() { docker -H "unix://$SOCK" "$@"; }
main_docker() { if [ -n "$MAIN_DOCKER_HOST" ]; then DOCKER_HOST=$MAIN_DOCKER_HOST docker "$@"; else env -u DOCKER_HOST docker "$@"; fi; }

alive() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"
}

# `ip` makes the bridge and guards docker0; minimal Debian images lack it.
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing iproute2 (for the second engine's bridge)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }
fi

# docker0 is the main engine's: note its address before we start or stop our daemon, and put it
# back (loudly) if it vanished, so a dockerd quirk cannot cut the main engine's containers off.
DOCKER0_ADDR=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | head -1)
keep_docker0() {
  [ -n "$DOCKER0_ADDR" ] || return 0
  ip link show docker0 >/dev/null 2>&1 && return 0
  log "docker0 (the main engine's bridge) vanished: restoring it with $DOCKER0_ADDR"
  ip link add docker0 type bridge && ip addr add "$DOCKER0_ADDR" dev docker0 && ip link set docker0 up
}

start() {
  if alive; then log "second engine already running"; return 0; fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge && ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" && ip link set "$BRIDGE" up || return 1
  fi
  mkdir -p "$DATA" "$EXEC"
  # No iptables, masquerading or forwarding changes: the host's rules belong to the main engine.
  nohup dockerd --data-root "$DATA" --exec-root "$EXEC" --pidfile "$PIDFILE" -H "unix://$SOCK" \
    --bridge "$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false >>"$LOG" 2>&1 &
  for _ in $(seq 1 120); do
    if d2 info >/dev/null 2>&1; then keep_docker0; return 0; fi
    sleep 0.25
  done
  keep_docker0
  log "the second engine did not answer in 30s; see $LOG"
  tail -20 "$LOG" >&2
  return 1
}

stop() {
  alive || return 0
  local pid
  pid=$(cat "$PIDFILE")
  # SIGTERM: dockerd stops its containers and its containerd, as a `systemctl stop docker` would.
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 120); do
    [ -d "/proc/$pid" ] || break
    sleep 0.25
  done
  if [ -d "/proc/$pid" ]; then
    log "dockerd $pid did not stop in 30s; killing it"
    kill -9 "$pid" 2>/dev/null
  fi
  # Its containerd normally goes with it; a leftover one would hold the next start.
  local cpid
  cpid=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && [ -d "/proc/$cpid" ]; then kill -9 "$cpid" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  keep_docker0
  return 0
}

cleanup() {
  stop
  # Overlay mounts normally go with the daemon; unmount any it left before removing its files.
  grep -oE " ($DATA|(/var)?/run/$NAME)[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DATA" "$EXEC" "$SOCK"
  ip link del "$BRIDGE" 2>/dev/null || true
}

run() {
  local json=${1:-$(mktemp -d)/engine-restart.json}
  if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1; then
    log "needs root and dockerd to start a second engine"
    echo "engine restart: 0 passed, 1 failed"
    return 1
  fi
  trap cleanup EXIT
  : >"$LOG"
  if ! start; then
    echo "engine restart: 0 passed, 1 failed"
    return 1
  fi
  log "second engine on $SOCK; loading $IMAGE"
  if ! main_docker save "$IMAGE" | d2 load >/dev/null; then
    log "could not copy $IMAGE from the main engine (run scripts/build-images.sh)"
    echo "engine restart: 0 passed, 1 failed"
    return 1
  fi
  npx vitest run --config test/fault.config.ts --reporter=default --reporter=json --outputFile="$json"
  local status=$?
  local leftovers=0
  if alive; then leftovers=$(d2 ps -aq --filter label=clnrm | wc -l); fi
  if [ "$leftovers" -gt 0 ]; then
    log "clnrm left $leftovers container(s) behind on the second engine:"
    d2 ps -a --filter label=clnrm >&2
    status=1
  fi
  cleanup
  trap - EXIT
  LEFTOVERS="$leftovers" node -e '
    const fs = require("node:fs")
    const file = process.argv[1]
    if (!fs.existsSync(file)) { console.log("engine restart: 0 passed, 1 failed"); process.exit(0) }
    const r = JSON.parse(fs.readFileSync(file, "utf8"))
    const failed = r.numFailedTests + (r.testResults || []).filter(f => f.status === "failed" && f.assertionResults.length === 0).length
      + (Number(process.env.LEFTOVERS) > 0 ? 1 : 0)
    console.log(`engine restart: ${r.numPassedTests} passed, ${failed} failed`)
  ' "$json"
  return $status
}

case "${1:-run}" in
  start) start ;;
  stop) stop ;;
  run) shift || true; run "$@" ;;
  *) echo "usage: $0 [run [vitest-json] | start | stop]" >&2; exit 2 ;;
esac
