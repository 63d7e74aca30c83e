#!/usr/bin/env bash
# Builds Logbook's image from the static binaries in $BIN (default bin/,
# built by `make build`) with the Dockerfile at the repository's root. The
# context is assembled in a temporary directory; FROM scratch pulls nothing.
# Usage: scripts/image.sh [TAG]   (default logbook:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-logbook:dev}"
bin="${BIN:-bin}"
for b in logbook logbook-agent logbook-toolbox; do
  [ -x "$bin/$b" ] || { echo "image: $bin/$b is missing: run make build first" >&2; exit 1; }
done
certs=""
for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  [ -f "$c" ] && { certs="$c"; break; }
done
[ -n "$certs" ] || { echo "image: no CA certificate bundle on this machine (install ca-certificates)" >&2; exit 1; }
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp Dockerfile "$certs" "$ctx/"
[ "$(basename "$certs")" = ca-certificates.crt ] || mv "$ctx/$(basename "$certs")" "$ctx/ca-certificates.crt"
cp "$bin/logbook" "$bin/logbook-agent" "$bin/logbook-toolbox" "$ctx/"
mkdir "$ctx/data" "$ctx/tmp"
chmod 1777 "$ctx/tmp"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "$tag"
