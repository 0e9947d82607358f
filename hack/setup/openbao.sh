#!/usr/bin/env bash
# Builds the Vault server used by the tests: OpenBao 2.4.0, the API-compatible open-source
# fork, from the Go module proxy. It resolves only as the pseudo-version of tag v2.4.0's
# commit; its wrapper's go.sum is seeded from the module's own because some of its
# dependencies have no checksum-database entry.
source "$(dirname "$0")/lib.sh"
out="$SECRETMOUNT_CACHE/openbao-$OPENBAO_MODULE_VERSION/bao"
[ -x "$out" ] && exit 0
step "building OpenBao ($OPENBAO_MODULE_VERSION) from the module proxy"
wrapper="$SECRETMOUNT_CACHE/src/openbao-$OPENBAO_MODULE_VERSION"
mkdir -p "$wrapper" "$(dirname "$out")"
cd "$wrapper"
# go.sum is written last, so a wrapper left half-made by an interrupted run is redone.
if [ ! -f go.sum ]; then
  printf 'module secretmount.local/openbao-wrapper\n\ngo 1.24\n\nrequire github.com/openbao/openbao %s\n' "$OPENBAO_MODULE_VERSION" > go.mod
  GOWORK=off GOFLAGS=-mod=mod go mod download github.com/openbao/openbao@"$OPENBAO_MODULE_VERSION"
  cp "$(go env GOMODCACHE)/github.com/openbao/openbao@$OPENBAO_MODULE_VERSION/go.sum" go.sum.tmp
  chmod u+w go.sum.tmp
  mv go.sum.tmp go.sum
fi
GOWORK=off GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/openbao/openbao
mv "$out.tmp" "$out"
step_done
