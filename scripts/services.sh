#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on their default local ports:
# leaves running servers alone, starts the machine's own servers when they
# are installed, and falls back to docker compose on a laptop with Docker.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() { # name, check function
  for _ in $(seq 1 60); do "$2" && return 0; sleep 0.5; done
  echo "error: $1 did not come up on its default port" >&2
  return 1
}

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL (pg_ctlcluster)"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo "starting PostgreSQL (docker compose)"
    docker compose up -d --wait postgres
  else
    echo "error: PostgreSQL is not running on 127.0.0.1:5432 and cannot be started here;" >&2
    echo "       install PostgreSQL 14+ or Docker (see README: Running PostgreSQL and Redis)" >&2
    exit 1
  fi
  wait_for PostgreSQL pg_up
fi

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis (redis-server)"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir "$( [ -w /var/lib/redis ] && echo /var/lib/redis || echo /tmp )" \
      --logfile "$( [ -w /var/log/redis ] && echo /var/log/redis/ci.log || echo /tmp/redis.log )"
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo "starting Redis (docker compose)"
    docker compose up -d --wait redis
  else
    echo "error: Redis is not running on 127.0.0.1:6379 and cannot be started here;" >&2
    echo "       install Redis 6.2+ or Docker (see README: Running PostgreSQL and Redis)" >&2
    exit 1
  fi
  wait_for Redis redis_up
fi
echo "PostgreSQL and Redis are up"
