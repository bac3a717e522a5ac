#!/bin/sh
# Makes the certificate nginx serves HTTPS (and so HTTP/2) with, once:
#
#   tls-cert.sh DIR [NAME...]
#
# writes DIR/cert.pem and DIR/key.pem (nginx's) and DIR/ca.pem (the
# certificate to trust) unless DIR/cert.pem is there already. The
# certificate is for localhost, 127.0.0.1, ::1 and each NAME (a DNS name or
# an IP address; TLS_NAMES adds more, separated by spaces or commas).
#
# A throwaway CA signs it, and its key is deleted at once: trusting ca.pem
# then trusts this one certificate and nothing anyone could sign later.
# Both expire after 397 days; remove DIR to make new ones.
#
# POSIX sh and openssl only: compose runs it in the nginx image (Debian's
# ca-certificates brings openssl), make cluster and the tests on the host.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 DIR [NAME...]" >&2; exit 2; }
dir=$1
shift
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then exit 0; fi
command -v openssl >/dev/null || { echo "tls-cert.sh: openssl not found; install it: apt-get install -y openssl" >&2; exit 1; }

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@" $(echo "${TLS_NAMES:-}" | tr ',' ' '); do
  case $name in
  *:*) san="$san,IP:$name" ;;        # IPv6
  *[!0-9.]*) san="$san,DNS:$name" ;; # a name
  *) san="$san,IP:$name" ;;          # IPv4
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/openssl.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = bbs
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
authorityKeyIdentifier = keyid
CNF
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
# shellcheck disable=SC2086 # $ec is several arguments
openssl req -x509 $ec -config "$tmp/openssl.cnf" -extensions ca -days 397 \
  -subj "/CN=bbs local CA $(date -u +%Y-%m-%dT%H:%MZ)" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
# shellcheck disable=SC2086
openssl req -new $ec -config "$tmp/openssl.cnf" -subj "/CN=localhost" \
  -keyout "$tmp/key.pem" -out "$tmp/leaf.csr" 2>/dev/null
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 397 -extfile "$tmp/openssl.cnf" -extensions leaf \
  -out "$tmp/cert.pem" 2>/dev/null

mkdir -p "$dir"
umask 077
cp "$tmp/key.pem" "$dir/key.pem"
umask 022
cp "$tmp/ca.pem" "$dir/ca.pem"
# cert.pem last: its presence says the rest is there.
cp "$tmp/cert.pem" "$dir/cert.pem"
echo "tls-cert.sh: made $dir/cert.pem for $san; trust $dir/ca.pem"
