#!/usr/bin/env bash
# Builds Kubernetes binaries (kube-apiserver; kubelet when asked) from the Go module proxy.
# k8s.io/kubernetes is not meant to be imported, so a throwaway wrapper module replaces
# each of its staging modules with the published k8s.io/<m> v0.x.y of the same release.
# Usage: kubernetes.sh [component ...]   (default: kube-apiserver)
source "$(dirname "$0")/lib.sh"
components=("${@:-kube-apiserver}")
out="$SECRETMOUNT_CACHE/kubernetes-$KUBE_VERSION"
todo=()
for c in "${components[@]}"; do [ -x "$out/$c" ] || todo+=("$c"); done
[ ${#todo[@]} -eq 0 ] && exit 0

step "building ${todo[*]} $KUBE_VERSION from the module proxy"
wrapper="$SECRETMOUNT_CACHE/src/kubernetes-$KUBE_VERSION"
mkdir -p "$wrapper" "$out"
cd "$wrapper"
# tools.go is written last, so a wrapper left half-made by an interrupted run is redone.
if [ ! -f tools.go ]; then
  cat > go.mod <<MOD
module secretmount.local/kubernetes-wrapper

go 1.24

require k8s.io/kubernetes $KUBE_VERSION
MOD
  go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
  kmod="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/go.mod"
  staging_version="v0.${KUBE_VERSION#v1.}"
  grep -E '=> \./staging/src/' "$kmod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}' >> go.mod
  printf 'package main\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n' > tools.go
fi
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
for c in "${todo[@]}"; do
  GOWORK=off GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$out/$c.tmp" "$out/$c"
done
step_done
