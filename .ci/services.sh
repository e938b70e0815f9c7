#!/usr/bin/env bash
# Starts what Guard's server tests need, if it is not running yet: PostgreSQL, MariaDB and Redis on loopback,
# each with a "test" database. Idempotent; safe to run on a developer's machine too.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 0.5
  done
  log "$name did not come up"; return 1
}

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = 'test'" postgres | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "create database test" postgres
fi

# MariaDB
if ! mariadb -uroot -h127.0.0.1 -e 'select 1' >/dev/null 2>&1; then
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
wait_for MariaDB mariadb -uroot -h127.0.0.1 -e 'select 1'
mariadb -uroot -h127.0.0.1 -e 'create database if not exists test'

# Redis (standalone)
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping

# Redis Cluster (3 masters on loopback), when the script for it exists.
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/redis-cluster.sh" ]; then
  "$here/redis-cluster.sh"
fi
