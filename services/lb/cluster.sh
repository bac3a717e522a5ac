#!/usr/bin/env bash
# The local stand-in for `docker compose up` on a machine without Docker:
# Postgres, Redis, `bbs migrate`, three bbs replicas and Debian's nginx
# running the same configuration as compose (services/lb/nginx.conf.tmpl).
#
#   cluster.sh up      start what is not running yet (safe to repeat)
#   cluster.sh down    stop everything `up` started
#   cluster.sh status  show what runs
#
# Settings (environment):
#   CLUSTER_DIR   state: pids, logs, nginx prefix, binary (default .cluster/)
#   LB_PORT       nginx listens on 127.0.0.1:LB_PORT (default 8080)
#   LB_TLS_PORT   and with HTTPS and HTTP/2 on 127.0.0.1:LB_TLS_PORT (default
#                 8443), with a certificate tls-cert.sh makes once into
#                 CLUSTER_DIR/nginx/tls (trust its ca.pem)
#   BBS_PORTS     the replicas' ports (default "18081 18082 18083")
#   BBS_INTERNAL_PORTS  their internal listeners' ports, on 127.0.0.1:
#                 /metrics, /readyz with details (default "19081 19082 19083")
#   BBS_BIN       a bbs binary to run (default: built into CLUSTER_DIR)
#   DATABASE_URL  default: database bbs_cluster on the local Postgres
#                 (127.0.0.1:5432), or a throwaway server in CLUSTER_DIR
#   REDIS_URL     default: the local Redis (127.0.0.1:6379), or a throwaway
#                 one in CLUSTER_DIR
#   REDIS_PREFIX  default {bbs-cluster}, apart from other users of a Redis
# Any other variable bbs reads (SSE_HEARTBEAT, WRITE_RATE, ...) is passed on.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state=${CLUSTER_DIR:-$root/.cluster}
lb_port=${LB_PORT:-8080}
lb_tls_port=${LB_TLS_PORT:-8443}
read -r -a ports <<<"${BBS_PORTS:-18081 18082 18083}"
read -r -a internal_ports <<<"${BBS_INTERNAL_PORTS:-19081 19082 19083}"
[ ${#internal_ports[@]} -eq ${#ports[@]} ] || { echo "cluster: BBS_INTERNAL_PORTS needs one port per BBS_PORTS entry" >&2; exit 1; }
pg_port=${CLUSTER_PG_PORT:-15432}
redis_port=${CLUSTER_REDIS_PORT:-16379}

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "cluster: $*"; }
need() { command -v "$1" >/dev/null || die "$1 not found; install it: apt-get install -y $2"; }
# alive PIDFILE: the process runs. An exited process nobody has reaped yet
# (a zombie: its parent, this script, is gone) does not count.
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null || return 1
  [ ! -r "/proc/$pid/stat" ] || [ "$(sed 's/.*) //; s/ .*//' "/proc/$pid/stat")" != Z ]
}

# wait_until SECONDS WHAT COMMAND...: poll every 0.2s.
wait_until() {
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what: not up after ${secs}s"
}

# stop_pid PIDFILE NAME SIGNAL SECONDS: signal our own process, wait for it.
stop_pid() {
  local file=$1 name=$2 sig=$3 secs=$4 pid
  alive "$file" || { rm -f "$file"; return 0; }
  pid=$(cat "$file")
  say "stopping $name (pid $pid)"
  kill "-$sig" "$pid"
  for _ in $(seq 1 $((secs * 10))); do alive "$file" || { rm -f "$file"; return 0; }; sleep 0.1; done
  die "$name (pid $pid) did not stop within ${secs}s"
}

# Postgres: DATABASE_URL, else the local server, else a throwaway one.
postgres_url() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "$DATABASE_URL"; return; fi
  need pg_isready postgresql-client
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'bbs_cluster'" | grep -q 1; then
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE bbs_cluster" >&2
    fi
    echo "postgres://postgres@127.0.0.1:5432/bbs_cluster?sslmode=disable"
    return
  fi
  start_throwaway_postgres >&2
  echo "postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
}

start_throwaway_postgres() {
  local bin as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$bin/initdb" ] || die "no Postgres on 127.0.0.1:5432 and no initdb; install it: apt-get install -y postgresql"
  # initdb refuses to run as root: run the server as the postgres user.
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  if [ ! -f "$state/pg/PG_VERSION" ]; then
    say "creating a throwaway Postgres in $state/pg"
    mkdir -p "$state/pg"
    [ ${#as[@]} -eq 0 ] || chown postgres "$state/pg"
    "${as[@]}" "$bin/initdb" -D "$state/pg" -U postgres --auth=trust >/dev/null
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$pg_port"; then
    "${as[@]}" "$bin/pg_ctl" -D "$state/pg" -l "$state/pg/server.log" -w \
      -o "-p $pg_port -k $state/pg -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  touch "$state/pg.ours"
}

# Redis: REDIS_URL, else the local server, else a throwaway one.
redis_url() {
  if [ -n "${REDIS_URL:-}" ]; then echo "$REDIS_URL"; return; fi
  need redis-server redis-server
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then echo "redis://127.0.0.1:6379/0"; return; fi
  if ! alive "$state/redis.pid"; then
    say "starting a throwaway Redis on 127.0.0.1:$redis_port" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --dir "$state" --pidfile "$state/redis.pid" --logfile "$state/redis.log"
    wait_until 10 Redis redis-cli -h 127.0.0.1 -p "$redis_port" ping
  fi
  echo "redis://127.0.0.1:$redis_port/0"
}

ready() { curl -fs -o /dev/null "http://$1/readyz"; }

start_replica() { # index port internal-port
  local i=$1 port=$2 iport=$3 pidf="$state/bbs-$1.pid"
  if alive "$pidf"; then say "replica bbs-$i already running (pid $(cat "$pidf"))"; return; fi
  if ready "127.0.0.1:$port"; then die "port $port answers but is not our replica: set BBS_PORTS"; fi
  # setsid: its own session, so closing the terminal does not stop it.
  # nginx proxies to HTTP_ADDR only; INTERNAL_ADDR (metrics, readiness
  # details) stays on 127.0.0.1 for whoever runs the cluster.
  HTTP_ADDR=127.0.0.1:$port INTERNAL_ADDR=127.0.0.1:$iport REPLICA_ID=bbs-$i TRUSTED_PROXIES=127.0.0.1/32 \
    DATABASE_URL=$db REDIS_URL=$rdb REDIS_PREFIX=$prefix \
    setsid "$bin" >>"$state/bbs-$i.log" 2>&1 </dev/null &
  echo $! >"$pidf"
  say "started bbs-$i on 127.0.0.1:$port, metrics on 127.0.0.1:$iport (pid $!)"
}

# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
nginx_bin() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

up() {
  local nginx
  nginx=$(nginx_bin) || die "nginx not found; install it: apt-get install -y nginx"
  need curl curl
  mkdir -p "$state/nginx"

  db=$(postgres_url)
  rdb=$(redis_url)
  prefix=${REDIS_PREFIX:-"{bbs-cluster}"}

  bin=${BBS_BIN:-$state/bbs}
  if [ -z "${BBS_BIN:-}" ]; then
    need go golang
    say "building $bin"
    (cd "$root" && CGO_ENABLED=0 go build -tags nomsgpack -trimpath -ldflags "-X main.version=${VERSION:-cluster}" -o "$bin" ./services/bbs)
  fi
  [ -x "$bin" ] || die "$bin is not an executable"

  DATABASE_URL=$db "$bin" migrate >>"$state/migrate.log" 2>&1 || die "bbs migrate failed: see $state/migrate.log"

  local i=0 addrs=()
  for port in "${ports[@]}"; do
    i=$((i + 1))
    start_replica "$i" "$port" "${internal_ports[$((i - 1))]}"
    addrs+=("127.0.0.1:$port")
  done
  for a in "${addrs[@]}"; do
    for _ in $(seq 1 150); do ready "$a" && continue 2; sleep 0.2; done
    tail -n 20 "$state"/bbs-*.log >&2
    die "replica $a not ready after 30s (logs above, in $state)"
  done

  need openssl openssl
  sh "$root/services/lb/tls-cert.sh" "$state/nginx/tls"
  "$root/services/lb/render.sh" local "127.0.0.1:$lb_port" "127.0.0.1:$lb_tls_port" "${addrs[@]}" >"$state/nginx/nginx.conf"
  local ngx=("$nginx" -p "$state/nginx/" -c "$state/nginx/nginx.conf" -e stderr)
  "${ngx[@]}" -t -q || die "nginx rejected $state/nginx/nginx.conf"
  if alive "$state/nginx/nginx.pid"; then
    "${ngx[@]}" -s reload 2>>"$state/nginx.log"
    say "nginx reloaded"
  else
    # nginx daemonizes and writes nginx.pid under its prefix.
    "${ngx[@]}" >>"$state/nginx.log" 2>&1 || die "nginx did not start: see $state/nginx.log"
  fi
  wait_until 10 "nginx on 127.0.0.1:$lb_port" ready "127.0.0.1:$lb_port"
  say "the board: http://127.0.0.1:$lb_port, and over HTTP/2 https://localhost:$lb_tls_port (trust $state/nginx/tls/ca.pem; logs in $state; stop with make cluster-down)"
}

down() {
  [ -d "$state" ] || { say "nothing to stop"; return; }
  stop_pid "$state/nginx/nginx.pid" nginx QUIT 10
  for f in "$state"/bbs-*.pid; do
    [ -e "$f" ] || continue
    # SIGTERM: the replica drains (DRAIN_DELAY + SHUTDOWN_GRACE, 5s + 25s
    # by default; nginx is already gone, so it has no requests left to
    # answer after DRAIN_DELAY).
    stop_pid "$f" "$(basename "$f" .pid)" TERM 40
  done
  stop_pid "$state/redis.pid" redis TERM 10
  if [ -f "$state/pg.ours" ]; then
    local bin as=()
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
    "${as[@]}" "$bin/pg_ctl" -D "$state/pg" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$state/pg.ours"
    say "stopped the throwaway Postgres"
  fi
  say "stopped (logs and data stay in $state)"
}

status() {
  for f in "$state"/bbs-*.pid "$state/nginx/nginx.pid" "$state/redis.pid"; do
    [ -e "$f" ] || continue
    if alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): stopped"; fi
  done
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
