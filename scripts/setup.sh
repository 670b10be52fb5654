#!/usr/bin/env bash
# The README's set-up: what building and running NetSentinel needs on Debian.
# libpcap-dev (live capture links libpcap), iproute2 (the live-capture tests
# make network namespaces), jq (the alert tests read the JSON-lines sink with
# it), then PostgreSQL (scripts/setup-db.sh). Safe to run
# again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=""
[ -e /usr/include/pcap/pcap.h ] || missing="$missing libpcap-dev"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v jq >/dev/null 2>&1 || missing="$missing jq"
if [ -n "$missing" ]; then
  echo "setup:$missing (Debian packages)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing >/dev/null
fi

bash scripts/setup-db.sh
