#!/usr/bin/env bash
# The test command (README.md): installs and starts what the tests need, then
# runs every test. libpcap-dev and PostgreSQL (scripts/setup.sh: installed and
# started if missing), Debian's Chromium and playwright-core for the
# dashboard's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

bash scripts/setup.sh

if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null; then
  echo "test.sh: installing Debian's chromium (and node if missing) for the browser test"
  as_root apt-get update -qq
  pkgs="chromium"
  command -v node >/dev/null || pkgs="$pkgs nodejs npm"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $pkgs >/dev/null
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
# Here a missing browser piece fails the browser test instead of skipping it.
export BROWSER_TEST_REQUIRED=1

# The patched tiny_http's own tests (vendor/tiny_http/PATCH.md), then ours.
cargo test --quiet --manifest-path vendor/tiny_http/Cargo.toml \
  --target-dir target/vendor-tiny-http --lib
cargo test "$@"
