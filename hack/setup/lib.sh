#!/usr/bin/env bash
# Shared by the set-up scripts: where the cache lives and how a step reports itself.
# Every tool is built or installed once into ${SECRETMOUNT_CACHE}, keyed by version,
# outside the clone, so a fresh clone on the same machine spends seconds on set-up.
set -euo pipefail

SECRETMOUNT_CACHE="${SECRETMOUNT_CACHE:-$HOME/.cache/secretmount}"
export SECRETMOUNT_CACHE
mkdir -p "$SECRETMOUNT_CACHE/bin"

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
OPENBAO_MODULE_VERSION="${OPENBAO_MODULE_VERSION:-v0.0.0-20250828202315-f9407a27fbee}" # tag v2.4.0
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
UPSTREAM_DRIVER_VERSION="${UPSTREAM_DRIVER_VERSION:-v1.5.4}"

step_start=0
step() { step_start=$(date +%s); echo "==> $*"; }
step_done() { echo "    done in $(( $(date +%s) - step_start ))s"; }

# apt_install installs Debian packages that are missing, running apt-get update at most once.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then echo "need root to install: ${missing[*]}" >&2; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
