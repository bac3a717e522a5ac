#!/usr/bin/env bash
# with-services.sh COMMAND...: run COMMAND (make test's go test) with a
# Postgres and a Redis to test against, and exit with its status.
#
# Each server is, in this order: the one TEST_DATABASE_URL / TEST_REDIS_URL
# names; the local one (Postgres on 127.0.0.1:5432, Redis on 127.0.0.1:6379)
# when it answers, as the tests default to it; else a throwaway one of this
# script's own, in a temporary directory, on a free port of 127.0.0.1,
# whose URL it exports as TEST_DATABASE_URL / TEST_REDIS_URL. A throwaway
# server is stopped and its directory removed when COMMAND ends, whatever
# its outcome (or when this script is interrupted).
#
#   TEST_SERVICES=own   throwaway servers even when the others answer or
#                       TEST_*_URL are set: a run on nobody else's servers
#
# Needs Postgres's server binaries (initdb, pg_ctl under
# /usr/lib/postgresql/*/bin) and redis-server: .ci/deps.sh test installs them.
set -euo pipefail

say() { echo "with-services: $*" >&2; }
die() { say "$*"; exit 1; }

(($#)) || die "usage: with-services.sh COMMAND..."
mode=${TEST_SERVICES:-auto}
case $mode in
  auto | own) ;;
  *) die "TEST_SERVICES=$mode: want auto or own" ;;
esac

tmp="" pg_dir="" redis_pid=""
as=() # how to run Postgres's programs: initdb refuses to run as root

cleanup() {
  local status=$?
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_dir" ] && [ -f "$pg_dir/postmaster.pid" ]; then
    # immediate: the data is thrown away, so no shutdown checkpoint.
    "${as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir" -m immediate -w stop >/dev/null 2>&1 ||
      say "Postgres in $pg_dir did not stop"
  fi
  [ -z "$tmp" ] || rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_tmp() {
  [ -z "$tmp" ] || return 0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/bbs-test-services.XXXXXX")
  # The postgres user runs the server inside it when we are root.
  chmod 0755 "$tmp"
}

# port_taken PORT: something accepts connections on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nothing listens on, below Linux's ephemeral range
# (32768 up), where the tests' own listeners get theirs from the kernel.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    port_taken "$p" || { echo "$p"; return 0; }
  done
  die "no free port found in 20000-31999"
}

start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$pg_bin/initdb" ] || die "no Postgres to test against and no initdb to make one: apt-get install -y postgresql (or set TEST_DATABASE_URL)"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, and there is no postgres user to run a throwaway Postgres as (apt-get install -y postgresql makes it)"
    as=(runuser -u postgres --)
  fi
  make_tmp
  pg_dir=$tmp/pg
  mkdir -m 0700 "$pg_dir"
  [ ${#as[@]} -eq 0 ] || chown postgres "$pg_dir"
  # UTF-8 whatever the caller's locale: the board stores any text.
  "${as[@]}" "$pg_bin/initdb" -D "$pg_dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
  local port
  for _ in 1 2 3; do
    port=$(free_port)
    # -k: the socket in the data directory, not /var/run/postgresql, which
    # may not exist or be the machine's server's.
    if "${as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w -t 60 \
      -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null; then
      export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
      say "Postgres: a throwaway one on 127.0.0.1:$port (in $tmp)"
      return 0
    fi
    # Most likely the port was taken between looking and listening.
    tail -n 5 "$pg_dir/server.log" >&2 || true
  done
  die "the throwaway Postgres did not start (log above)"
}

start_redis() {
  command -v redis-server >/dev/null || die "no Redis to test against and no redis-server to start one: apt-get install -y redis-server (or set TEST_REDIS_URL)"
  make_tmp
  mkdir -p "$tmp/redis"
  local port
  for _ in 1 2 3; do
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$tmp/redis" --logfile "$tmp/redis/redis.log" &
    redis_pid=$!
    for _ in $(seq 1 100); do
      if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
        export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
        say "Redis: a throwaway one on 127.0.0.1:$port (in $tmp)"
        return 0
      fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    tail -n 5 "$tmp/redis/redis.log" >&2 || true
  done
  die "the throwaway Redis did not start (log above)"
}

if [ "$mode" = own ] || { [ -z "${TEST_DATABASE_URL:-}" ] && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }; then
  start_postgres
fi
if [ "$mode" = own ] || { [ -z "${TEST_REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }; then
  start_redis
fi

# Not exec: the trap stops the servers once COMMAND is done.
"$@"
