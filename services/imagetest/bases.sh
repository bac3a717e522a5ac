#!/usr/bin/env bash
# Makes, in the local podman store, the two base images the Dockerfile
# names, since no registry can be reached from where this runs:
#
#   docker.io/library/golang:1.26                 Debian bookworm (debootstrap
#       minbase) with the Go toolchain GOROOT (argument 1) at /usr/local/go,
#       as the official image has it, and the host's CA bundle so the build
#       stage can reach the Go module proxy.
#   gcr.io/distroless/static-debian12:nonroot     what distroless static has:
#       /etc/passwd and /etc/group with nonroot (65532), CA certificates,
#       tzdata, /tmp (1777) and /home/nonroot; no shell, no libc.
#
# An image that exists (with the same Go version for golang) is kept, and
# the debootstrap tree is cached in $CACHE, so a re-run takes seconds.
# Also makes sure podman can run containers on this machine (FACTS.md):
# default_ulimits in /etc/containers/containers.conf; callers pass
# --runtime runc themselves.
set -euo pipefail

goroot=${1:?usage: bases.sh GOROOT}
CACHE=${BBS_IMAGE_CACHE:-/var/cache/bbs-image-test}
GOLANG=docker.io/library/golang:1.26
DISTROLESS=gcr.io/distroless/static-debian12:nonroot
CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

say() { echo "bases.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "$1 is missing: apt-get install -y podman runc debootstrap"; exit 1; }; }
need podman; need runc; need debootstrap

# The limits podman asks for by default (RLIMIT_NOFILE, RLIMIT_NPROC) are
# above this machine's hard limits, which it may not raise: every
# `podman run` fails ("error setting rlimits") without this. The line this
# script writes is marked and rewritten; an operator's own is left alone.
conf=/etc/containers/containers.conf
mark='# bbs image-test: the hard limits of this machine'
# RLIMIT_NPROC above kernel.pid_max is refused here too (seen: 32768 runs,
# 32769 fails although `ulimit -Hu` says 96363).
nproc=$(ulimit -Hu)
pidmax=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo "$nproc")
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; then nproc=$pidmax; fi
nofile=$(ulimit -Hn)
[ "$nofile" != unlimited ] || nofile=1048576
limits="default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"] $mark"
if grep -qsF "$mark" "$conf"; then
  sed -i "/$mark/c $limits" "$conf"
elif ! grep -qs '^[[:space:]]*default_ulimits' "$conf"; then
  say "adding default_ulimits to $conf"
  mkdir -p "$(dirname "$conf")"
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i "/^\[containers\]/a $limits" "$conf"
  else
    printf '[containers]\n%s\n' "$limits" >>"$conf"
  fi
fi

[ -r "$CA" ] || { say "no CA bundle at $CA (apt-get install -y ca-certificates)"; exit 1; }
[ -x "$goroot/bin/go" ] || { say "$goroot is not a Go root"; exit 1; }
gover=$("$goroot/bin/go" env GOVERSION)

mkdir -p "$CACHE"
stage=$(mktemp -d "$CACHE/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# The Debian mirror apt uses here: the first URIs (deb822) or deb line.
mirror() {
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1)
  echo "${m:-http://deb.debian.org/debian}"
}

if [ "$(podman image inspect --format '{{index .Labels "bbs.go"}}' "$GOLANG" 2>/dev/null)" != "$gover" ]; then
  rootfs=$CACHE/rootfs-bookworm-minbase
  if [ ! -d "$rootfs" ]; then
    say "debootstrap bookworm from $(mirror) into $rootfs (once; cached)"
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
      { say "debootstrap failed, see $CACHE/debootstrap.log"; exit 1; }
    mv "$rootfs.tmp" "$rootfs"
  fi
  mkdir -p "$stage/golang/etc/ssl/certs" "$stage/golang/go/bin"
  cp "$CA" "$stage/golang/etc/ssl/certs/ca-certificates.crt"
  # podman import refuses a path twice in one stream, so the extras name
  # only what the Debian tree lacks (a directory without its contents).
  extras=()
  for d in etc/ssl etc/ssl/certs; do [ -d "$rootfs/$d" ] || extras+=("./$d"); done
  say "importing $GOLANG ($gover from $goroot)"
  # One tar stream: the cached Debian tree, then the CA bundle and /go, then
  # GOROOT renamed to ./usr/local/go. tar applies --transform to every
  # member, so all the others are named "./..." and cannot match it, even
  # when GOROOT's own name is "go" (/usr/local/go).
  base=$(basename "$goroot")
  tar -c --numeric-owner -C "$rootfs" . \
      -C "$stage/golang" --no-recursion "${extras[@]}" --recursion ./etc/ssl/certs/ca-certificates.crt ./go \
      -C "$(dirname "$goroot")" --transform "s,^$base,./usr/local/go," "$base" |
    podman import --quiet \
      --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' \
      --change 'WORKDIR /go' --change 'CMD ["bash"]' \
      --change "LABEL bbs.go=$gover" \
      - "$GOLANG" >/dev/null
fi

if ! podman image exists "$DISTROLESS"; then
  say "importing $DISTROLESS"
  r=$stage/static
  mkdir -p "$r/etc/ssl/certs" "$r/usr/share" "$r/tmp" "$r/home/nonroot" "$r/root"
  cat >"$r/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
  cat >"$r/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
  cp "$CA" "$r/etc/ssl/certs/ca-certificates.crt"
  [ -d /usr/share/zoneinfo ] || { say "no /usr/share/zoneinfo (apt-get install -y tzdata)"; exit 1; }
  cp -a /usr/share/zoneinfo "$r/usr/share/zoneinfo"
  chmod 1777 "$r/tmp"
  chmod 700 "$r/root"
  chown 65532:65532 "$r/home/nonroot"
  tar -c --numeric-owner -C "$r" . |
    podman import --quiet \
      --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      - "$DISTROLESS" >/dev/null
fi
say "base images ready: $GOLANG ($gover), $DISTROLESS"
