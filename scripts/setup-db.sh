#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and lets the role
# `postgres` in without a password (local development and CI only).
# Installs Debian's postgresql package when no server is installed, starts the
# cluster when it is stopped. Safe to run again: it changes nothing that works.
set -euo pipefail

HOST=127.0.0.1
PORT=5432

ready() { pg_isready -h "$HOST" -p "$PORT" -q 2>/dev/null; }
can_login() { psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "setup-db: installing PostgreSQL (Debian package postgresql)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! ready; then
  echo "setup-db: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "setup-db: PostgreSQL does not answer on $HOST:$PORT" >&2; exit 1; }

if ! can_login; then
  # A fresh Debian cluster asks for a password over TCP: trust local loopback instead.
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  echo "setup-db: allowing password-less loopback logins in $hba"
  as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi
can_login || { echo "setup-db: cannot log in as postgres on $HOST:$PORT" >&2; exit 1; }
echo "setup-db: PostgreSQL $version ready on $HOST:$PORT"
