#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
status=0
while IFS=: read -r file func; do
  pkg="./$(dirname "$file")"
  echo "== $func in $pkg for $fuzztime"
  go test -run='^$' -fuzz="^${func}\$" -fuzztime="$fuzztime" "$pkg" || status=1
done < <(git ls-files '*_test.go' | xargs grep -oE '^func Fuzz[A-Za-z0-9_]+' | sed 's/^\(.*\):func /\1:/')
exit $status
