#!/usr/bin/env bash
# Fails when gen/ differs from what `buf generate` writes from proto/ now.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx buf generate --output "$tmp" >/dev/null
if ! diff -r "$tmp/gen" gen >/dev/null; then
  echo "gen/ is stale: run 'npm run generate' and commit the result" >&2
  diff -r "$tmp/gen" gen | head -20 >&2
  exit 1
fi
echo "gen/ is up to date"
