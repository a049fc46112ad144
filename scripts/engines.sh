#!/usr/bin/env bash
# The engine contract (test/engine-contract.test.ts) on engines other than the local Docker one,
# each reached ONLY through DOCKER_HOST, as a user would point clnrm at it:
#   (a) a second dockerd listening on tcp://127.0.0.1:<port> (every call pays a network hop), with
#       its own bridge, data root, exec root and pidfile, so the main engine is never touched;
#   (b) Podman's Docker-compatible API (Debian's podman, `podman system service` on a socket of its
#       own), the test image loaded into it from the main engine.
# Each engine's capability probe (`clnrm doctor`) is printed first: whatever a probe says an engine
# cannot do is skipped by the suite with that reason, never silently.
#
#   bash scripts/engines.sh [json-dir]     prints "engines: N passed, N failed" (summed over both)
#
# Needs root, dockerd and apt (podman and catatonit are installed when missing). Run by .ci/run
# after the main suite.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
IMAGE=clnrm-examples/busybox:1
# The official OpenTelemetry JS SDK's service (scripts/build-otel-image.sh), for the contract's
# OTLP/protobuf span test; loaded when the main engine has it, else that test says it skipped.
OTEL_IMAGE=clnrm-examples/otel-node:1
images() { echo "$IMAGE"; main_docker image inspect "$OTEL_IMAGE" >/dev/null 2>&1 && echo "$OTEL_IMAGE"; }
MAIN_DOCKER_HOST=${DOCKER_HOST:-}
main_docker() { if [ -n "$MAIN_DOCKER_HOST" ]; then DOCKER_HOST=$MAIN_DOCKER_HOST docker "$@"; else env -u DOCKER_HOST docker "$@"; fi; }
log() { printf '[engines] %s\n' "$*" >&2; }

# --- (a) a second dockerd over TCP ------------------------------------------------------------
NAME=clnrm-docker-tcp
PORT=${CLNRM_TCP_ENGINE_PORT:-23750}
TCP=tcp://127.0.0.1:$PORT
PIDFILE=/var/run/$NAME.pid
DATA=/var/lib/$NAME
EXEC=/var/run/$NAME
TCP_LOG=/tmp/$NAME.log
# Outside Docker's default pools and engine-restart.sh's 10.213.x (see there for why a named bridge).
BRIDGE=clnrm-br3
BRIDGE_CIDR=10.214.0.1/24

# --- (b) Podman --------------------------------------------------------------------------------
PODMAN_DIR=/tmp/clnrm-podman
PODMAN_SOCK=$PODMAN_DIR/podman.sock
PODMAN_PID=$PODMAN_DIR/service.pid

DOCKER0_ADDR=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | head -1)
keep_docker0() {
  [ -n "$DOCKER0_ADDR" ] || return 0
  ip link show docker0 >/dev/null 2>&1 && return 0
  log "docker0 (the main engine's bridge) vanished: restoring it with $DOCKER0_ADDR"
  ip link add docker0 type bridge && ip addr add "$DOCKER0_ADDR" dev docker0 && ip link set docker0 up
}

# The main engine sets FORWARD's policy to DROP, and bridged frames go through iptables
# (br_netfilter): a second dockerd without iptables would have its containers cut off from each
# other on their networks. One rule lets frames within a bridge pass (what Docker's default
# inter-container communication allows anyway), docker0 excepted; removed with the engine.
FORWARD_RULE=(FORWARD -m physdev --physdev-is-bridged ! -o docker0 -m comment --comment clnrm-engines-sh -j ACCEPT)

tcp_start() {
  iptables -C "${FORWARD_RULE[@]}" 2>/dev/null || iptables -I "${FORWARD_RULE[@]}" || return 1
  ip link show "$BRIDGE" >/dev/null 2>&1 || { ip link add "$BRIDGE" type bridge && ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" && ip link set "$BRIDGE" up; } || return 1
  mkdir -p "$DATA" "$EXEC"
  # Loopback only, no TLS: reachable from this machine alone. No iptables changes (the main engine's).
  nohup dockerd --data-root "$DATA" --exec-root "$EXEC" --pidfile "$PIDFILE" -H "$TCP" \
    --bridge "$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false >"$TCP_LOG" 2>&1 &
  for _ in $(seq 1 120); do
    if docker -H "$TCP" info >/dev/null 2>&1; then keep_docker0; return 0; fi
    sleep 0.25
  done
  keep_docker0
  log "the TCP engine did not answer in 30s; see $TCP_LOG"; tail -20 "$TCP_LOG" >&2
  return 1
}

tcp_stop() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || pid=
  if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 120); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
  fi
  local cpid
  cpid=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && [ -d "/proc/$cpid" ]; then kill -9 "$cpid" 2>/dev/null || true; fi
  grep -oE " ($DATA|(/var)?/run/$NAME)[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DATA" "$EXEC" "$PIDFILE"
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -C "${FORWARD_RULE[@]}" 2>/dev/null; do iptables -D "${FORWARD_RULE[@]}"; done
  keep_docker0
}

podman_start() {
  if ! command -v podman >/dev/null 2>&1 || [ ! -x /usr/libexec/podman/catatonit ]; then
    log "installing podman and catatonit (clnrm's containers run with an init: Podman needs catatonit for it)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman catatonit >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman catatonit >/dev/null; } || return 1
  fi
  mkdir -p "$PODMAN_DIR"
  # Rootful Podman gives every container nofile/nproc rlimits of its own; where the host's limits
  # leave no room for them (containers, sandboxes) runc refuses to start anything. Set them within.
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" "$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 ))" "$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 ))" >"$PODMAN_DIR/containers.conf"
  CONTAINERS_CONF=$PODMAN_DIR/containers.conf nohup podman system service --time=0 "unix://$PODMAN_SOCK" >"$PODMAN_DIR/service.log" 2>&1 &
  echo $! >"$PODMAN_PID"
  for _ in $(seq 1 120); do
    if DOCKER_HOST=unix://$PODMAN_SOCK docker version >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "podman system service did not answer in 30s; see $PODMAN_DIR/service.log"; tail -20 "$PODMAN_DIR/service.log" >&2
  return 1
}

# Netavark (Podman's network backend) adds chains of its own, all named NETAVARK*, to the filter
# and nat tables, with jumps to them from the built-in chains, and leaves them behind when the last
# container goes (its FORWARD, ISOLATION and HOSTPORT chains and their jumps, plus one empty
# NETAVARK-DN-* chain per run). Once no Podman container is left on this machine nothing uses
# them: the jumps to them go, then the chains. Docker's rules and everyone else's are untouched.
netavark_clean() {
  command -v podman >/dev/null 2>&1 || return 0
  if [ -n "$(podman ps -aq 2>/dev/null)" ]; then log "Podman containers remain: netavark's iptables chains stay"; return 0; fi
  local cmd table line chain chains removed=0
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for table in filter nat; do
      chains=$("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ { print $2 }')
      [ -n "$chains" ] || continue
      # Jumps into them from other chains (iptables -S quotes what needs quoting, hence eval).
      "$cmd" -t "$table" -S | grep -E -- '-j NETAVARK' | grep -vE '^-A NETAVARK' | while read -r line; do
        eval "\"\$cmd\" -t \"\$table\" -D ${line#-A }" || log "could not remove $cmd -t $table rule: $line"
      done
      for chain in $chains; do "$cmd" -t "$table" -F "$chain"; done
      for chain in $chains; do "$cmd" -t "$table" -X "$chain" && removed=$((removed + 1)); done
    done
  done
  [ "$removed" -eq 0 ] || log "removed $removed netavark chain(s) Podman left in iptables"
  if iptables-save 2>/dev/null | grep -q NETAVARK; then log "netavark rules are still in iptables:"; iptables-save | grep NETAVARK >&2; fi
}

podman_stop() {
  if [ -S "$PODMAN_SOCK" ]; then
    # Only what clnrm's contract run created (its label), then the image it loaded.
    podman ps -aq --filter label=clnrm | xargs -r podman rm -f >/dev/null 2>&1
    podman network ls -q --filter label=clnrm | xargs -r podman network rm -f >/dev/null 2>&1
    podman rmi -f "$IMAGE" "$OTEL_IMAGE" >/dev/null 2>&1
  fi
  local pid
  pid=$(cat "$PODMAN_PID" 2>/dev/null) || pid=
  if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 40); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
  fi
  rm -rf "$PODMAN_DIR"
  netavark_clean
}

cleanup() {
  tcp_stop
  podman_stop
}

# Runs the contract with only DOCKER_HOST pointing at the engine; prints and records its counts.
contract() {
  local label=$1 host=$2 json="$OUT/$1.json" started leftovers status
  log "$label: clnrm doctor (the capability probe) with DOCKER_HOST=$host"
  DOCKER_HOST=$host node dist/cli/bin.mjs doctor --no-color >&2 || true
  started=$(date +%s)
  DOCKER_HOST=$host npx vitest run test/engine-contract.test.ts --reporter=default --reporter=json --outputFile="$json" >&2
  status=$?
  leftovers=$(DOCKER_HOST=$host docker ps -aq --filter label=clnrm 2>/dev/null | wc -l)
  if [ "$leftovers" -gt 0 ]; then
    log "$label: clnrm left $leftovers container(s) behind"
    DOCKER_HOST=$host docker ps -a --filter label=clnrm >&2
  fi
  LABEL=$label LEFTOVERS=$leftovers SECONDS_TAKEN=$(( $(date +%s) - started )) node -e '
    const fs = require("node:fs")
    const file = process.argv[1]
    let passed = 0, failed = 1, skipped = []
    if (fs.existsSync(file)) {
      const r = JSON.parse(fs.readFileSync(file, "utf8"))
      passed = r.numPassedTests
      failed = r.numFailedTests + (r.testResults || []).filter(f => f.status === "failed" && f.assertionResults.length === 0).length
      skipped = (r.testResults || []).flatMap(f => f.assertionResults).filter(a => a.status === "skipped" || a.status === "pending").map(a => a.title)
    }
    if (Number(process.env.LEFTOVERS) > 0) failed++
    for (const title of skipped) console.error(`[engines] ${process.env.LABEL}: skipped "${title}" (the [contract] line above says why)`)
    console.log(`engines ${process.env.LABEL}: ${passed} passed, ${failed} failed, ${skipped.length} skipped in ${process.env.SECONDS_TAKEN}s`)
  ' "$json" | tee -a "$OUT/counts"
  return $status
}

main() {
  if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1; then
    log "needs root and dockerd (a second engine) and apt (podman)"
    echo "engines: 0 passed, 1 failed"
    return 1
  fi
  : >"$OUT/counts"
  trap cleanup EXIT
  local status=0 started
  started=$(date +%s)
  if tcp_start && main_docker save $(images) | docker -H "$TCP" load >/dev/null; then
    contract tcp "$TCP" || status=1
  else
    log "could not start the TCP engine or load $IMAGE into it"
    echo "engines tcp: 0 passed, 1 failed" | tee -a "$OUT/counts"; status=1
  fi
  tcp_stop
  if podman_start && main_docker save $(images) | podman load >/dev/null; then
    contract podman "unix://$PODMAN_SOCK" || status=1
  else
    log "could not start Podman's service or load $IMAGE into it"
    echo "engines podman: 0 passed, 1 failed" | tee -a "$OUT/counts"; status=1
  fi
  podman_stop
  trap - EXIT
  # The sum, in the line .ci/run reads.
  awk '{ p += $3; f += $5 } END { printf "engines: %d passed, %d failed\n", p, f }' "$OUT/counts"
  log "took $(( $(date +%s) - started ))s"
  return $status
}

main
