#!/usr/bin/env bash
# Regenerates the SecretSync deep copies and CRD from apis/secretsync/v1alpha1 with
# controller-gen (a pinned version, built by `go run` from the module proxy).
# Usage: bash hack/generate-secretsync.sh   (what `make manifests` would call)
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROLLER_GEN="sigs.k8s.io/controller-tools/cmd/controller-gen@v0.19.0"
go run "$CONTROLLER_GEN" object paths=./apis/secretsync/...
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go run "$CONTROLLER_GEN" crd paths=./apis/secretsync/... output:crd:dir="$tmp"
cp "$tmp/secret-sync.x-k8s.io_secretsyncs.yaml" charts/secretmount/crds/secret-sync.x-k8s.io_secretsyncs.yaml
gofmt -w apis/secretsync
