#!/usr/bin/env bash
# Prepares a real node for the end-to-end tests (test/e2e): containerd, runc and the CNI
# plugins from Debian, and kubelet built from the module proxy like kube-apiserver.
# The tests start their own containerd and kubelet under a temp dir; nothing here starts
# a service or touches the host's configuration.
source "$(dirname "$0")/lib.sh"
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  apt_install "${need[@]}"
  step_done
fi
bash "$(dirname "$0")/kubernetes.sh" kubelet
