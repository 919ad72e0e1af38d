#!/usr/bin/env bash
# Regenerates the TLS test certificates with the commands of docs/tls.md: a cluster CA, two
# nodes it signs (a, b), one it signed already expired, and a rogue node signed by another CA.
# Valid for 100 years; the CA keys are thrown away. Run from anywhere: `Tests/TrellisTransportTests/Certificates/generate.sh`.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
days=36500

ca() { # name: a self-signed CA certificate and key
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.pem" -days "$days" -subj "/CN=trellis test $1" 2>/dev/null
}
node() { # name ca [days]: a node key and a certificate the CA signs
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -days "${3:-$days}" -extfile node.ext -out "$1.pem" 2>/dev/null
}

cat > node.ext <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
EXT
ca ca
ca other-ca
node node-a ca
node node-b ca
node expired ca -1
node rogue other-ca
cp ca.pem other-ca.pem node-a.pem node-a.key node-b.pem node-b.key rogue.pem rogue.key expired.pem expired.key "$out/"
