#!/usr/bin/env bash
# Renders deploy/ from charts/secretmount with the Helm Go SDK (no helm binary).
# With --check, renders into a temporary folder and fails when deploy/ differs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  go run ./test/install/manifests -chart charts/secretmount -out "$tmp"
  if ! diff -ru deploy "$tmp" >/dev/null; then
    echo "deploy/ is stale: run make manifests"; diff -ru deploy "$tmp" | head -40; exit 1
  fi
  exit 0
fi
rm -f deploy/*.yaml
go run ./test/install/manifests -chart charts/secretmount -out deploy
echo "manifests: deploy/ rendered from charts/secretmount"
