#!/usr/bin/env bash
# deps.sh GROUP...: make sure the programs GROUP's tests run are installed.
#
#   test   make test (and make prom-check): a C compiler for -race, pgbench,
#          nginx, node, openssl, curl, prometheus and promtool
#   image  make image-test: podman, runc, debootstrap, tzdata
#   e2e    make e2e: Chromium and a font with Japanese glyphs
# and, for each: make, git, the CA bundle, Postgres and Redis (servers and
# clients).
#
# As root on Debian it installs what is missing (apt-get update, then one
# apt-get install); anywhere else it prints the exact command and fails.
# With nothing missing it only looks, in a few milliseconds: the Makefile
# runs it before every test target.
set -euo pipefail

say() { echo "deps: $*" >&2; }

# on_path NAME: a command, also where it lives in an sbin a non-login PATH
# may lack (nginx, runc, debootstrap).
on_path() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
want() { # package, unless already wanted
  local p
  for p in "${missing[@]}"; do [ "$p" != "$1" ] || return 0; done
  missing+=("$1")
}

# What every test target needs: the tools around go, and Postgres and
# Redis, the servers' binaries too, for throwaway ones (.ci/with-services.sh).
need_base() {
  on_path make || want make
  # go build stamps the commit, and fails in a clone without git.
  on_path git || want git
  [ -e /etc/ssl/certs/ca-certificates.crt ] || want ca-certificates
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || want postgresql
  on_path pg_isready || want postgresql
  on_path redis-server || want redis-server
  on_path redis-cli || want redis-tools
}

need_test() {
  # -race needs cgo, so a C compiler and libc's headers.
  on_path gcc || want gcc
  [ -e /usr/include/stdio.h ] || want libc6-dev
  # pgbench, for the loadgen test (and make bench).
  on_path pgbench || want postgresql-contrib
  # deploytest runs Debian's nginx in front of replicas, and
  # services/lb/cluster.sh, which polls with curl and makes nginx's
  # certificate with openssl.
  on_path nginx || want nginx
  on_path curl || want curl
  on_path openssl || want openssl
  # the page's board.js tests (pkg/web).
  on_path node || want nodejs
  # the dashboard and alert checks (deploytest, make prom-check).
  { on_path prometheus && on_path promtool; } || want prometheus
}

need_image() {
  # podman with runc: crun refuses this kernel's cgroups. debootstrap makes
  # the build stage's base image, with the CA bundle and zoneinfo copied in.
  on_path podman || want podman
  on_path runc || want runc
  on_path debootstrap || want debootstrap
  [ -d /usr/share/zoneinfo ] || want tzdata
}

need_e2e() {
  [ -x /usr/bin/chromium ] || want chromium
  # Japanese glyphs for the screenshots (the page brings no fonts of its own).
  { on_path fc-list && fc-list :lang=ja | grep -q .; } || want fonts-motoya-l-cedar
}

(($#)) || { say "usage: deps.sh test|image|e2e..."; exit 2; }
need_base
for group in "$@"; do
  case $group in
    test) need_test ;;
    image) need_image ;;
    e2e) need_e2e ;;
    *) say "unknown group $group (test, image, e2e)"; exit 2 ;;
  esac
done
command -v go >/dev/null || { say "Go 1.26 is required: https://go.dev/dl/ (install it to /usr/local/go)"; exit 1; }
((${#missing[@]})) || exit 0

cmd="apt-get install -y ${missing[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  say "missing for $*: ${missing[*]}"
  say "install them (Debian, as root): apt-get update && $cmd"
  exit 1
fi
say "installing: ${missing[*]}"
# Another apt run on the machine holds the lock for a while: wait for it.
apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
"${apt[@]}" update -q >&2
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q "${missing[@]}" >&2
