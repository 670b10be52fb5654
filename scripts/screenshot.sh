#!/usr/bin/env bash
# Retakes docs/dashboard.png from the demo (not test data): a scratch
# database, `netsentinel demo --scenario mixed` for about two minutes, then a
# headless Chromium screenshot once incidents and top talkers show.
# Needs what scripts/test.sh installs (chromium, node, tests/browser modules).
set -euo pipefail
cd "$(dirname "$0")/.."
db="netsentinel_screenshot"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
cargo build --release --quiet
port=5077
RUST_LOG=warn ./target/release/netsentinel demo --scenario mixed --rate 40 \
  --dashboard-port "$port" --database-url "postgres://postgres@127.0.0.1:5432/$db" &
demo=$!
trap 'kill -INT $demo 2>/dev/null || true; wait $demo || true' EXIT
sleep 90
node tests/browser/screenshot.mjs "http://127.0.0.1:$port/" docs/dashboard.png
