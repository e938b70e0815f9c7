#!/usr/bin/env bash
# Starts a 3-master Redis Cluster on loopback for Guard's cluster tests and prints its seed URI.
#
#   .ci/redis-cluster.sh          start (idempotent: a running, healthy cluster is reused) and print the seed URI
#   .ci/redis-cluster.sh stop     shut the three servers down and remove their directory
#
# Ports: GUARD_REDIS_CLUSTER_PORT (default 7001) and the next two. Files live in GUARD_REDIS_CLUSTER_DIR (default
# ${TMPDIR:-/tmp}/guard-redis-cluster-<port>). Use it as: export GUARD_REDIS_CLUSTER_URI="$(.ci/redis-cluster.sh)"
set -euo pipefail

base="${GUARD_REDIS_CLUSTER_PORT:-7001}"
ports=("$base" "$((base + 1))" "$((base + 2))")
dir="${GUARD_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/guard-redis-cluster-$base}"

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

healthy() {
  for port in "${ports[@]}"; do
    cli "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

if [[ "${1:-start}" == "stop" ]]; then
  for port in "${ports[@]}"; do
    cli "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  exit 0
fi

command -v redis-server >/dev/null || { echo "redis-server is not on PATH" >&2; exit 1; }

if healthy; then
  echo "redis://127.0.0.1:$base"
  exit 0
fi

# Something half-started (a previous run that died, or servers without a cluster): start over cleanly.
for port in "${ports[@]}"; do
  cli "$port" shutdown nosave >/dev/null 2>&1 || true
done
rm -rf "$dir"
mkdir -p "$dir"

for port in "${ports[@]}"; do
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir/$port" \
    --logfile "$dir/$port/redis.log" --pidfile "$dir/$port/redis.pid" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
    --save '' --appendonly no >/dev/null
done

for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    cli "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  cli "$port" ping >/dev/null 2>&1 || { echo "redis-server on port $port did not start; see $dir/$port/redis.log" >&2; exit 1; }
done

redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 \
  || { cat "$dir/create.log" >&2; exit 1; }

for _ in $(seq 1 200); do
  healthy && break
  sleep 0.05
done
healthy || { echo "the cluster did not reach cluster_state:ok; see $dir" >&2; exit 1; }

echo "redis://127.0.0.1:$base"
