#!/usr/bin/env bash
# Fails when the tree is not formatted, vetted and tidy.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(gofmt -l $(git ls-files -co --exclude-standard '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed:"; echo "$bad"; exit 1; fi
go vet ./...
go vet -tags integration ./...
cp go.mod /tmp/go.mod.verify.$$; cp go.sum /tmp/go.sum.verify.$$
go mod tidy
if ! diff -q go.mod /tmp/go.mod.verify.$$ >/dev/null || ! diff -q go.sum /tmp/go.sum.verify.$$ >/dev/null; then
  echo "go.mod/go.sum were not tidy (go mod tidy changed them)"; rm -f /tmp/go.*.verify.$$; exit 1
fi
rm -f /tmp/go.*.verify.$$
bash hack/manifests.sh --check
echo "verify: ok"
