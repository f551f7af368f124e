#!/usr/bin/env bash
# Outside tools and servers the tests use: Debian packages (installed when missing),
# PostgreSQL and Redis on 127.0.0.1 (started when down). Fails loudly when it cannot.
set -euo pipefail

need=()
command -v oathtool >/dev/null || need+=(oathtool)
command -v zbarimg >/dev/null || need+=(zbar-tools)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v chromium >/dev/null || need+=(chromium fonts-liberation)
command -v openssl >/dev/null || need+=(openssl)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

PGHOST=127.0.0.1
if ! pg_isready -q -h $PGHOST -p 5432 2>/dev/null; then
  echo "Starting PostgreSQL..." >&2
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h $PGHOST -p 5432 && break; sleep 0.5; done
fi
if ! pg_isready -q -h $PGHOST -p 5432; then
  echo "ERROR: PostgreSQL is not answering on $PGHOST:5432 and could not be started." >&2
  exit 1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis..." >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/portal-redis.log >&2
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "ERROR: Redis is not answering on 127.0.0.1:6379 and could not be started." >&2
  exit 1
fi
