#!/usr/bin/env bash
# Installs or builds everything the tests need, idempotently, into ${SECRETMOUNT_CACHE}.
# A warm cache makes this a few seconds; each step prints its own time when it works.
source "$(dirname "$0")/lib.sh"
here="$(dirname "$0")"
start=$(date +%s)
bash "$here/packages.sh"
bash "$here/kubernetes.sh" kube-apiserver
bash "$here/node.sh"
bash "$here/openbao.sh"
bash "$here/upstream-driver.sh"
echo "set-up complete in $(( $(date +%s) - start ))s (cache: $SECRETMOUNT_CACHE)"
