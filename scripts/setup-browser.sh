#!/usr/bin/env bash
# Installs Debian's Chromium for the real-browser tests when it is missing (playwright-core drives
# it; `npx playwright install` cannot download browsers on these machines).
set -euo pipefail
log() { printf '[setup-browser] %s\n' "$*" >&2; }
if [ -x /usr/bin/chromium ]; then
  log "chromium present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "chromium is missing and we are not root: install Debian's chromium package"
  exit 1
fi
log "installing chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
log "chromium installed"
