#!/usr/bin/env bash
# Builds the upstream Secrets Store CSI Driver (sigs.k8s.io/secrets-store-csi-driver,
# cmd/secrets-store-csi-driver) from the Go module proxy for the interop tests, with the
# wrapper module in hack/upstream-driver. That wrapper replaces monis.app/mlog, which the
# proxy refuses, and builds with GOSUMDB=off because the driver module has no
# checksum-database entry here; neither setting touches secretmount's own go.mod.
source "$(dirname "$0")/lib.sh"
out="$SECRETMOUNT_CACHE/secrets-store-csi-driver-$UPSTREAM_DRIVER_VERSION/secrets-store-csi-driver"
[ -x "$out" ] && exit 0
step "building the upstream Secrets Store CSI Driver ($UPSTREAM_DRIVER_VERSION) from the module proxy"
src="$(cd "$(dirname "$0")/../upstream-driver" && pwd)"
wrapper="$SECRETMOUNT_CACHE/src/upstream-driver-$UPSTREAM_DRIVER_VERSION"
mkdir -p "$wrapper/mlog" "$(dirname "$out")"
cp "$src/mlog/go.mod" "$src/mlog/mlog.go" "$wrapper/mlog/"
sed "s#secrets-store-csi-driver v1.5.4#secrets-store-csi-driver $UPSTREAM_DRIVER_VERSION#" "$src/go.mod" > "$wrapper/go.mod"
cd "$wrapper"
export GOSUMDB=off GOFLAGS=-mod=mod GOWORK=off
go build -trimpath -ldflags "-s -w" -o "$out.tmp" sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver
mv "$out.tmp" "$out"
step_done
